"""ClipFormer on the memristive crossbar target: task quality vs write noise, with and without kv-clip.

For each model the float program is exported and raised once; every configuration then clones it, runs
``[kv-clip{alpha beta},]lower-to-xbar{gamma=...}`` and executes it on the crossbar simulator for several
noise seeds (one seed = one chip: its own static programming draws and its own write noise).

Models and measures:
* all-MiniLM-L6-v2 (real weights) on the project's 84 written English sentences (fitting/calibration.py's
  calibration + held-out lists), length 32: mean embedding cosine to the float model, and retrieval
  agreement: for each sentence as a query, whether its nearest other sentence (by embedding cosine) is
  the float model's (top-1), and the overlap of the top-5 sets.
* TinyViT trained on scikit-learn digits (shipped weights, ``vit-digits``): accuracy on its 500-image
  held-out split.

Grid: gamma in {0, 3, 4, 5}, without clipping and with kv-clip{alpha=2, beta=0.25} (the paper's
operating point), ``--seeds`` seeds each (mean ± std), plus an alpha/beta sweep at gamma = 5 with
``--sweep-seeds`` seeds each.
Other crossbar settings are lower-to-xbar's defaults (64x64 tiles, 2-bit cells, 8-bit weights and inputs,
6-bit dynamic ADC, 0.1-10 uS, differential pairs, sigma = 0.1).

Every (model, configuration, seed) is one item on the sweep engine (compiler/sweeps.py: in this process by
default, ``--workers N`` local Ray processes, ``--address`` an existing cluster), with a progress bar; each
worker builds the models once and lowers each configuration once.

Writes bench/results/xbar_clipformer.{md,json,png}. Run:
    OMP_NUM_THREADS=1 .venv/bin/python bench/xbar_clipformer.py --workers 2
    .venv/bin/python bench/xbar_clipformer.py --quick    (2 seeds, small sweep: a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from compiler import sweeps  # noqa: E402
from compiler.api import CompiledModel, ModelSpec, apply_passes, compile_model, load_spec, parse_pipeline  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
GAMMAS = (0.0, 3.0, 4.0, 5.0)
OPERATING_POINT = (2.0, 0.25)
SWEEP_ALPHAS = (0.0, 2.0, 4.0)
SWEEP_BETAS = (0.25, 0.5, 0.75, 1.0)
SENTENCE_LENGTH = 32


@dataclass
class Task:
    """A raised float program, its inputs, and how to score outputs against the float model."""

    name: str
    compiled: CompiledModel
    metrics: Callable[[tuple[torch.Tensor, ...]], dict[str, float]]
    primary: str


SIGMA = 0.1  # lower-to-xbar's default write-noise sigma


def pipeline(gamma: float, clip: tuple[float, float] | None, sigma: float) -> str:
    lowering = f"lower-to-xbar{{gamma={gamma} sigma={sigma}}}"
    if clip is None:
        return lowering
    return f"kv-clip{{alpha={clip[0]} beta={clip[1]}}},{lowering}"


def lowered(task: Task, passes: str) -> CompiledModel:
    module = task.compiled.module.clone()
    apply_passes(module, parse_pipeline(passes))
    return CompiledModel(module, task.compiled.weights, task.compiled.inputs, task.compiled.input_names)


# ------------------------------------------------------------------------------------------------------
# MiniLM: embedding fidelity and retrieval agreement
# ------------------------------------------------------------------------------------------------------


def minilm_task() -> Task:
    from compiler.models import minilm_tokenize
    from fitting.calibration import CALIBRATION_SENTENCES, HELDOUT_SENTENCES

    sentences = list(CALIBRATION_SENTENCES) + list(HELDOUT_SENTENCES)
    base = load_spec("minilm")
    encoded = minilm_tokenize(sentences, max_length=SENTENCE_LENGTH)
    inputs = (encoded["input_ids"], encoded["attention_mask"])
    spec = ModelSpec("minilm", base.model, inputs)
    compiled = compile_model(spec, "attn-raise")
    with torch.no_grad():
        reference = compiled.run()[1]
    ref_unit = torch.nn.functional.normalize(reference, dim=-1)
    ref_sim = ref_unit @ ref_unit.T
    ref_sim.fill_diagonal_(-2.0)
    ref_top1 = ref_sim.argmax(dim=-1)
    ref_top5 = ref_sim.topk(5, dim=-1).indices

    def metrics(outputs: tuple[torch.Tensor, ...]) -> dict[str, float]:
        unit = torch.nn.functional.normalize(outputs[1], dim=-1)
        sim = unit @ unit.T
        sim.fill_diagonal_(-2.0)
        top5 = sim.topk(5, dim=-1).indices
        overlap = [len(set(a.tolist()) & set(b.tolist())) / 5 for a, b in zip(top5, ref_top5)]
        return {
            "cosine": float((unit * ref_unit).sum(-1).mean()),
            "top1_agreement": float((sim.argmax(dim=-1) == ref_top1).float().mean()),
            "top5_overlap": statistics.fmean(overlap),
        }

    return Task(f"all-MiniLM-L6-v2 ({len(sentences)} sentences x {SENTENCE_LENGTH} tokens)", compiled, metrics, "cosine")


# ------------------------------------------------------------------------------------------------------
# TinyViT on digits: accuracy
# ------------------------------------------------------------------------------------------------------


def vit_digits_task() -> Task:
    from compiler.models import digits_split

    base = load_spec("vit-digits")
    _, _, test_images, test_labels = digits_split()
    spec = ModelSpec("vit-digits", base.model, (test_images,))
    compiled = compile_model(spec, "attn-raise")

    def metrics(outputs: tuple[torch.Tensor, ...]) -> dict[str, float]:
        return {"accuracy": float((outputs[0].argmax(dim=-1) == test_labels).float().mean())}

    return Task(f"TinyViT on sklearn digits ({len(test_labels)} held-out images)", compiled, metrics, "accuracy")


# ------------------------------------------------------------------------------------------------------
# Runs
# ------------------------------------------------------------------------------------------------------


BUILDERS: dict[str, Callable[[], Task]] = {"minilm": minilm_task, "vit-digits": vit_digits_task}


class ClipRunner:
    """One sweep worker (compiler/sweeps.py): builds the models' tasks once, lowers each configuration once, and
    scores one (model, passes, seed) item at a time; ``passes`` None is the float model."""

    def __init__(self, models: list[str]):
        self.tasks = {name: BUILDERS[name]() for name in models}
        self.lowered: dict[tuple[str, str], CompiledModel] = {}

    def run(self, items: list[dict[str, Any]]) -> list[dict[str, float]]:
        return [self.one(item) for item in items]

    def one(self, item: dict[str, Any]) -> dict[str, float]:
        task = self.tasks[item["model"]]
        passes = item["passes"]
        with torch.no_grad():
            if passes is None:
                return task.metrics(task.compiled.run())
            key = (item["model"], passes)
            if key not in self.lowered:
                self.lowered[key] = lowered(task, passes)
            return task.metrics(self.lowered[key].run(seed=item["seed"]))


def summarise(per_seed: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and std over seeds of every metric."""
    summary = {}
    for key in per_seed[0]:
        values = [run[key] for run in per_seed]
        summary[key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return summary


def configurations(gammas, sigma: float, alphas, betas) -> list[dict[str, Any]]:
    """The grid (every gamma, without and with the operating point) and the alpha/beta sweep at gamma = 5."""
    configs: list[dict[str, Any]] = []
    for gamma in gammas:
        for clip in (None, OPERATING_POINT):
            configs.append({"part": "grid", "gamma": gamma, "clip": clip, "passes": pipeline(gamma, clip, sigma)})
    for alpha in alphas:
        for beta in betas:
            clip = None if (alpha, beta) == (0.0, 1.0) else (alpha, beta)
            configs.append({"part": "sweep", "alpha": alpha, "beta": beta, "passes": pipeline(5.0, clip, sigma)})
    return configs


def run_sweep(models: list[str], names: dict[str, tuple[str, str]], gammas, sigma: float, seeds: int, sweep_seeds: int,
              alphas, betas, workers: int, address: str | None) -> tuple[list[dict], str]:
    """Every (model, configuration, seed) as one item on the sweep engine; results grouped back per model."""
    configs = configurations(gammas, sigma, alphas, betas)
    items: list[dict[str, Any]] = []
    for model in models:
        items.append({"model": model, "config": None, "passes": None, "seed": 0})
        for index, config in enumerate(configs):  # the grid and the sweep share some pipelines: keyed by config
            for seed in range(seeds if config["part"] == "grid" else sweep_seeds):
                items.append({"model": model, "config": index, "passes": config["passes"], "seed": seed})
    outputs, engine = sweeps.run_items(ClipRunner, {"models": models}, items, workers, address,
                                       sweeps.progress_bar(len(items), "configurations x seeds"), chunk=1)
    scores: dict[tuple[str, int | None], list[dict[str, float]]] = {}
    for item, output in zip(items, outputs, strict=True):
        scores.setdefault((item["model"], item["config"]), []).append(output)
    results = []
    for model in models:
        name, primary = names[model]
        result: dict[str, Any] = {"name": name, "primary": primary, "float": scores[(model, None)][0], "grid": [], "sweep": []}
        for index, config in enumerate(configs):
            summary = summarise(scores[(model, index)])
            if config["part"] == "grid":
                result["grid"].append({"gamma": config["gamma"], "clip": config["clip"], "metrics": summary})
            else:
                result["sweep"].append({"alpha": config["alpha"], "beta": config["beta"], "metrics": summary})
        results.append(result)
    return results, engine


# ------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------


def fmt(metric: dict[str, float]) -> str:
    return f"{metric['mean']:.4f} ± {metric['std']:.4f}"


def markdown(results: list[dict], sigma: float, seeds: int, sweep_seeds: int, command: str, seconds: float,
             engine: str) -> str:
    lines = [
        "# ClipFormer on the crossbar target: quality vs write noise",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min, torch {torch.__version__}, {platform.machine()}, "
        f"{torch.get_num_threads()} threads, sweep engine: {engine}). {seeds} noise seeds per gamma/clip configuration "
        f"and {sweep_seeds} per "
        "alpha/beta point (mean ± std over seeds; one seed = one chip: static programming draws and per-inference "
        "write noise).",
        "",
        "Crossbar: lower-to-xbar defaults (64x64 tiles, 2-bit cells, 8-bit weights by bit slicing, 8-bit inputs, "
        f"6-bit dynamic ADC, g 0.1-10 uS, differential pairs, write-noise sigma = {sigma:g}). gamma = 0 still has "
        "weight/input/ADC quantisation; the float column is the reference executor without a crossbar.",
        "",
    ]
    for result in results:
        keys = list(result["float"])
        lines += [f"## {result['name']}", "", "Float model: " + ", ".join(f"{k} {v:.4f}" for k, v in result["float"].items()), ""]
        lines += ["| gamma | kv-clip | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
        for row in result["grid"]:
            clip = "none" if row["clip"] is None else f"alpha={row['clip'][0]:g} beta={row['clip'][1]:g}"
            lines.append(f"| {row['gamma']:g} | {clip} | " + " | ".join(fmt(row["metrics"][k]) for k in keys) + " |")
        primary = result["primary"]
        alphas = sorted({row["alpha"] for row in result["sweep"]})
        betas = sorted({row["beta"] for row in result["sweep"]})
        if result["sweep"]:
            title = f"alpha/beta sweep at gamma = 5 ({primary}; alpha = 0, beta = 1 is no clipping; {sweep_seeds} seeds):"
            lines += ["", title, ""]
            lines += ["| alpha \\ beta | " + " | ".join(f"{b:g}" for b in betas) + " |", "|---|" + "---|" * len(betas)]
            table = {(row["alpha"], row["beta"]): row["metrics"][primary] for row in result["sweep"]}
            for alpha in alphas:
                lines.append(f"| {alpha:g} | " + " | ".join(fmt(table[(alpha, b)]) for b in betas) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5.5 * len(results), 8.5), squeeze=False)
    for column, result in enumerate(results):
        primary = result["primary"]
        ax = axes[0][column]
        for clip, style, label in ((None, "o-", "no clipping"), (OPERATING_POINT, "s--", "kv-clip α=2, β=0.25")):
            rows = [r for r in result["grid"] if (r["clip"] is None) == (clip is None)]
            ax.errorbar(
                [r["gamma"] for r in rows],
                [r["metrics"][primary]["mean"] for r in rows],
                yerr=[r["metrics"][primary]["std"] for r in rows],
                fmt=style,
                capsize=3,
                label=label,
            )
        ax.axhline(result["float"][primary], color="grey", linestyle=":", label="float model")
        ax.set_xlabel("write-noise factor γ")
        ax.set_ylabel(primary)
        ax.set_title(result["name"], fontsize=9)
        ax.legend(fontsize=8)
        ax = axes[1][column]
        if result["sweep"]:
            alphas = sorted({row["alpha"] for row in result["sweep"]})
            betas = sorted({row["beta"] for row in result["sweep"]})
            table = {(row["alpha"], row["beta"]): row["metrics"][primary]["mean"] for row in result["sweep"]}
            grid = [[table[(a, b)] for b in betas] for a in alphas]
            image = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto")
            ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
            ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
            for i, row in enumerate(grid):
                for j, value in enumerate(row):
                    ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white", fontsize=8)
            ax.set_xlabel("β (ceiling, × g_max)")
            ax.set_ylabel("α (dead zone, × g_min)")
            ax.set_title(f"{primary} at γ = 5", fontsize=9)
            fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="noise seeds per gamma/clip configuration (5)")
    parser.add_argument("--sweep-seeds", type=int, default=3, help="noise seeds per alpha/beta point (3)")
    parser.add_argument("--sigma", type=float, default=SIGMA, help="write-noise sigma (0.1, lower-to-xbar's default)")
    parser.add_argument("--gammas", default=",".join(f"{g:g}" for g in GAMMAS), help="comma-separated (0,3,4,5)")
    parser.add_argument("--quick", action="store_true", help="2 seeds and a 2x2 sweep (a smoke run)")
    parser.add_argument("--models", default="vit-digits,minilm", help="comma-separated: minilm, vit-digits")
    parser.add_argument("--out", default=str(RESULTS / "xbar_clipformer"), help="output path without suffix")
    parser.add_argument("--workers", type=int, default=1, help="sweep processes (1: in this process; more: local Ray)")
    parser.add_argument("--address", default=None, help="an existing Ray cluster to run the sweep on")
    args = parser.parse_args(argv)
    gammas = tuple(float(g) for g in args.gammas.split(","))
    seeds = 2 if args.quick else args.seeds
    sweep_seeds = 2 if args.quick else args.sweep_seeds
    alphas, betas = ((0.0, 2.0), (0.25, 1.0)) if args.quick else (SWEEP_ALPHAS, SWEEP_BETAS)
    command = "python bench/xbar_clipformer.py " + " ".join(argv if argv is not None else sys.argv[1:])
    start = time.perf_counter()

    models = [name.strip() for name in args.models.split(",")]
    names = {"minilm": (f"all-MiniLM-L6-v2 (84 sentences x {SENTENCE_LENGTH} tokens)", "cosine"),
             "vit-digits": ("TinyViT on sklearn digits (500 held-out images)", "accuracy")}
    results, engine = run_sweep(models, names, gammas, args.sigma, seeds, sweep_seeds, alphas, betas, args.workers,
                                args.address)
    seconds = time.perf_counter() - start
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = markdown(results, args.sigma, seeds, sweep_seeds, command.strip(), seconds, engine)
    out.with_suffix(".md").write_text(report)
    data = {"command": command.strip(), "engine": engine, "seeds": seeds, "results": results}
    out.with_suffix(".json").write_text(json.dumps(data, indent=1))
    plot(results, out.with_suffix(".png"))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
