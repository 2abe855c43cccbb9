"""``attnc export --format torch-mlir``: torch-mlir's own bindings parse and verify the file, its
``torch-backend-to-linalg-on-tensors-backend-pipeline`` lowers it, and its reference CPU backend runs it to
the outputs attnc's executor gives; ops with no ATen form are one clear error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch_mlir = pytest.importorskip("torch_mlir")

from compiler.api import CompiledModel, compile_model, max_abs_error  # noqa: E402
from compiler.cli.main import main  # noqa: E402
from compiler.models import BUNDLED  # noqa: E402
from compiler.torch_mlir_export import export_torch_mlir  # noqa: E402
from compiler.torch_mlir_refbackend import lower_to_linalg, run_on_refbackend  # noqa: E402
from dialects import attn  # noqa: E402

ATTNC = str(Path(sys.executable).with_name("attnc"))
RUN_ON_REFBACKEND = ("mha", "mha-sdpa", "transformer-encoder", "llama-tiny")  # gpt2-tiny: the CLI test

SCALED_MASKED = '''
import torch


class Scaled(torch.nn.Module):
    """Attention with a scale that is not 1/sqrt(E): with a boolean key mask, then causal."""

    def __init__(self):
        super().__init__()
        self.qkv = torch.nn.Linear(32, 96)

    def forward(self, x, keep):
        q, k, v = self.qkv(x).view(2, 6, 3, 4, 8).permute(2, 0, 3, 1, 4)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        masked = sdpa(q, k, v, attn_mask=keep[:, None, None, :], scale=0.7)
        return sdpa(masked, k, v, is_causal=True, scale=0.7)


def factory():
    torch.manual_seed(0)
    keep = torch.tensor([[True] * 6, [True, True, True, False, False, True]])
    return Scaled().eval(), (torch.randn(2, 6, 32), keep)
'''


def parse_with_torch_mlir(text: str):
    """torch-mlir's own parser and verifier, nothing of attnc's in between."""
    from torch_mlir import ir
    from torch_mlir.dialects import torch as torch_dialect

    context = ir.Context()
    torch_dialect.register_dialect(context)
    with context:
        module = ir.Module.parse(text)
        assert module.operation.verify()
    return module


def test_cli_export_round_trip(tmp_path):
    """compile → export (both through the CLI) → torch-mlir parses, verifies, lowers and runs it: the outputs
    of attnc's executor and of PyTorch."""
    out, exported = tmp_path / "out", tmp_path / "model.torch.mlir"
    result = subprocess.run([ATTNC, "compile", "gpt2-tiny", "-p", "attn-raise", "-o", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    result = subprocess.run([ATTNC, "export", str(out), "--format", "torch-mlir", "-o", str(exported)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "takes 1 inputs, then 28 parameters" in result.stdout
    text = exported.read_text()
    module = parse_with_torch_mlir(text)
    assert len(re.findall(r"torch\.aten\.scaled_dot_product_attention ", text)) == 2
    assert {name.split(".")[0] for name in re.findall(r"= ([a-z_]+\.[a-z_.]+)", text)} == {"torch"}
    function = next(line for line in str(module).splitlines() if "func.func @main" in line)
    parameters = re.findall(r'attnc\.param = "([^"]+)"', function)
    assert len(parameters) == 28 and re.findall(r'attnc\.input = "([^"]+)"', function) == ["input_ids"]
    assert "torch.aten" not in lower_to_linalg(text) and "linalg." in lower_to_linalg(text)
    compiled = CompiledModel.load(out)
    outputs = run_on_refbackend(text, [*compiled.inputs, *(compiled.weights[name] for name in parameters)])
    assert max_abs_error(outputs, list(compiled.run())) <= 1e-5
    assert max_abs_error(outputs, compiled.reference_outputs or []) <= 1e-4


COSINE_ONLY = {"vit-cl-cosine"}  # cosine attention written out as matmuls: no softmax attention to raise


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_model_exports_and_lowers(name):
    compiled = compile_model(name, "attn-raise")
    exported = export_torch_mlir(compiled.module, compiled.input_names)
    parse_with_torch_mlir(exported.text)
    raised = sum(isinstance(op, attn.SdpaOp) for op in compiled.module.walk())
    assert (raised > 0 or name in COSINE_ONLY) and exported.text.count("torch.aten.scaled_dot_product_attention ") == raised
    if name not in RUN_ON_REFBACKEND:  # the larger ones: lowered, not run (JIT and naive loops: MiniLM takes ~30 s)
        assert "linalg." in lower_to_linalg(exported.text)
        return
    outputs = run_on_refbackend(exported.text, exported.arguments(compiled.inputs, compiled.weights))
    assert max_abs_error(outputs, list(compiled.run())) <= 1e-5


def test_explicit_scale_with_a_mask(tmp_path):
    """torch-mlir's attention lowering drops an explicit scale when a mask is given or it is causal; the
    export folds a non-default scale into the query so the lowered module still computes the same attention."""
    factory = tmp_path / "scaled.py"
    factory.write_text(SCALED_MASKED)
    compiled = compile_model(f"{factory}:factory", "attn-raise")
    masked, causal = [op for op in compiled.module.walk() if isinstance(op, attn.SdpaOp)]
    assert masked.mask is not None and causal.causal.value.data
    assert masked.scale.value.data == pytest.approx(0.7) and causal.scale.value.data == pytest.approx(0.7)
    exported = export_torch_mlir(compiled.module, compiled.input_names)
    outputs = run_on_refbackend(exported.text, exported.arguments(compiled.inputs, compiled.weights))
    with torch.no_grad():
        assert max_abs_error(outputs, compiled.run_reference()) <= 1e-5


@pytest.mark.parametrize("pipeline, op", [("attn-raise,attn-cosine", "attn.cosine"), ("crossbar", "xbar.")])
def test_ops_without_an_aten_form_are_one_clear_error(tmp_path, capsys, pipeline, op):
    compile_model("mha", pipeline).save(tmp_path / "out")
    assert main(["export", str(tmp_path / "out"), "-o", str(tmp_path / "m.torch.mlir")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"attnc: error: cannot express '{op}")
    assert "in torch-mlir" in error[0] and not (tmp_path / "m.torch.mlir").exists()


def test_export_without_the_extra_names_it(tmp_path, capsys, monkeypatch):
    compile_model("mha", "attn-raise").save(tmp_path / "out")
    monkeypatch.setitem(sys.modules, "torch_mlir", None)
    assert main(["export", str(tmp_path / "out"), "-o", str(tmp_path / "m.torch.mlir")]) == 1
    assert "needs the package 'torch-mlir' of the 'onnx' extra" in capsys.readouterr().err
