"""attn-raise's report of the softmaxes it left in place: module path and the reason from the pattern's checks."""

from __future__ import annotations

import torch

from compiler.api import apply_passes, parse_pipeline
from compiler.frontend.fx_importer import import_exported_program
from passes.attn_raise import unraised_softmaxes


class GatedAttention(torch.nn.Module):
    """Scores multiplied by a learned per-head gate: not a constant scale, so not attn.sdpa."""

    def __init__(self):
        super().__init__()
        self.gate = torch.nn.Parameter(torch.rand(2, 1, 1))

    def forward(self, q, k, v):
        scores = torch.matmul(q, k.transpose(-1, -2)) * torch.sigmoid(self.gate)
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


def test_gated_scores_are_reported_with_path_and_where_the_chain_stops():
    (entry,) = _raised(GatedAttention())
    assert entry.module_path == "attn"
    assert entry.reason.startswith("scores nn.mul <- nn.matmul are not [masks and biases]")


def test_returned_attention_weights_are_reported_as_extra_uses():
    (entry,) = _raised(ReturnsWeights())
    assert entry.module_path == "attn"
    assert "2 uses" in entry.reason


def test_raised_attention_leaves_nothing_to_report():
    assert _raised(PlainAttention()) == []


def test_attention_not_yet_raised_is_reported_as_raisable():
    (entry,) = _raised(PlainAttention(), pipeline="")
    assert entry.reason == "raisable: attn-raise has not run on this module"


def test_compile_report_lists_the_gated_softmax(tmp_path):
    """The user's view: `attnc compile FILE:factory --report` names the module and the reason."""
    import subprocess
    import sys
    from pathlib import Path

    spec = tmp_path / "gated.py"
    spec.write_text(
        "import torch\n"
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_unraised_report import GatedAttention, Outer\n"
        "def factory():\n"
        "    return Outer(GatedAttention()), tuple(torch.randn(1, 2, 5, 8) for _ in range(3))\n"
    )
    attnc = str(Path(sys.executable).with_name("attnc"))
    result = subprocess.run(
        [attnc, "compile", f"{spec}:factory", "-p", "attn-raise", "-o", str(tmp_path / "out"), "--report"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "1 softmax(es) not raised" in result.stdout
    assert "  attn: scores nn.mul <- nn.matmul" in result.stdout
