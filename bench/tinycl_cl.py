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
    "tinycl-16/8-sr": ("tinycl", {"total-bits": "16", "frac-bits": "8", "rounding": "stochastic"}),
    "tinycl-12/6": ("tinycl", {"total-bits": "12", "frac-bits": "6"}),
}
# vit-cl's training step at batch 32 needs more than the default 512 KiB of on-chip memory (the attention scores
# and their accumulators): the TinyCL runs model a 1 MiB SRAM.
TINYCL_SRAM_KB = "1024"
# The first grid was stored before runs recorded their command line.
FIRST_GRID = "python bench/tinycl_cl.py --numerics torch --attention softmax cosine --memories 200 500 1000 --seeds 0 1 2"
AVALANCHE_COMMAND = ("/tmp/aval/bin/python bench/avalanche_gdumb.py --seeds 0 --memories 500 --train-per-class 200 "
                     "--test-per-class 100  # separate venv: pip install avalanche-lib 'xdsl==0.74.*'")
ATTENTION_SPEC = {"softmax": "vit-cl", "cosine": "vit-cl-cosine"}


def run_key(numerics: str, attention: str, strategy: str, memory: int, seed: int, args) -> str:
    memory_part = f"m{memory}" if strategy == "gdumb" else "m0"
    return (f"{numerics.replace('/', '-')}_{attention}_{strategy}_{memory_part}_s{seed}_e{args.epochs}"
            f"_n{args.train_per_class}_t{args.test_per_class}{'_raster' if args.raster else ''}")


def one_run(numerics: str, attention: str, strategy: str, memory: int, seed: int, args) -> dict:
    target, options = NUMERICS[numerics]
    if target == "tinycl":
        options = {**options, "sram-kb": TINYCL_SRAM_KB, **({"snake": "false"} if args.raster else {})}
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
    results["command"] = " ".join(["python bench/tinycl_cl.py", *__import__("sys").argv[1:]])
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


STEP_BATCH = 32
COST_TRAIN, COST_MEMORY = 2000, 500  # the runs the per-epoch cost table follows
STEP_FIELDS = ("macs", "cycles", "off_chip", "off_chip_raster", "energy_pj", "energy_raster_pj")


def step_costs(args) -> list[dict]:
    """The cost model's figures of one compiled training step (forward, backward, SGD update) of ``vit-cl`` at batch
    32 on the TinyCL array, per attention and format: the same IR the runs execute, compiled once more here."""
    from compiler.api import ModelSpec, compile_model
    from compiler.models import vit_cl
    from targets.tinycl.cost import layer_costs, totals

    rows = []
    for attention in ("softmax", "cosine"):
        for numerics in ("tinycl-16/8", "tinycl-12/6"):
            _, options = NUMERICS[numerics]
            model, _ = vit_cl(attention)
            example = torch.rand(STEP_BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(0))
            lowering = " ".join(f"{k}={v}" for k, v in {**options, "sram-kb": TINYCL_SRAM_KB}.items())
            pipeline = (f"attn-raise,training-step{{lr={args.lr} momentum={args.momentum}}},"
                        f"lower-to-tinycl{{{lowering}}}")
            module = compile_model(ModelSpec(ATTENTION_SPEC[attention], model, (example,)), pipeline).module
            rows.append({"attention": attention, "numerics": numerics, **totals(layer_costs(module))})
    return rows


def cost_section(costs: list[dict], runs: list[dict], clock_mhz: float) -> list[str]:
    lines = [
        f"One training step (forward, backward, SGD update; batch {STEP_BATCH}) of `vit-cl` on the modelled TinyCL "
        f"array (16x16 MACs, {TINYCL_SRAM_KB} KiB SRAM), from the cost model; the snake tile order against the "
        "raster order:",
        "",
        "| attention | format | MACs | cycles | off-chip words (snake) | (raster) | energy µJ (snake) | (raster) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in costs:
        lines.append(f"| {row['attention']} | {row['numerics']} | {row['macs']:.3g} | {row['cycles']:.3g} | "
                     f"{row['off_chip']:.3g} | {row['off_chip_raster']:.3g} | {row['energy_pj'] / 1e6:.1f} | "
                     f"{row['energy_raster_pj'] / 1e6:.1f} |")
    softmax16 = next(row for row in costs if row["attention"] == "softmax" and row["numerics"] == "tinycl-16/8")
    lines += ["", f"Per epoch of each task (steps counted at batch {STEP_BATCH}; softmax, 16/8), for the seed-0 runs with "
              f"{COST_TRAIN} training images. Modelled device time assumes a {clock_mhz:g} MHz clock (the cost model counts "
              "cycles, not seconds). Measured: this machine's CPU seconds per epoch (2 shared cores, heavily loaded while "
              "these ran) for the fixed-point simulation of the same compiled step (tinycl-16/8) and for eager PyTorch in "
              "float (torch).", "",
              "| strategy | task | images per epoch | steps | cycles | modelled s | energy mJ (snake) | (raster) | off-chip "
              "words (snake) | (raster) | CPU s tinycl-16/8 | CPU s torch |", "|" + "---|" * 12]

    def seconds(numerics: str, strategy: str, task: int) -> str:
        for run in runs:
            config = run["config"]
            if (run["numerics"], run["attention"], config["strategy"], run["data"]["train"], config["seed"]) == (
                    numerics, "softmax", strategy, COST_TRAIN, 0) and (strategy == "naive" or config["memory"] == COST_MEMORY):
                record = run["after_task"][task]
                return f"{record['seconds'] / len(record['epochs']):.1f}"
        return "-"

    for strategy in ("naive", "gdumb"):
        for run in runs:
            config = run["config"]
            if (run["numerics"], run["attention"], config["strategy"], run["data"]["train"], config["seed"]) != (
                    "torch", "softmax", strategy, COST_TRAIN, 0) or (strategy == "gdumb" and config["memory"] != COST_MEMORY):
                continue
            for task in run["after_task"]:
                steps = -(-task["train_samples"] // STEP_BATCH)
                cycles = steps * softmax16["cycles"]
                name = strategy if strategy == "naive" else f"gdumb M={COST_MEMORY}"
                lines.append(
                    f"| {name} | {task['task'] + 1} | {task['train_samples']} | {steps} | {cycles:.3g} | "
                    f"{cycles / (clock_mhz * 1e6):.3f} | {steps * softmax16['energy_pj'] / 1e9:.1f} | "
                    f"{steps * softmax16['energy_raster_pj'] / 1e9:.1f} | {steps * softmax16['off_chip']:.3g} | "
                    f"{steps * softmax16['off_chip_raster']:.3g} | {seconds('tinycl-16/8', strategy, task['task'])} | "
                    f"{seconds('torch', strategy, task['task'])} |")
    return lines


def plots(groups: dict[tuple, list[dict]]) -> list[str]:
    """Per training-set size: accuracy over the classes seen after each task, and final forgetting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for train in sorted({key[5] for key in groups}):
        keys = [key for key in sorted(groups) if key[5] == train and not key[-1]]
        figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
        for key in keys:
            runs = groups[key]
            curve = [statistics.mean(run["average_accuracy"][t] for run in runs) for t in range(len(runs[0]["average_accuracy"]))]
            left.plot(range(1, len(curve) + 1), curve, marker="o", linestyle="--" if key[2] == "naive" else "-",
                      label=f"{label(key)} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        left.set_xlabel("tasks learned (2 classes each)")
        left.set_ylabel("accuracy over the classes seen")
        left.set_ylim(0, 1)
        left.grid(alpha=0.3)
        left.legend(fontsize=7)
        left.set_title(f"Split-Fashion-MNIST, {train} training images")
        right.barh([label(key) for key in keys], [statistics.mean(r["final_forgetting"] for r in groups[key]) for key in keys])
        right.set_xlabel("final forgetting (mean over earlier tasks and seeds)")
        right.tick_params(axis="y", labelsize=7)
        figure.tight_layout()
        name = f"tinycl_cl_n{train}.png"
        figure.savefig(RESULTS / name, dpi=110)
        written.append(name)
        plt.close(figure)
    return written


def avalanche_rows() -> list[str]:
    runs = [json.loads(path.read_text()) for path in sorted((RESULTS / "tinycl_cl" / "avalanche").glob("*.json"))]
    lines = []
    for run in runs:
        cells = " | ".join(f"{a:.3f}" for a in run["average_accuracy"])
        lines.append(f"| avalanche {run['avalanche']} (torch {run['torch']}) | softmax | {run['strategy']} | "
                     f"{run['memory'] or '-'} | {run['epochs']} | {run['train']} | 1 (seed {run['seed']}) | {cells} | "
                     f"{run['final_forgetting']:.3f} |")
    return lines


def final(groups: dict[tuple, list[dict]], numerics: str, attention: str, strategy: str, memory: int, train: int):
    for key, runs in groups.items():
        if key[:4] == (numerics, attention, strategy, memory) and key[5] == train and not key[-1]:
            return statistics.mean(run["final_average_accuracy"] for run in runs)
    return None


def goal_lines(groups: dict[tuple, list[dict]]) -> list[str]:
    """The issue's three goals, for every training-set size and memory where both sides were run."""
    lines = []
    for train in sorted({key[5] for key in groups}):
        for memory in sorted({key[3] for key in groups if key[2] == "gdumb" and key[5] == train}):
            for fixed in ("tinycl-16/8", "tinycl-16/8-sr"):
                for float_ in ("reference", "torch"):
                    a = final(groups, fixed, "softmax", "gdumb", memory, train)
                    b = final(groups, float_, "softmax", "gdumb", memory, train)
                    if a is not None and b is not None:
                        verdict = "holds" if b - a <= 0.02 else "does not hold"
                        lines.append(f"- GDumb M={memory}, {train} images: {fixed} {a:.3f} vs {float_} {b:.3f} "
                                     f"(gap {100 * (b - a):.1f} points; goal within 2 points: {verdict})")
            for numerics in ("reference", "torch", "tinycl-16/8", "tinycl-16/8-sr", "tinycl-12/6"):
                g = final(groups, numerics, "softmax", "gdumb", memory, train)
                n = final(groups, numerics, "softmax", "naive", 0, train)
                if g is not None and n is not None:
                    lines.append(f"- GDumb M={memory} vs naive, {numerics}, {train} images: {g:.3f} vs {n:.3f} "
                                 f"({100 * (g - n):+.1f} points)")
            for numerics in ("tinycl-16/8", "tinycl-16/8-sr", "torch", "reference"):
                c = final(groups, numerics, "cosine", "gdumb", memory, train)
                s_ = final(groups, numerics, "softmax", "gdumb", memory, train)
                if c is not None and s_ is not None:
                    verdict = "holds" if s_ - c <= 0.02 else "does not hold"
                    lines.append(f"- cosine vs softmax, GDumb M={memory}, {numerics}, {train} images: {c:.3f} vs "
                                 f"{s_:.3f} ({100 * (c - s_):+.1f} points; goal within 2 points: {verdict})")
    return lines


def report(command: str, args) -> None:
    runs = load_runs()
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    figures = plots(groups)
    costs_path = RESULTS / "tinycl_cl" / "step_costs.json"
    if args.costs or not costs_path.exists():
        costs_path.write_text(json.dumps(step_costs(args), indent=1))
    costs = json.loads(costs_path.read_text())
    first = runs[0]
    table = accuracy_table(groups)
    lines = [
        "# Class-incremental Split-Fashion-MNIST on the TinyCL target: naive vs GDumb, float vs fixed point",
        "",
        f"Generated by `bench/tinycl_cl.py` ({platform.processor() or platform.machine()}, torch {torch.__version__}) from "
        "the runs stored under bench/results/tinycl_cl/runs/ (each run's command line is in its JSON); "
        f"last command: `{command}`.",
        "",
        f"Tasks {first['tasks']}: 2 new Fashion-MNIST classes per task, single head over all 10 classes, no task "
        "label at test time. Balanced subsets of the official train/test split (the 'train images' column). "
        f"Model `vit-cl` (softmax attention) or `vit-cl-cosine`, untrained; SGD lr {first['lr']}, momentum "
        f"{first['momentum']}, batch {first['config']['batch_size']}, the same number of epochs per task for both "
        "strategies (GDumb: re-initialised from the seed and trained on its memory after each task).",
        "",
        "Numerics: `torch` is eager PyTorch in float (the baseline, no compiler); `reference` is the compiled training "
        "step on attnc's float executor; `tinycl-16/8` and `tinycl-12/6` run the compiled step lowered to the TinyCL "
        "fixed-point array (total/fractional bits, nearest-even rounding); `-sr` uses stochastic rounding. The avalanche "
        "rows are Avalanche's own `Naive`/`GDumb` strategies on the same data, model and optimiser (bench/avalanche_gdumb.py, "
        "in a separate environment with torch 2.14).",
        "",
        "Commands that produced the stored runs (`OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python ...`):",
        "",
        *[f"- `{command}`" for command in sorted({run.get("command", FIRST_GRID) for run in runs})],
        f"- `{AVALANCHE_COMMAND}`",
        "",
        "## Average accuracy over the classes seen, after each task (mean ± std over seeds)",
        "",
        *table,
        *avalanche_rows(),
        "",
        "## Goals",
        "",
        *goal_lines(groups),
        "",
        *[f"![{name}]({name})" for name in figures],
        "",
        "## Cost on the TinyCL array",
        "",
        *cost_section(costs, runs, args.clock_mhz),
        "",
    ]
    measured = cost_rows(groups)
    if measured:
        lines += ["Per epoch as the trainer's epoch_cost() reported it:", "", *measured, ""]
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
    parser.add_argument("--costs", action="store_true", help="recompute the per-step cost table")
    parser.add_argument("--clock-mhz", type=float, default=100.0, help="clock assumed for modelled device time")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.report_only:
        run_grid(args)
    import sys

    report(" ".join(["python bench/tinycl_cl.py", *sys.argv[1:]]), args)


if __name__ == "__main__":
    main()
