"""What the attention-pruning benches share: the settings, one pruning run, the held-out attention error and the
results table (``prune_attention.py`` on MiniLM, ``prune_lm.py`` on the byte-level LMs, ``prune_xbar_tiles.py``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.api import apply_passes, parse_module, parse_pipeline  # noqa: E402
from fitting.capture import capture_operands  # noqa: E402
from fitting.prune import PruneReport, _Replay, marked_attentions, prune_pending  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = [("50%", 0.5, "unstructured"), ("70%", 0.7, "unstructured"), ("90%", 0.9, "unstructured"), ("2:4", 0.5, "2:4")]


def chosen_settings(labels: str) -> list[tuple[str, float, str]]:
    return [setting for setting in SETTINGS if setting[0] in labels.split(",")]


def prune(dense_text: str, dense_weights: dict, calibration: list, method: str, sparsity: float, granularity: str,
          learned: str = "") -> tuple:
    """``attn-prune`` with these options on a fresh copy of the dense program, then its calibration step.

    Returns (module, pruned weights, report, options, seconds of the calibration step); ``learned`` is appended to
    the options of ``method=learned``."""
    options = f'method={method} sparsity={sparsity} granularity="{granularity}"'
    if method == "learned" and learned:
        options += " " + learned
    module = parse_module(dense_text)
    apply_passes(module, parse_pipeline(f"attn-prune{{{options}}}"))
    weights = dict(dense_weights)
    start = time.perf_counter()
    report: PruneReport = prune_pending(module, weights, calibration)
    return module, weights, report, options, time.perf_counter() - start


def attention_errors(module, dense_weights, pruned_weights, batches, query_rows: Callable | None = None) -> list[float]:
    """Per pruned layer, ‖A − A_dense‖_F / ‖A_dense‖_F over the batches, each layer fed the dense model's activations.

    ``query_rows(batch)``, if given, weighs the attention matrix's query rows (e.g. 0 for padding tokens)."""
    blocks = marked_attentions(module, status="applied")
    wanted = []
    for block in blocks:
        wanted += block.query.externals() + block.key.externals() + ([(block.sdpa, 3)] if len(block.sdpa.operands) > 3 else [])
    captures = capture_operands(module, dense_weights, batches, wanted)
    replay = _Replay(module, dense_weights)
    errors = []
    for block in blocks:
        q, k = block.query.weight.key, block.key.weight.key
        difference = reference = 0.0
        with torch.no_grad():
            for capture, batch in zip(captures, batches):
                dense = replay.attention(block, dense_weights[q], dense_weights[k], capture)
                pruned = replay.attention(block, pruned_weights[q], pruned_weights[k], capture)
                rows = 1.0 if query_rows is None else query_rows(batch)
                difference += float(((pruned - dense) ** 2 * rows).sum())
                reference += float((dense**2 * rows).sum())
        errors.append((difference / reference) ** 0.5)
    return errors


Column = tuple[str, Callable[[dict], str]]  # header, the cell of one run


def results_table(runs: dict, methods: list[str], settings: list[str], columns: list[Column]) -> list[str]:
    """Markdown rows ``| setting | method | mean attention error | per layer | …columns |`` for every run present."""
    layers = next(iter(runs.values()))["layer_errors"] if runs else []
    lines = [
        f"| setting | method | mean attention error | per layer (0 … {len(layers) - 1}) | "
        + " | ".join(header for header, _ in columns) + " |",
        "|---|---|---:|---|" + "---:|" * len(columns),
    ]
    for setting in settings:
        for method in methods:
            run = runs.get(f"{method}@{setting}")
            if run is not None:
                cells = [cell(run) for _, cell in columns]
                lines.append(f"| {setting} | {method} | {run['mean_error']:.4f} | "
                             f"{' '.join(f'{e:.3f}' for e in run['layer_errors'])} | " + " | ".join(cells) + " |")
    return lines
