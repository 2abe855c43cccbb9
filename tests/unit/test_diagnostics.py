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


def test_compile_returns_remarks_and_cli_prints_them(capsys):
    # nn.MultiheadAttention's heads are rank-3 operands: attn-cosine leaves them alone and says why.
    compiled = compile_model("mha", "attn-raise,attn-cosine")
    assert compiled.remarks and all(r.pass_name == "attn-cosine" and r.location == "mha" for r in compiled.remarks)
    assert main(["verify", "mha", "-p", "attn-raise,attn-cosine", "--tol", "10"]) == 0
    err = capsys.readouterr().err
    assert "remark: attn-cosine: mha: needs (batch, heads, length, dim)" in err
