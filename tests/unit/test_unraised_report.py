"""attn-raise's report of the softmaxes it left in place: module path and the reason from the pattern's checks."""

from __future__ import annotations

import torch

from compiler.api import apply_passes, parse_pipeline
from compiler.frontend.fx_importer import import_exported_program
from passes.attn_raise import unraised_softmaxes


class SoftCapAttention(torch.nn.Module):
    """Gemma-2 style: tanh(scores / cap) * cap between the scale and the softmax."""

    def forward(self, q, k, v):
        scores = torch.matmul(q, k.transpose(-1, -2)) * 0.25
        scores = torch.tanh(scores / 50.0) * 50.0
        return torch.matmul(torch.softmax(scores, dim=-1), v)


class ReturnsWeights(torch.nn.Module):
    def forward(self, q, k, v):
        probs = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1)
        return torch.matmul(probs, v), probs


class Outer(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.attn = inner

    def forward(self, q, k, v):
        return self.attn(q, k, v)


class PlainAttention(torch.nn.Module):
    def forward(self, q, k, v):
        return torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * 0.25, dim=-1), v)


def _raised(inner: torch.nn.Module, pipeline: str = "attn-raise"):
    q, k, v = (torch.randn(1, 2, 5, 8) for _ in range(3))
    imported = import_exported_program(torch.export.export(Outer(inner), (q, k, v)))
    apply_passes(imported.module, parse_pipeline(pipeline))
    return unraised_softmaxes(imported.module)


def test_soft_capped_scores_are_reported_with_path_and_where_the_chain_stops():
    (entry,) = _raised(SoftCapAttention())
    assert entry.module_path == "attn"
    assert entry.reason.startswith("scores nn.mul <- nn.tanh <- nn.div <- nn.mul <- nn.matmul are not")
    assert entry.reason.endswith("(soft-capped scores)")


def test_returned_attention_weights_are_reported_as_extra_uses():
    (entry,) = _raised(ReturnsWeights())
    assert entry.module_path == "attn"
    assert "2 uses" in entry.reason


def test_raised_attention_leaves_nothing_to_report():
    assert _raised(PlainAttention()) == []


def test_attention_not_yet_raised_is_reported_as_raisable():
    (entry,) = _raised(PlainAttention(), pipeline="")
    assert entry.reason == "raisable: attn-raise has not run on this module"


def test_compile_report_lists_the_soft_capped_softmax(tmp_path):
    """The user's view: `attnc compile FILE:factory --report` names the module and the reason."""
    import subprocess
    import sys
    from pathlib import Path

    spec = tmp_path / "softcap.py"
    spec.write_text(
        "import torch\n"
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_unraised_report import Outer, SoftCapAttention\n"
        "def factory():\n"
        "    return Outer(SoftCapAttention()), tuple(torch.randn(1, 2, 5, 8) for _ in range(3))\n"
    )
    attnc = str(Path(sys.executable).with_name("attnc"))
    result = subprocess.run(
        [attnc, "compile", f"{spec}:factory", "-p", "attn-raise", "-o", str(tmp_path / "out"), "--report"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "1 softmax(es) not raised" in result.stdout
    assert "  attn: scores nn.mul <- nn.tanh" in result.stdout
