"""Remarks reach the caller through one channel: returned by the API, printed by the CLI."""

from __future__ import annotations

from compiler.api import compile_model
from compiler.cli.main import main
from dialects.diagnostics import Remark, collect_remarks, remark


def test_nested_collectors_both_see_a_remark():
    with collect_remarks() as outer:
        with collect_remarks() as inner:
            remark("some-pass", None, "left alone")
    assert inner == outer == [Remark("some-pass", "", "left alone")]
    assert str(inner[0]) == "remark: some-pass: <unknown>: left alone"


BIASED_ATTENTION = """
import torch

class BiasedAttention(torch.nn.Module):
    \"\"\"Attention with a learned additive bias on the scores (as a relative-position bias is).\"\"\"

    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.randn(1, 2, 5, 5))

    def forward(self, q, k, v):
        scores = q @ k.transpose(-1, -2) * 0.25 + self.bias
        return scores.softmax(dim=-1) @ v

class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = BiasedAttention()

    def forward(self, q, k, v):
        return self.attn(q, k, v)

def factory():
    return Model(), tuple(torch.randn(1, 2, 5, 8) for _ in range(3))
"""


def test_compile_returns_remarks_and_cli_prints_them(capsys, tmp_path):
    # An additive bias cannot be expressed in cosine attention: attn-cosine leaves it alone and says why.
    spec = tmp_path / "biased.py"
    spec.write_text(BIASED_ATTENTION)
    compiled = compile_model(f"{spec}:factory", "attn-raise,attn-cosine")
    assert compiled.remarks and all(r.pass_name == "attn-cosine" and r.location == "attn" for r in compiled.remarks)
    assert main(["verify", f"{spec}:factory", "-p", "attn-raise,attn-cosine", "--tol", "10"]) == 0
    err = capsys.readouterr().err
    assert "remark: attn-cosine: attn: an additive bias mask cannot be expressed" in err


def test_identical_remarks_are_printed_once_with_a_count(capsys, tmp_path):
    """One module called twice leaves two identical remarks: the CLI prints the line once, counted."""
    spec = tmp_path / "twice.py"
    spec.write_text(BIASED_ATTENTION.replace("return self.attn(q, k, v)", "return self.attn(self.attn(q, k, v), k, v)"))
    assert main(["compile", f"{spec}:factory", "-p", "attn-raise,attn-cosine", "-o", str(tmp_path / "out")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("remark:")]
    assert lines == ["remark: attn-cosine: attn: an additive bias mask cannot be expressed in cosine attention "
                     "(only padding/causal masks) (x2)"], lines

