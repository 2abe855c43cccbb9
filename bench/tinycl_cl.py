"""Class-incremental Split-Fashion-MNIST (5 tasks x 2 classes): naive fine-tuning vs GDumb, float vs fixed point.

Every run is ``compiler.continual_run.continual_run`` (what ``attnc train --strategy`` runs) with one setting:

* numerics: ``torch`` (eager PyTorch float, the baseline without the compiler), ``reference`` (the compiled
  training step in float), ``tinycl-16/8`` and ``tinycl-12/6`` (the compiled step in fixed point on the TinyCL
  target); a TinyCL numerics takes extra ``lower-to-tinycl`` options after ``+``, e.g.
  ``tinycl-16/8+rounding=stochastic+grad-frac-bits=14``;
* strategy ``naive`` or ``gdumb`` with a memory size; attention ``softmax`` (``vit-cl``) or ``cosine``
  (``vit-cl-cosine``); seeds.

Each run's results JSON is kept under ``--out-dir`` (bench/results/tinycl_cl/runs/ by default; a rerun skips the
runs already there). ``--jobs N`` runs the grid as N single-threaded worker processes, the most important runs
first (GDumb M=500 in 16/8 and float, then 12/6, then the other memories, then naive), longest first within each
rank; ``--time-budget S`` starts no run after S seconds. ``--plan`` lists the runs and their estimated CPU time
without running them. The report bench/results/tinycl_cl.md and its plots (PNG, beside it) are written from every
run under bench/results/tinycl_cl/runs/ and ``--out-dir``.

Run (sizes are options; the report states what was run):
``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/tinycl_cl.py --numerics torch reference tinycl-16/8``
``.venv/bin/python bench/tinycl_cl.py --report`` rewrites the report from the stored runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from compiler.continual import ContinualConfig  # noqa: E402
from compiler.continual_run import RunChoices, continual_run  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "tinycl_cl" / "runs"
REPORT = RESULTS / "tinycl_cl.md"
# Runs on scikit-learn's digits (fast) that locate the fixed-point gap: their own section of the report.
DIGITS_RUNS = RESULTS / "tinycl_cl" / "digits"
NUMERICS = {
    "torch": ("torch", {}),
    "reference": ("reference", {}),
    "tinycl-16/8": ("tinycl", {"total-bits": "16", "frac-bits": "8"}),
    "tinycl-16/8-sr": ("tinycl", {"total-bits": "16", "frac-bits": "8", "rounding": "stochastic"}),
    "tinycl-12/6": ("tinycl", {"total-bits": "12", "frac-bits": "6"}),
    "tinycl-12/6-sr": ("tinycl", {"total-bits": "12", "frac-bits": "6", "rounding": "stochastic"}),
    "tinycl-16/10": ("tinycl", {"total-bits": "16", "frac-bits": "10"}),
    "tinycl-16/10-sr": ("tinycl", {"total-bits": "16", "frac-bits": "10", "rounding": "stochastic"}),
    "tinycl-12/8": ("tinycl", {"total-bits": "12", "frac-bits": "8"}),
}
# Seconds per training image of a whole run (steps of 32, the tests after each task, compilation), one thread,
# measured on this machine's x86 cores with Fashion-MNIST: what --plan's estimate and the longest-first order use.
SECONDS_PER_IMAGE = {"torch": 0.0002, "reference": 0.0004, "tinycl": 0.0021}
SECONDS_PER_RUN = 6.0  # a worker's start: importing torch and xDSL, reading the data
# vit-cl's training step at batch 32 needs more than the default 512 KiB of on-chip memory (the attention scores
# and their accumulators): the TinyCL runs model a 1 MiB SRAM.
TINYCL_SRAM_KB = "1024"
# The first grid was stored before runs recorded their command line.
FIRST_GRID = "python bench/tinycl_cl.py --numerics torch --attention softmax cosine --memories 200 500 1000 --seeds 0 1 2"
AVALANCHE_COMMAND = ("/tmp/aval/bin/python bench/avalanche_gdumb.py --seeds 0 --memories 500 --train-per-class 200 "
                     "--test-per-class 100  # separate venv: pip install avalanche-lib 'xdsl==0.74.*'")
ATTENTION_SPEC = {"softmax": "vit-cl", "cosine": "vit-cl-cosine"}
VARIANT_MEMORY = 500  # the memory at which --variants (numerics beside the main grid) are run


def parse_numerics(numerics: str) -> tuple[str, dict[str, str]]:
    """(target, lower-to-tinycl options) of a numerics name: a NUMERICS entry, then ``+key=value`` options."""
    base, *extra = numerics.split("+")
    if base not in NUMERICS:
        raise argparse.ArgumentTypeError(f"unknown numerics '{base}' (known: {', '.join(NUMERICS)})")
    target, options = NUMERICS[base]
    if extra and target != "tinycl":
        raise argparse.ArgumentTypeError(f"only tinycl numerics take options, not '{numerics}'")
    pairs = [item.split("=", 1) for item in extra]
    if any(len(pair) != 2 for pair in pairs):
        raise argparse.ArgumentTypeError(f"options after '+' are key=value, got '{numerics}'")
    return target, {**options, **dict(pairs)}


def numerics_name(numerics: str) -> str:
    parse_numerics(numerics)
    return numerics

@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a setting and the sizes shared by the whole grid (picklable, for worker processes)."""

    numerics: str
    attention: str
    strategy: str
    memory: int
    seed: int
    data: str
    tasks: int
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    train_per_class: int
    test_per_class: int
    raster: bool
    command: str

    def key(self) -> str:
        memory_part = f"m{self.memory}" if self.strategy == "gdumb" else "m0"
        return (f"{self.numerics.replace('/', '-')}_{self.attention}_{self.strategy}_{memory_part}_s{self.seed}"
                f"_e{self.epochs}_n{self.train_per_class}_t{self.test_per_class}{'_raster' if self.raster else ''}")

    def training_images(self) -> int:
        """Images trained on over the whole run (all epochs, all tasks): GDumb's memory, or each task's data."""
        per_task = 2 * self.train_per_class
        if self.strategy == "naive":
            return self.epochs * self.tasks * per_task
        return self.epochs * sum(min(self.memory, per_task * (task + 1)) for task in range(self.tasks))

    def estimated_seconds(self) -> float:
        target = parse_numerics(self.numerics)[0]
        return SECONDS_PER_RUN + self.training_images() * SECONDS_PER_IMAGE[target]

    def rank(self) -> int:
        """Which runs matter most: GDumb M=500 in float and plain 16/8; then its 16/8 variants (``-sr``, ``+...``)
        and 12/6; then the other memories; then naive."""
        if self.strategy == "naive":
            return 3
        if self.memory != VARIANT_MEMORY:
            return 2
        return 0 if self.numerics in ("torch", "reference", "tinycl-16/8") else 1


def one_run(spec: RunSpec) -> dict:
    target, options = parse_numerics(spec.numerics)
    if target == "tinycl":
        options = {**options, "sram-kb": TINYCL_SRAM_KB, **({"snake": "false"} if spec.raster else {})}
    choices = RunChoices(spec=ATTENTION_SPEC[spec.attention], target=target, target_options=options, data=spec.data,
                         train_per_class=spec.train_per_class, test_per_class=spec.test_per_class, lr=spec.lr,
                         momentum=spec.momentum)
    config = ContinualConfig(strategy=spec.strategy, memory=max(spec.memory, 1), tasks=spec.tasks, epochs=spec.epochs,
                             batch_size=spec.batch_size, seed=spec.seed)
    start, cpu = time.time(), time.process_time()
    results = continual_run(choices, config)
    results["wall_seconds"] = time.time() - start
    results["cpu_seconds"] = time.process_time() - cpu
    results["numerics"] = spec.numerics
    results["attention"] = spec.attention
    results["command"] = spec.command
    results["host"] = {"machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "threads": torch.get_num_threads()}
    return results


def single_threaded() -> None:
    """Each worker computes on one core (a grid of N workers fills N cores)."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def run_to_file(spec: RunSpec, out_dir: str, deadline: float | None) -> tuple[str, str, float]:
    """Runs one setting in a worker and writes its JSON (``<key>.json``, or ``<key>.error.txt`` on failure);
    returns (key, "done" | "skipped" | "failed: ...", wall seconds)."""
    single_threaded()
    if deadline is not None and time.time() > deadline:
        return spec.key(), "skipped (time budget)", 0.0
    start = time.time()
    path = Path(out_dir) / f"{spec.key()}.json"
    try:
        results = one_run(spec)
    except Exception as error:  # one failing setting must not lose the rest of the grid
        (Path(out_dir) / f"{spec.key()}.error.txt").write_text(traceback.format_exc())
        return spec.key(), f"failed: {type(error).__name__}: {error}", time.time() - start
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(results, indent=1))
    temporary.replace(path)
    return spec.key(), (f"done: {[round(a, 3) for a in results['average_accuracy']]} forgetting "
                        f"{results['final_forgetting']:.3f}"), time.time() - start


def grid(args) -> list[RunSpec]:
    """The runs the options ask for, most important first, longest first within a rank."""
    command = " ".join(["python bench/tinycl_cl.py", *sys.argv[1:]])
    specs = [
        RunSpec(numerics, attention, strategy, memory if strategy == "gdumb" else 0, seed, args.data, args.tasks,
                args.epochs, args.batch_size, args.lr, args.momentum, args.train_per_class, args.test_per_class,
                args.raster, command)
        for seed in args.seeds
        for numerics in args.numerics
        for attention in args.attention
        for strategy in args.strategies
        for memory in (args.memories if strategy == "gdumb" else [0])
    ] + [
        RunSpec(numerics, attention, "gdumb", VARIANT_MEMORY, seed, args.data, args.tasks, args.epochs, args.batch_size,
                args.lr, args.momentum, args.train_per_class, args.test_per_class, args.raster, command)
        for seed in args.seeds
        for numerics in args.variants
        for attention in args.attention
    ]
    return sorted(specs, key=lambda spec: (spec.rank(), -spec.estimated_seconds(), spec.key()))


def simulated_wall(specs: list[RunSpec], jobs: int, budget: float) -> float:
    """The estimated wall time of the grid: each run goes, in order, to the first free worker (as the pool does),
    none starting after ``budget`` seconds (0: no limit)."""
    free = [0.0] * jobs
    for spec in specs:
        index = min(range(jobs), key=free.__getitem__)
        if budget and free[index] > budget:
            break
        free[index] += spec.estimated_seconds()
    return max(free)


def run_grid(args) -> int:
    """Runs what is not stored yet; returns how many runs failed."""
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [spec for spec in grid(args) if not (out_dir / f"{spec.key()}.json").exists()]
    if args.plan:
        for spec in todo:
            print(f"rank {spec.rank()}  {spec.estimated_seconds():6.0f} s  {spec.training_images():7d} images  {spec.key()}")
        total = sum(spec.estimated_seconds() for spec in todo)
        print(f"{len(todo)} runs, about {total / 60:.1f} CPU minutes here; in this order on {args.jobs} workers about "
              f"{simulated_wall(todo, args.jobs, args.time_budget) / 60:.1f} minutes wall"
              + (f" (no run started after {args.time_budget:.0f} s)" if args.time_budget else ""))
        return 0
    from compiler.datasets import load_dataset

    load_dataset(args.data, 1, 1)  # fails here, once, when the data is missing
    deadline = time.time() + args.time_budget if args.time_budget else None
    start = time.time()
    print(f"{len(todo)} runs on {args.jobs} single-threaded workers -> {out_dir}", flush=True)
    single_threaded()  # with --jobs > 1, inherited by the workers' environment before they import torch
    failed = 0

    def record(key: str, status: str, seconds: float) -> None:
        nonlocal failed
        failed += status.startswith("failed")
        print(f"[{time.time() - start:6.0f} s] {key}: {status} ({seconds:.0f} s)", flush=True)

    if args.jobs == 1:
        for spec in todo:
            record(*run_to_file(spec, str(out_dir), deadline))
    else:
        import multiprocessing

        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run_to_file, spec, str(out_dir), deadline) for spec in todo]
            for future in as_completed(futures):
                record(*future.result())
    print(f"grid finished in {time.time() - start:.0f} s, {failed} failed", flush=True)
    return failed


def load_runs(directories: list[Path]) -> list[dict]:
    """Every run stored in the directories (a run stored in more than one is read once)."""
    paths = {path.name: path for directory in directories if directory.is_dir() for path in sorted(directory.glob("*.json"))}
    return [json.loads(path.read_text()) for _, path in sorted(paths.items())]


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
        cells = [mean_std([run["average_accuracy"][t] for run in runs]) if t < len(runs[0]["average_accuracy"]) else "-"
                 for t in range(tasks)]
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
    return [{"attention": attention, "numerics": numerics, **step_cost(attention, numerics, STEP_BATCH, args.lr,
                                                                       args.momentum)}
            for attention in ("softmax", "cosine") for numerics in ("tinycl-16/8", "tinycl-12/6")]


@functools.cache
def step_cost(attention: str, numerics: str, batch: int, lr: float, momentum: float) -> dict[str, float]:
    """The cost model's totals of ``vit-cl``'s (or ``vit-cl-cosine``'s) training step compiled for one batch size."""
    from compiler.api import ModelSpec, compile_model
    from compiler.models import vit_cl
    from targets.tinycl.cost import layer_costs, totals

    _, options = NUMERICS[numerics.split("+")[0]]
    model, _ = vit_cl(attention)
    example = torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    lowering = " ".join(f"{k}={v}" for k, v in {**options, "sram-kb": TINYCL_SRAM_KB}.items())
    pipeline = f"attn-raise,training-step{{lr={lr} momentum={momentum}}},lower-to-tinycl{{{lowering}}}"
    module = compile_model(ModelSpec(ATTENTION_SPEC[attention], model, (example,)), pipeline).module
    return totals(layer_costs(module))


def epoch_cost(run: dict, images: int) -> dict[str, float]:
    """The cost model's totals of one epoch over ``images`` samples: full batches plus the last, smaller one, each
    compiled at its own size as the trainer does."""
    full, rest = divmod(images, run["config"]["batch_size"])
    figures = {key: full * value for key, value in step_cost(
        run["attention"], run["numerics"], run["config"]["batch_size"], run["lr"], run["momentum"]).items()}
    if rest:
        for key, value in step_cost(run["attention"], run["numerics"], rest, run["lr"], run["momentum"]).items():
            figures[key] += value
    return figures


def task_cost_section(runs: list[dict], torch_runs: list[dict], clock_mhz: float) -> list[str]:
    """Per task of the seed-0 runs in 16-bit fixed point: one epoch's modelled cycles, energy and off-chip traffic with
    the snake and the raster tile order (recomputed from the cost model and checked against the cycles the trainer
    recorded), the modelled device time at ``clock_mhz``, and the CPU seconds measured here for the fixed-point
    simulation and for eager PyTorch in float on the same setting."""
    chosen = sorted((run for run in runs if run["numerics"].startswith("tinycl-16/") and run["config"]["seed"] == 0
                     and "+" not in run["numerics"]),
                    key=lambda run: (run["attention"], run["config"]["strategy"] == "naive", run["config"]["memory"]))
    if not chosen:
        return []

    def torch_seconds(run: dict, task: int) -> float | None:
        config = run["config"]
        for other in torch_runs:
            if (other["attention"], other["config"]["strategy"], other["config"]["seed"], other["data"]["train"]) == (
                    run["attention"], config["strategy"], config["seed"], run["data"]["train"]) and (
                    config["strategy"] == "naive" or other["config"]["memory"] == config["memory"]):
                record = other["after_task"][task]
                return record["seconds"] / len(record["epochs"])
        return None

    lines = [
        "Per epoch of each task (tasks that train on as many images share a row; CPU seconds are their median), seed "
        f"0, 16-bit runs. Modelled device time assumes a {clock_mhz:g} MHz clock (the cost "
        "model counts cycles). The energy and off-chip columns come from the cost model for the steps of one epoch (full "
        "batches and the last, smaller one, each compiled at its size), with the snake and with the raster tile order; "
        "the modelled cycles equal the ones the trainer recorded during the run (checked for every row). Measured: CPU "
        "seconds per epoch on this machine for the fixed-point simulation of the same step and for eager PyTorch in "
        "float (the `torch` runs of tinycl_cl.md, same setting and seed).",
        "",
        "| numerics | attention | strategy | task | images | steps | cycles | modelled s | energy mJ (snake) | (raster) "
        "| off-chip words (snake) | (raster) | CPU s, fixed-point simulation | CPU s, torch float | torch ÷ modelled |",
        "|" + "---|" * 15,
    ]
    run_totals = []
    for run in chosen:
        config = run["config"]
        name = "naive" if config["strategy"] == "naive" else f"gdumb M={config['memory']}"
        whole = {"cycles": 0.0, "energy_pj": 0.0, "energy_raster_pj": 0.0, "off_chip": 0.0, "off_chip_raster": 0.0}
        spans: list[list[dict]] = []  # consecutive tasks that train on as many images: one row
        for task in run["after_task"]:
            if spans and spans[-1][0]["train_samples"] == task["train_samples"]:
                spans[-1].append(task)
            else:
                spans.append([task])
        for span in spans:
            images = span[0]["train_samples"]
            figures = epoch_cost(run, images)
            for task in span:
                epochs = len(task["epochs"])
                recorded = task["cost"]["cycles"] / epochs
                if abs(figures["cycles"] - recorded) > 1e-6 * recorded:
                    raise SystemExit(f"{run['numerics']} {name} task {task['task'] + 1}: the cost model gives "
                                     f"{figures['cycles']:.0f} cycles per epoch, the run recorded {recorded:.0f}")
                for key in whole:
                    whole[key] += epochs * figures[key]
            modelled = figures["cycles"] / (clock_mhz * 1e6)
            simulated = statistics.median(task["seconds"] / len(task["epochs"]) for task in span)
            float_times = [torch_seconds(run, task["task"]) for task in span]
            measured = statistics.median(float_times) if None not in float_times else None
            first, last = span[0]["task"] + 1, span[-1]["task"] + 1
            steps = -(-images // config["batch_size"])
            lines.append(
                f"| {run['numerics']} | {run['attention']} | {name} | {first if first == last else f'{first}–{last}'} | "
                f"{images} | {steps} | {figures['cycles']:.3g} | {modelled:.3f} | {figures['energy_pj'] / 1e9:.2f} | "
                f"{figures['energy_raster_pj'] / 1e9:.2f} | {figures['off_chip']:.3g} | {figures['off_chip_raster']:.3g} | "
                f"{simulated:.1f} | {'-' if measured is None else f'{measured:.2f}'} | "
                f"{'-' if measured is None else f'{measured / modelled:.1f}x'} |")
        run_totals.append((run, name, whole))
    lines += ["", "Whole runs (5 tasks, every epoch), modelled:", "",
              "| numerics | attention | strategy | modelled s | energy mJ (snake) | (raster) | snake saves | "
              "off-chip words (snake) | (raster) | snake saves |", "|" + "---|" * 10]
    for run, name, whole in run_totals:
        lines.append(
            f"| {run['numerics']} | {run['attention']} | {name} | {whole['cycles'] / (clock_mhz * 1e6):.2f} | "
            f"{whole['energy_pj'] / 1e9:.1f} | {whole['energy_raster_pj'] / 1e9:.1f} | "
            f"{1 - whole['energy_pj'] / whole['energy_raster_pj']:.1%} | {whole['off_chip']:.3g} | "
            f"{whole['off_chip_raster']:.3g} | {1 - whole['off_chip'] / whole['off_chip_raster']:.1%} |")
    return lines


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


def plots(groups: dict[tuple, list[dict]], prefix: str = "tinycl_cl") -> list[str]:
    """Per training-set size: (1) accuracy over the classes seen after each task, GDumb at the middle memory and
    naive, per numerics; (2) final accuracy against the memory size, per numerics (naive as a dashed level);
    one panel per attention, mean and standard deviation over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def mean_and_std(values: list[float]) -> tuple[float, float]:
        return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    written = []
    for train in sorted({key[5] for key in groups}):
        keys = [key for key in sorted(groups) if key[5] == train and not key[-1]]
        numerics = sorted({key[0] for key in keys})
        colours = {name: f"C{index}" for index, name in enumerate(numerics)}
        attentions = [attention for attention in ATTENTION_SPEC if any(key[1] == attention for key in keys)]
        memories = sorted({key[3] for key in keys if key[2] == "gdumb"})
        middle = 500 if 500 in memories else (memories[len(memories) // 2] if memories else None)

        figure, axes = plt.subplots(1, len(attentions), figsize=(6.5 * len(attentions), 4.8), squeeze=False)
        for axis, attention in zip(axes[0], attentions):
            for key in keys:
                if key[1] != attention or (key[2] == "gdumb" and key[3] != middle):
                    continue
                runs = groups[key]
                tasks = len(runs[0]["average_accuracy"])
                stats = [mean_and_std([run["average_accuracy"][t] for run in runs]) for t in range(tasks)]
                means = [m for m, _ in stats]
                axis.errorbar(range(1, tasks + 1), means, yerr=[d for _, d in stats], marker="o", capsize=3,
                              color=colours[key[0]], linestyle="--" if key[2] == "naive" else "-",
                              label=f"{key[0]} {key[2]}" + (f" M={key[3]}" if key[2] == "gdumb" else "") + f" ({len(runs)})")
            axis.set_xticks(range(1, 1 + max(len(runs[0]["average_accuracy"]) for runs in groups.values())))
            axis.set_xlabel("tasks learned (2 classes each)")
            axis.set_ylabel("accuracy over the classes seen")
            axis.set_ylim(0, 1)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
            axis.set_title(f"{attention} attention, {train} training images")
        figure.tight_layout()
        name = f"{prefix}_n{train}.png"
        figure.savefig(RESULTS / name, dpi=110)
        written.append(name)
        plt.close(figure)

        if len(memories) < 2:
            continue
        figure, axes = plt.subplots(1, len(attentions), figsize=(6.5 * len(attentions), 4.8), squeeze=False)
        for axis, attention in zip(axes[0], attentions):
            for name_ in numerics:
                points = [(key[3], mean_and_std([run["final_average_accuracy"] for run in groups[key]]))
                          for key in keys if key[:3] == (name_, attention, "gdumb")]
                if points:
                    points.sort()
                    axis.errorbar([m for m, _ in points], [v[0] for _, v in points], yerr=[v[1] for _, v in points],
                                  marker="o", capsize=3, color=colours[name_], label=f"{name_} GDumb")
                naive = [key for key in keys if key[:3] == (name_, attention, "naive")]
                if naive:
                    level = statistics.mean(run["final_average_accuracy"] for run in groups[naive[0]])
                    axis.axhline(level, color=colours[name_], linestyle="--", linewidth=1, label=f"{name_} naive")
            axis.set_xscale("log")
            axis.minorticks_off()
            axis.set_xticks(memories, [str(m) for m in memories])
            axis.set_xlabel("GDumb memory (samples)")
            axis.set_ylabel("final accuracy over the 10 classes")
            axis.set_ylim(0, 1)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
            axis.set_title(f"{attention} attention, {train} training images")
        figure.tight_layout()
        name = f"{prefix}_memory_n{train}.png"
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


def finals(groups: dict[tuple, list[dict]], numerics: str, attention: str, strategy: str, memory: int,
           train: int) -> dict[int, float]:
    """Final accuracy per seed of one setting (empty when it was not run)."""
    for key, runs in groups.items():
        if key[:4] == (numerics, attention, strategy, memory) and key[5] == train and not key[-1]:
            return {run["config"]["seed"]: run["final_average_accuracy"] for run in runs}
    return {}


def compare(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, str] | None:
    """Mean final accuracy of two settings over the seeds both ran, and those seeds; None without a common seed."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    seeds = f"seed{'s' if len(common) > 1 else ''} {', '.join(map(str, common))}"
    return statistics.mean(a[s] for s in common), statistics.mean(b[s] for s in common), seeds


def goal_lines(groups: dict[tuple, list[dict]]) -> list[str]:
    """The issue's three goals, for every training-set size and memory where both sides were run, each over the
    seeds both sides ran."""
    lines = []
    all_numerics = sorted({key[0] for key in groups})
    fixed_numerics = [name for name in all_numerics if name.startswith("tinycl")]
    float_numerics = [name for name in ("reference", "torch") if name in all_numerics]
    for train in sorted({key[5] for key in groups}):
        for memory in sorted({key[3] for key in groups if key[2] == "gdumb" and key[5] == train}):
            for attention in ATTENTION_SPEC:
                for fixed in fixed_numerics:
                    for float_ in float_numerics:
                        pair = compare(finals(groups, fixed, attention, "gdumb", memory, train),
                                       finals(groups, float_, attention, "gdumb", memory, train))
                        if pair is not None:
                            a, b, seeds = pair
                            verdict = "holds" if b - a <= 0.02 else "does not hold"
                            lines.append(f"- GDumb M={memory}, {attention}, {train} images, {seeds}: {fixed} {a:.3f} vs "
                                         f"{float_} {b:.3f} (gap {100 * (b - a):.1f} points; goal within 2 points: {verdict})")
            for numerics in all_numerics:
                for attention in ATTENTION_SPEC:
                    pair = compare(finals(groups, numerics, attention, "gdumb", memory, train),
                                   finals(groups, numerics, attention, "naive", 0, train))
                    if pair is not None:
                        g, n, seeds = pair
                        lines.append(f"- GDumb M={memory} vs naive, {numerics}, {attention}, {train} images, {seeds}: "
                                     f"{g:.3f} vs {n:.3f} ({100 * (g - n):+.1f} points)")
            for numerics in all_numerics:
                pair = compare(finals(groups, numerics, "cosine", "gdumb", memory, train),
                               finals(groups, numerics, "softmax", "gdumb", memory, train))
                if pair is not None:
                    c, s_, seeds = pair
                    verdict = "holds" if s_ - c <= 0.02 else "does not hold"
                    lines.append(f"- cosine vs softmax, GDumb M={memory}, {numerics}, {train} images, {seeds}: {c:.3f} vs "
                                 f"{s_:.3f} ({100 * (c - s_):+.1f} points; goal within 2 points: {verdict})")
    return lines


def report(command: str, args) -> None:
    directories = [RUNS, *([Path(args.out_dir)] if Path(args.out_dir).resolve() != RUNS.resolve() else [])]
    runs = load_runs(directories)
    if not runs:
        raise SystemExit(f"no stored runs under {', '.join(map(str, directories))}")
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
        "The TinyCL runs here used an earlier training step, whose SGD update and non-GEMM backward units ran on the "
        "host in float. The runs of the step as it is now, every unit and the update in fixed point, are in "
        "[tinycl_cl_fixed_step.md](tinycl_cl_fixed_step.md).",
        "",
        *host_lines(runs),
        "",
        f"Tasks {first['tasks']}: 2 new Fashion-MNIST classes per task, single head over all 10 classes, no task "
        "label at test time. Balanced subsets of the official train/test split (the 'train images' column). "
        f"Model `vit-cl` (softmax attention) or `vit-cl-cosine`, untrained; SGD lr {first['lr']}, momentum "
        f"{first['momentum']}, batch {first['config']['batch_size']}, the same number of epochs per task for both "
        "strategies (GDumb: re-initialised from the seed and trained on its memory after each task).",
        "",
        "Numerics: `torch` is eager PyTorch in float (the baseline, no compiler); `reference` is the compiled training "
        "step on attnc's float executor; `tinycl-16/8`, `tinycl-16/10` and `tinycl-12/6` run the compiled step lowered "
        "to the TinyCL fixed-point array (total/fractional bits, nearest-even rounding); `-sr` uses stochastic rounding; "
        "`+key=value` sets one more `lower-to-tinycl` option. The avalanche "
        "rows are Avalanche's own `Naive`/`GDumb` strategies on the same data, model and optimiser (bench/avalanche_gdumb.py, "
        "in a separate environment with torch 2.14).",
        "",
        "Commands that produced the stored runs (`OMP_NUM_THREADS=1 python ...`; the 16-CPU runs came in two calls, as "
        "device time ran short: their logs are bench/results/tinycl_cl/device_grid1.log and device_grid2.log):",
        "",
        *command_lines(runs),
        f"- `{AVALANCHE_COMMAND}`",
        "",
        *coverage_lines(groups),
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
        *digits_section(),
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


def digits_section() -> list[str]:
    """Final accuracy of GDumb on digits per numerics (every run under DIGITS_RUNS), float first."""
    runs = load_runs([DIGITS_RUNS])
    if not runs:
        return []
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)

    def order(key: tuple) -> tuple:
        return (key[0] not in ("torch", "reference"), key[1:], key[0])

    lines = [
        "## Where the fixed-point gap comes from (digits)",
        "",
        "The same runs on scikit-learn's digits (8×8 images, `vit-cl` with patch 4; 5 tasks of 2 classes, all "
        f"{runs[0]['data']['train']} training and {runs[0]['data']['test']} test images), a few seconds each, with one "
        "`lower-to-tinycl` option changed at a time (`+key=value`). `frac-bits` is the data format (activations, and "
        "weights unless `weight-frac-bits` says otherwise); gradients default to `frac-bits + 4` fractional bits "
        "(at most total − 2).",
        "",
        "| numerics | attention | strategy | memory | epochs | seeds | final accuracy | per seed | final forgetting |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(groups, key=order):
        numerics, attention, strategy, memory, epochs, *_ = key
        members = sorted(groups[key], key=lambda run: run["config"]["seed"])
        finals = [run["final_average_accuracy"] for run in members]
        lines.append(f"| {numerics} | {attention} | {strategy} | {memory if strategy == 'gdumb' else '-'} | {epochs} | "
                     f"{len(members)} | {mean_std(finals)} | {', '.join(f'{value:.3f}' for value in finals)} | "
                     f"{mean_std([run['final_forgetting'] for run in members])} |")
    lines += ["", "Commands:", "", *[f"- `{command}`" for command in sorted({run["command"] for run in runs})], ""]
    return lines


def coverage_lines(groups: dict[tuple, list[dict]]) -> list[str]:
    """Per training-set size with fixed-point runs: which seeds each numerics × setting has (blank: not run)."""
    lines = []
    for train in sorted({key[5] for key in groups if key[0].startswith("tinycl")}):
        keys = [key for key in groups if key[5] == train and not key[-1]]
        settings = sorted({(key[2], key[3]) for key in keys}, key=lambda setting: (setting[0] == "naive", setting[1]))
        names = [f"GDumb M={memory}" if strategy == "gdumb" else "naive" for strategy, memory in settings]
        lines += [f"Seeds run, {train} training images (blank: not run):", "",
                  "| numerics | attention | " + " | ".join(names) + " |", "|" + "---|" * (2 + len(names))]
        for numerics in sorted({key[0] for key in keys}):
            for attention in ATTENTION_SPEC:
                cells = [", ".join(str(seed) for seed in sorted(finals(groups, numerics, attention, *setting, train)))
                         for setting in settings]
                if any(cells):
                    lines.append(f"| {numerics} | {attention} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def host_name(run: dict) -> str:
    """Where a run ran (runs from before hosts were recorded: the 2-core development machine)."""
    host = run.get("host")
    return (f"{host['machine']}, {host['cpus']} CPUs, torch {host['torch']}, {host['threads']} thread per run"
            if host else "x86_64, 2 shared CPUs, torch 2.13.0+cpu, 1 thread per run")


def command_lines(runs: list[dict]) -> list[str]:
    """Each command that produced stored runs, with how many runs and where."""
    counts: dict[tuple[str, str], int] = {}
    for run in runs:
        key = (run.get("command", FIRST_GRID), host_name(run))
        counts[key] = counts.get(key, 0) + 1
    return [f"- `{command}` ({count} run{'s' if count != 1 else ''}; {host})"
            for (command, host), count in sorted(counts.items())]


def host_lines(runs: list[dict]) -> list[str]:
    """Where the runs ran, with how many runs each."""
    hosts: dict[str, int] = {}
    for run in runs:
        name = host_name(run)
        hosts[name] = hosts.get(name, 0) + 1
    return ["Hosts: " + "; ".join(f"{name} ({count} runs)" for name, count in sorted(hosts.items())) + "."]


def table_only(directory: Path, output: Path, title: str, clock_mhz: float, notes: Path | None = None) -> None:
    """The report of the runs in ``directory`` alone, never merged with the stored runs (for runs made with a
    different training step, whose keys would otherwise collide with the stored ones): accuracy table, goals, plots
    (PNG beside ``output``, named after it), the per-task cost of the 16-bit runs, then ``notes`` (hand-written
    markdown: the reading of the figures) verbatim."""
    runs = load_runs([directory])
    if not runs:
        raise SystemExit(f"no runs under {directory}")
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    figures = plots(groups, prefix=output.stem) if output.parent.resolve() == RESULTS.resolve() else []
    torch_runs = [run for run in load_runs([RUNS]) if run["numerics"] == "torch"]
    lines = [f"# {title}", "", *host_lines(runs), "", "Commands:", *command_lines(runs), "",
             "Mean ± standard deviation over seeds of the average accuracy on all classes seen so far.", "",
             *accuracy_table(groups), "", "## Goals", "", *goal_lines(groups), "",
             *[f"![{name}]({name})" for name in figures], ""]
    costs = task_cost_section(runs, torch_runs, clock_mhz)
    if costs:
        lines += ["## Cost per task on the TinyCL array", "", *costs, ""]
    if notes is not None:
        lines += [notes.read_text().rstrip(), ""]
    output.write_text("\n".join(lines))
    print(f"wrote {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numerics", nargs="+", default=["torch"], type=numerics_name,
                        help=f"{', '.join(NUMERICS)}; a tinycl one may add +key=value lower-to-tinycl options")
    parser.add_argument("--attention", nargs="+", default=["softmax"], choices=sorted(ATTENTION_SPEC))
    parser.add_argument("--strategies", nargs="+", default=["naive", "gdumb"], choices=["naive", "gdumb"])
    parser.add_argument("--memories", nargs="+", type=int, default=[500])
    parser.add_argument("--variants", nargs="*", default=[], type=numerics_name,
                        help=f"more numerics, run only as GDumb with memory {VARIANT_MEMORY} (every attention and seed)")
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
    parser.add_argument("--jobs", type=int, default=1, help="worker processes, one thread each")
    parser.add_argument("--out-dir", default=str(RUNS), help="where each run's JSON goes (and is read back)")
    parser.add_argument("--time-budget", type=float, default=0.0, help="start no run after this many seconds (0: no limit)")
    parser.add_argument("--plan", action="store_true", help="list the runs still to do and their estimated time")
    parser.add_argument("--no-report", action="store_true", help="run the grid, write no report")
    parser.add_argument("--report", "--report-only", dest="report_only", action="store_true",
                        help="only write the report from the stored runs")
    parser.add_argument("--costs", action="store_true", help="recompute the per-step cost table")
    parser.add_argument("--table-only", type=Path, default=None, metavar="OUT.md",
                        help="write the report of the runs in --out-dir alone (not merged with the stored runs)")
    parser.add_argument("--title", default="Continual learning runs", help="the heading of --table-only's file")
    parser.add_argument("--notes", type=Path, default=None, help="a markdown file --table-only appends verbatim")
    parser.add_argument("--clock-mhz", type=float, default=100.0, help="clock assumed for modelled device time")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    torch.set_num_threads(1)
    if args.table_only is not None:
        table_only(Path(args.out_dir), args.table_only, args.title, args.clock_mhz, args.notes)
        return
    if not args.report_only:
        failed = run_grid(args)
        if failed:
            raise SystemExit(f"{failed} runs failed (their tracebacks: {args.out_dir}/*.error.txt)")
        if args.plan or args.no_report:
            return
    report(" ".join(["python bench/tinycl_cl.py", *sys.argv[1:]]), args)


if __name__ == "__main__":
    main()
