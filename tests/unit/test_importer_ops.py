"""Numerics of the ops the model zoo needs, one small module each: export, import, run, compare to PyTorch.

Covers what ``tests/filecheck/dialects/nn.mlir`` checks for syntax (conv, pad, repeat, repeat_interleave,
abs/sign/log/ceil/floor/erf, unbind, einsum) and the importer's folding of input-independent masks.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from compiler.api import CompiledModel
from compiler.frontend.fx_importer import UnsupportedOpError, import_exported_program


class Lambda(torch.nn.Module):
    def __init__(self, fn, *parameters: torch.Tensor):
        super().__init__()
        self.fn = fn
        self.weights = torch.nn.ParameterList(torch.nn.Parameter(p) for p in parameters)

    def forward(self, *inputs):
        return self.fn(*inputs, *self.weights)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


CASES = {
    "conv2d-patches": (lambda x, w, b: F.conv2d(x, w, b, stride=4), [_randn(2, 3, 16, 16)], [_randn(8, 3, 4, 4), _randn(8)]),
    "conv2d-padded-dilated-groups": (
        lambda x, w: F.conv2d(x, w, padding=2, dilation=2, groups=2),
        [_randn(1, 4, 9, 9)],
        [_randn(6, 2, 3, 3)],
    ),
    "conv1d-audio": (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), [_randn(2, 8, 16)], [_randn(4, 8, 3), _randn(4)]),
    "pad-and-crop": (lambda x: F.pad(x, (1, 2, -1, 0), value=0.5), [_randn(1, 5, 5, 4)], []),
    "repeat": (lambda x: x.repeat(2, 1, 3), [_randn(4, 3)], []),
    "repeat-interleave": (lambda x: torch.repeat_interleave(x, 3, dim=1), [_randn(2, 4, 5)], []),
    "relative-position-buckets": (
        lambda x: torch.sign(x) * torch.floor(torch.log(torch.abs(x) + 1.0)) + torch.ceil(x) + torch.erf(x),
        [_randn(3, 7) * 4],
        [],
    ),
    "unbind-fused-qkv": (lambda x: sum(t * (i + 1) for i, t in enumerate(x.unbind(0))), [_randn(3, 2, 5)], []),
    "einsum-matmul": (lambda a, b: torch.einsum("ij,jk->ik", a, b), [_randn(4, 5), _randn(5, 6, seed=1)], []),
    "einsum-scores": (lambda q, k: torch.einsum("bqhd,bkhd->bhqk", q, k), [_randn(2, 5, 3, 4), _randn(2, 6, 3, 4, seed=1)], []),
    "einsum-transposed-output": (lambda a, b: torch.einsum("bik,bkj->bji", a, b), [_randn(2, 3, 4), _randn(2, 4, 5, seed=1)], []),
    "einsum-grouped-letters": (
        lambda a, b: torch.einsum("bxyk,bkz->bzxy", a, b),
        [_randn(2, 3, 4, 5), _randn(2, 5, 6, seed=1)],
        [],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_imported_op_matches_pytorch(name: str) -> None:
    fn, inputs, parameters = CASES[name]
    model = Lambda(fn, *parameters)
    with torch.no_grad():
        expected = model(*inputs)
    imported = import_exported_program(torch.export.export(model, tuple(inputs)).run_decompositions({}))
    (out,) = CompiledModel(imported.module, imported.weights, tuple(inputs), imported.input_names).run()
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("equation", "message"),
    [("ii->i", "only two operands"), ("ii,ij->ij", "repeated letters"), ("ij,jk", "explicit output"),
     ("ij,jk->i", "summed within one operand")],
)
def test_unsupported_einsum_is_one_clear_error(equation: str, message: str) -> None:
    if "," not in equation:
        model, inputs = Lambda(lambda a: torch.einsum(equation, a)), (_randn(3, 3),)
    else:
        model, inputs = Lambda(lambda a, b: torch.einsum(equation, a, b)), (_randn(3, 3), _randn(3, 3))
    program = torch.export.export(model, inputs).run_decompositions({})
    with pytest.raises(UnsupportedOpError, match=message):
        import_exported_program(program)


class PositionMask(torch.nn.Module):
    """A causal mask built from positions (as Hugging Face decoders build it), applied to the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[-1])
        keep = positions[None, :] <= positions[:, None]
        return x.masked_fill(~keep, -1.0) * torch.tensor(2.0)


def test_input_independent_masks_and_scalars_are_folded_to_constants() -> None:
    x = _randn(4, 4)
    imported = import_exported_program(torch.export.export(PositionMask(), (x,)).run_decompositions({}))
    names = [op.name for op in imported.module.walk()]
    assert "nn.arange" not in names and "nn.le" not in names  # the mask is one constant
    assert "nn.param" not in names  # the lifted scalar 2.0 is a constant, not a weight
    (out,) = CompiledModel(imported.module, imported.weights, (x,), imported.input_names).run()
    torch.testing.assert_close(out, PositionMask()(x))
