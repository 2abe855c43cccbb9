"""How many crossbar tiles attention pruning empties: all-MiniLM-L6-v2's W_Q and W_K pruned by every method.

For each method and setting (50 %, 70 %, 90 % unstructured, 2:4) the bench prunes W_Q and W_K of all six
layers with ``attn-prune`` (calibration: the same 128 Wikipedia summaries as ``bench/prune_attention.py``) and
counts, for several tile sizes, the tiles of those twelve 384x384 matrices that hold only zeros: the tiles
``lower-to-xbar`` leaves unprogrammed. A weight (out, in) sits on the crossbar transposed, a tile of
``rows x cols`` covering ``rows`` inputs and ``cols`` outputs.

    .venv/bin/python bench/prune_xbar_tiles.py      # writes bench/results/prune_xbar_tiles.{md,json}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from prune_attention import batches, texts  # noqa: E402
from prune_common import RESULTS, SETTINGS, chosen_settings, prune  # noqa: E402

from compiler.api import ModelSpec, compile_model, print_module  # noqa: E402
from compiler.models import SentenceEmbedder, _offline_hub, minilm_path  # noqa: E402
from targets.crossbar.device import zero_tiles  # noqa: E402

TILES = [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="magnitude,wanda,sparsegpt,learned")
    parser.add_argument("--settings", default=",".join(label for label, _, _ in SETTINGS))
    parser.add_argument("--calibration", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    _offline_hub()
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    calibration = batches(tokenizer, texts(args.calibration, 0)[0])
    encoder = AutoModel.from_pretrained(minilm_path(), attn_implementation="eager").eval()
    dense = compile_model(ModelSpec("minilm", SentenceEmbedder(encoder).eval(), calibration[0]), "attn-raise")
    dense_text = print_module(dense.module)
    results: dict = {}
    for label, sparsity, granularity in chosen_settings(args.settings):
        for method in args.methods.split(","):
            _, weights, report, _, _ = prune(dense_text, dense.weights, calibration, method, sparsity, granularity)
            counts = {}
            for rows, cols in TILES:
                empty = sum(int(zero_tiles(weights[name], rows, cols).sum()) for name in report.sparsity)
                total = sum((weights[name].shape[1] // rows) * (weights[name].shape[0] // cols) for name in report.sparsity)
                counts[f"{rows}x{cols}"] = [empty, total]
            results[f"{method}@{label}"] = counts
            print(label, method, {k: f"{e}/{t}" for k, (e, t) in counts.items()}, flush=True)
    (RESULTS / "prune_xbar_tiles.json").write_text(json.dumps(results, indent=1))
    lines = [
        "# All-zero crossbar tiles of pruned all-MiniLM-L6-v2 W_Q, W_K",
        "",
        f"`{' '.join(['.venv/bin/python bench/prune_xbar_tiles.py', *sys.argv[1:]])}`: W_Q and W_K of all six layers (twelve",
        "384x384 matrices) pruned by `attn-prune`; the share of their tiles that hold only zeros, i.e. that",
        "`lower-to-xbar` does not program (tile = inputs x outputs).",
        "",
        "| setting | method | " + " | ".join(f"{r}x{c}" for r, c in TILES) + " |",
        "|---|---|" + "---:|" * len(TILES),
    ]
    for key, counts in results.items():
        method, label = key.split("@")
        cells = [f"{e}/{t} ({100.0 * e / t:.1f} %)" if e else f"0/{t}" for e, t in counts.values()]
        lines.append(f"| {label} | {method} | " + " | ".join(cells) + " |")
    (RESULTS / "prune_xbar_tiles.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
