"""Class-incremental Split-Fashion-MNIST (5 tasks x 2 classes): naive fine-tuning vs GDumb, float vs fixed point.

Every run is ``compiler.continual_run.continual_run`` (what ``attnc train --strategy`` runs) with one setting:

* numerics: ``torch`` (eager PyTorch float, the baseline without the compiler), ``reference`` (the compiled
  training step in float), ``tinycl-16/8`` and ``tinycl-12/6`` (the compiled step in fixed point on the TinyCL
  target);
* strategy ``naive`` or ``gdumb`` with a memory size; attention ``softmax`` (``vit-cl``) or ``cosine``
  (``vit-cl-cosine``); seeds.

Each run's results JSON is kept under bench/results/tinycl_cl/runs/ (a rerun skips the runs already there), then
the report bench/results/tinycl_cl.md and its plots (PNG, beside it) are written from all the runs there.

Run (sizes are options; the report states what was run):
``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/tinycl_cl.py --numerics torch reference tinycl-16/8``
``.venv/bin/python bench/tinycl_cl.py --report-only`` rewrites the report from the stored runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from compiler.continual import ContinualConfig
from compiler.continual_run import RunChoices, continual_run

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "tinycl_cl" / "runs"
REPORT = RESULTS / "tinycl_cl.md"
NUMERICS = {
    "torch": ("torch", {}),
    "reference": ("reference", {}),
    "tinycl-16/8": ("tinycl", {"total-bits": "16", "frac-bits": "8"}),
    "tinycl-12/6": ("tinycl", {"total-bits": "12", "frac-bits": "6"}),
}
ATTENTION_SPEC = {"softmax": "vit-cl", "cosine": "vit-cl-cosine"}


def run_key(numerics: str, attention: str, strategy: str, memory: int, seed: int, args) -> str:
    memory_part = f"m{memory}" if strategy == "gdumb" else "m0"
    return (f"{numerics.replace('/', '-')}_{attention}_{strategy}_{memory_part}_s{seed}_e{args.epochs}"
            f"_n{args.train_per_class}_t{args.test_per_class}{'_raster' if args.raster else ''}")


def one_run(numerics: str, attention: str, strategy: str, memory: int, seed: int, args) -> dict:
    target, options = NUMERICS[numerics]
    options = {**options, **({"snake": "false"} if args.raster and target == "tinycl" else {})}
    choices = RunChoices(spec=ATTENTION_SPEC[attention], target=target, target_options=options, data=args.data,
                         train_per_class=args.train_per_class, test_per_class=args.test_per_class, lr=args.lr,
                         momentum=args.momentum)
    config = ContinualConfig(strategy=strategy, memory=max(memory, 1), tasks=args.tasks, epochs=args.epochs,
                             batch_size=args.batch_size, seed=seed)
    start = time.time()
    results = continual_run(choices, config)
    results["wall_seconds"] = time.time() - start
    results["numerics"] = numerics
    results["attention"] = attention
    return results


def run_grid(args) -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for numerics in args.numerics:
            for attention in args.attention:
                for strategy in args.strategies:
                    for memory in (args.memories if strategy == "gdumb" else [0]):
                        path = RUNS / f"{run_key(numerics, attention, strategy, memory, seed, args)}.json"
                        if path.exists():
                            continue
                        results = one_run(numerics, attention, strategy, memory, seed, args)
                        path.write_text(json.dumps(results, indent=1))
                        print(f"{path.name}: {[round(a, 3) for a in results['average_accuracy']]} "
                              f"forgetting {results['final_forgetting']:.3f} ({results['wall_seconds']:.0f} s)", flush=True)


def load_runs() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(RUNS.glob("*.json"))]


def group_key(run: dict) -> tuple:
    config = run["config"]
    memory = config["memory"] if config["strategy"] == "gdumb" else 0
    raster = run.get("target_options", {}).get("snake") == "false"
    return (run["numerics"], run["attention"], config["strategy"], memory, config["epochs"], run["data"]["train"], raster)


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def label(key: tuple) -> str:
    numerics, attention, strategy, memory, *_ = key
    return f"{numerics} {attention} {strategy}" + (f" M={memory}" if strategy == "gdumb" else "")


def accuracy_table(groups: dict[tuple, list[dict]]) -> list[str]:
    tasks = max(len(run["average_accuracy"]) for runs in groups.values() for run in runs)
    header = ("| numerics | attention | strategy | memory | epochs | train images | seeds | "
              + " | ".join(f"acc. after task {t + 1}" for t in range(tasks)) + " | final forgetting |")
    lines = [header, "|" + "---|" * (8 + tasks)]
    for key, runs in sorted(groups.items()):
        numerics, attention, strategy, memory, epochs, train, raster = key
        if raster:
            continue
        cells = [mean_std([run["average_accuracy"][t] for run in runs]) for t in range(tasks)]
        lines.append(f"| {numerics} | {attention} | {strategy} | {memory if strategy == 'gdumb' else '-'} | {epochs} | "
                     f"{train} | {len(runs)} | " + " | ".join(cells) + f" | {mean_std([r['final_forgetting'] for r in runs])} |")
    return lines


def cost_rows(groups: dict[tuple, list[dict]]) -> list[str]:
    """Per GDumb/naive TinyCL setting: the cost model's figures of one epoch and of each task, and CPU seconds."""
    lines = []
    for key, runs in sorted(groups.items()):
        run = runs[0]
        epochs = [epoch for task in run["after_task"] for epoch in task["epochs"]]
        if not epochs or epochs[0]["cost"] is None:
            continue
        if not lines:
            fields = list(epochs[0]["cost"])
            lines = ["| setting | order | per | " + " | ".join(fields) + " | CPU s (measured here) |",
                     "|" + "---|" * (4 + len(fields))]
        order = "raster" if key[-1] else "snake"
        for task in run["after_task"]:
            cost = task["cost"] or {}
            per_epoch = {name: value / len(task["epochs"]) for name, value in cost.items()}
            lines.append(f"| {label(key)} | {order} | epoch of task {task['task'] + 1} ({task['train_samples']} images) | "
                         + " | ".join(f"{per_epoch.get(name, float('nan')):.4g}" for name in fields)
                         + f" | {task['seconds'] / len(task['epochs']):.1f} |")
    return lines


def plots(groups: dict[tuple, list[dict]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for key, runs in sorted(groups.items()):
        if key[-1]:
            continue
        curve = [statistics.mean(run["average_accuracy"][t] for run in runs) for t in range(len(runs[0]["average_accuracy"]))]
        axis.plot(range(1, len(curve) + 1), curve, marker="o", linestyle="--" if key[2] == "naive" else "-", label=label(key))
    axis.set_xlabel("tasks learned")
    axis.set_ylabel("accuracy over the classes seen")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    axis.set_title("Split-Fashion-MNIST: average accuracy after each task (mean over seeds)")
    figure.tight_layout()
    figure.savefig(RESULTS / "tinycl_cl_accuracy.png", dpi=120)
    written.append("tinycl_cl_accuracy.png")
    figure, axis = plt.subplots(figsize=(7, 4.5))
    keys = [key for key in sorted(groups) if not key[-1]]
    axis.barh([label(key) for key in keys], [statistics.mean(r["final_forgetting"] for r in groups[key]) for key in keys])
    axis.set_xlabel("final forgetting (mean over earlier tasks and seeds)")
    axis.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(RESULTS / "tinycl_cl_forgetting.png", dpi=120)
    written.append("tinycl_cl_forgetting.png")
    plt.close("all")
    return written


def report(command: str) -> None:
    runs = load_runs()
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    figures = plots(groups)
    first = runs[0]
    lines = [
        "# Class-incremental Split-Fashion-MNIST on the TinyCL target: naive vs GDumb, float vs fixed point",
        "",
        f"Generated by `bench/tinycl_cl.py` ({platform.processor() or platform.machine()}, torch {torch.__version__}); "
        f"last command: `{command}`.",
        "",
        f"Data: {first['data']['name']}, tasks {first['tasks']} (classes per task), {first['data']['train']} training "
        f"and {first['data']['test']} test images (balanced subsets); model `vit-cl` (softmax) / `vit-cl-cosine`; "
        f"SGD lr {first['lr']} momentum {first['momentum']}, batch {first['config']['batch_size']}.",
        "",
        "## Average accuracy over the classes seen, after each task (mean ± std over seeds)",
        "",
        *accuracy_table(groups),
        "",
        *[f"![{name}]({name})" for name in figures],
        "",
    ]
    costs = cost_rows(groups)
    if costs:
        lines += ["## Cost model per epoch (TinyCL target)", "", *costs, ""]
    REPORT.write_text("\n".join(lines) + "\n")
    print(f"wrote {REPORT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numerics", nargs="+", default=["torch"], choices=sorted(NUMERICS))
    parser.add_argument("--attention", nargs="+", default=["softmax"], choices=sorted(ATTENTION_SPEC))
    parser.add_argument("--strategies", nargs="+", default=["naive", "gdumb"])
    parser.add_argument("--memories", nargs="+", type=int, default=[500])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--raster", action="store_true", help="TinyCL cost model with the raster tile order")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.report_only:
        run_grid(args)
    import sys

    report(" ".join(["python bench/tinycl_cl.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
