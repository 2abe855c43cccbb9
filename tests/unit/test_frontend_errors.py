"""The importer fails loudly and precisely on what it cannot translate."""

from __future__ import annotations

import pytest
import torch

from compiler.frontend.fx_importer import UnsupportedOpError, import_exported_program, supported_ops


class Inner(torch.nn.Module):
    def forward(self, x):
        return torch.sort(x, dim=-1).values


class Outer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Inner()
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.block(self.proj(x))


def test_unsupported_aten_op_names_the_op_and_the_module_path():
    program = torch.export.export(Outer().eval(), (torch.randn(2, 4),)).run_decompositions({})
    with pytest.raises(UnsupportedOpError) as info:
        import_exported_program(program)
    message = str(info.value)
    assert "aten.sort" in message
    assert "'block'" in message


def test_supported_ops_cover_the_attention_building_blocks():
    ops = set(supported_ops())
    for op in (
        "aten.linear.default",
        "aten.matmul.default",
        "aten.softmax.int",
        "aten.layer_norm.default",
        "aten.gelu.default",
        "aten.scaled_dot_product_attention.default",
    ):
        assert op in ops
