"""ABFT for attention: fault coverage per site on MiniLM, kernel overhead, campaign speed-up, detection vs τ.

1. Overhead: the blockwise kernel unchecked (the anchor), with check=flash (and narrowed to its first
   invariant(s)), per-gemm and both, and PyTorch's SDPA for scale, at T = 512 ... 4096 (batch 1, 4 heads,
   head size 64, block 128), timed interleaved on one thread in thread CPU time (the machine is shared: CPU
   time leaves out the time other processes hold the core); median and minimum of ``--reps`` runs, and
   their ratios to the unchecked kernel.
2. Coverage: all-MiniLM-L6-v2 (bundled ``minilm``, real weights) on one short example sentence (13 tokens;
   the trials vary its token ids) compiled with ``attn-raise,abft-weave{linear=true check=...}`` for flash
   and per-gemm; ``--trials`` (flash) and ``--gemm-trials`` transient faults per site (every fault model
   of runtime/fault_injection.py, uniformly), the model run with every check on ``count``; a fault is
   significant when it moves the model output by more than 1e-3 relative L2 (or makes it non-finite).
   ``--clean-runs`` fault-free runs on varied inputs count false alarms. The flash campaign runs in rounds
   of ``--round`` trials per site; each round's results are kept, so a campaign cut short still reports
   every finished round.
3. Detection rate of significant faults vs τ per site (flash), from each trial's largest relative residual,
   with the clean runs' largest residual: bench/results/abft_tau.png.
4. Campaign speed-up: the same ``--speedup-trials`` work items on one worker (in-process) and on local Ray
   with ``--workers`` workers, end to end (start-up included), and with the start-up (a 2-item run) taken
   out.
5. Passes (``--parts passes``): what each operation of one key block costs (the products, row max, row sum,
   shift, exp, log), against the unchecked kernel per block: the floor of an invariant that needs a pass.
6. Kernels (``--parts kernels``): ``--kernel-trials`` faults per attention site of the runtime kernel and of
   the stepwise kernel (the same invariants as pure per-block steps), on random inputs, fault for fault.
``--compile`` adds to the overhead part the stepwise kernels, checked and unchecked, with their block steps
compiled by torch.compile (needs a C++ compiler; nothing else in attnc does).

Each part writes bench/results/abft_<part>.json (``--parts`` picks them); bench/results/abft.md and
abft_tau.png are rebuilt from the parts present. Run:
    .venv/bin/python bench/abft.py             (the full campaign: about an hour of CPU)
    .venv/bin/python bench/abft.py --quick     (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from compiler.api import compile_model  # noqa: E402
from compiler.faults import DEFAULT_THRESHOLD, run_items, summarise  # noqa: E402
from runtime.abft_kernels import EAGER_STEPS, BlockSteps, blockwise_attention, stepwise_attention  # noqa: E402
from runtime.fault_injection import FAULT_MODELS, SITE_DESCRIPTIONS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("none", "flash", "per-gemm", "both")
BREAKDOWN = {"checksum only": ("output-checksum",), "checksum + rowsum": ("output-checksum", "score-rowsum")}
TAUS = [10.0**e for e in [x / 4 for x in range(-36, -3)]]  # 1e-9 ... 10^-1
DEFAULT_TOL = 1e-5


STEPWISE = ("stepwise none", "stepwise flash")
COMPILED = ("compiled none", "compiled flash")


def compiled_steps() -> BlockSteps:
    """The stepwise kernels' two block steps through torch.compile (inductor; a C++ compiler is needed)."""
    return BlockSteps(torch.compile(EAGER_STEPS.unchecked, dynamic=False), torch.compile(EAGER_STEPS.flash, dynamic=False))


def time_kernels(lengths: list[int], reps: int, heads: int = 4, dim: int = 64, block: int = 128,
                 compile_steps: bool = False) -> list[dict]:
    """Median and minimum thread CPU seconds per kernel mode at each length, the modes interleaved in every repetition.

    Besides the runtime's kernel: the stepwise kernels (the same invariants as pure per-block steps), eager, and
    with ``compile_steps`` both of their steps compiled by torch.compile (compile time is left out: warm-up).
    """
    rows = []
    steps = compiled_steps() if compile_steps else None
    for length in lengths:
        gen = torch.Generator().manual_seed(length)
        q, k, v = (torch.randn(1, heads, length, dim, generator=gen) for _ in range(3))
        calls = {mode: (lambda mode=mode: blockwise_attention(q, k, v, block=block, check=mode)) for mode in MODES}
        for name, invariants in BREAKDOWN.items():
            calls[name] = lambda invariants=invariants: blockwise_attention(
                q, k, v, block=block, check="flash", flash_invariants=invariants
            )
        calls["sdpa"] = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v)
        for name in STEPWISE:
            calls[name] = lambda name=name: stepwise_attention(q, k, v, block=block, check=name.split()[1])
        if steps is not None:
            for name in COMPILED:
                calls[name] = lambda name=name: stepwise_attention(q, k, v, block=block, check=name.split()[1], steps=steps)
        times: dict[str, list[float]] = {name: [] for name in calls}
        for name, call in calls.items():  # warm-up
            call()
        for _ in range(reps):
            for name, call in calls.items():
                start = time.thread_time()
                call()
                times[name].append(time.thread_time() - start)
        median = {name: statistics.median(values) for name, values in times.items()}
        fastest = {name: min(values) for name, values in times.items()}
        rows.append({"T": length, "median_s": median, "min_s": fastest,
                     "ratio": {n: median[n] / median[_anchor(n)] for n in median},
                     "ratio_min": {n: fastest[n] / fastest[_anchor(n)] for n in fastest}, "load_average": os.getloadavg()[0]})
        summary = ", ".join(f"{n} {median[n] * 1e3:.1f} ms ({median[n] / median[_anchor(n)]:.3f}x)" for n in median)
        print(f"T={length}: {summary}", flush=True)
    return rows


def time_passes(length: int, reps: int, heads: int = 4, dim: int = 64, block: int = 128) -> dict:
    """Thread CPU seconds of each operation of one key block (T × block scores), and of the whole unchecked kernel.

    What a check costs in eager PyTorch is the passes it adds over a block: this prices them one by one (the
    floor of a check that needs them), beside the two products and the unchecked kernel per block.
    """
    gen = torch.Generator().manual_seed(length)
    q, k, v = (torch.randn(1, heads, length, dim, generator=gen) for _ in range(3))
    scores = torch.randn(heads, length, block, generator=gen) - 4.0
    buffer = torch.empty_like(scores)
    keys = k[0, :, :block]
    augmented_keys = torch.cat([keys, keys.sum(-2, keepdim=True)], dim=-2)
    widths = {f"P·V product, {n} columns": torch.randn(heads, block, n, generator=gen) for n in (dim, dim + 3)}
    accumulators = {name: torch.zeros(heads, length, w.shape[-1]) for name, w in widths.items()}
    ops = {
        "Q·Kᵀ product": lambda: torch.matmul(q[0], keys.transpose(-1, -2)),
        "Q·Kᵀ product, K with Σk appended (129 keys)": lambda: torch.matmul(q[0], augmented_keys.transpose(-1, -2)),
        **{name: (lambda name=name: accumulators[name].baddbmm_(scores, widths[name])) for name in widths},
        "row max (amax)": lambda: scores.amax(-1),
        "row sum": lambda: scores.sum(-1),
        "shift (sub_)": lambda: scores.sub_(0.0),
        "exp into a buffer": lambda: torch.exp(scores, out=buffer),
        "log into a buffer": lambda: torch.log(buffer, out=buffer),  # of the exponentials just taken
        "unchecked kernel, per block": lambda: blockwise_attention(q, k, v, block=block),
    }
    blocks = -(-length // block)
    times: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(reps + 1):
        for name, op in ops.items():
            start = time.thread_time()
            op()
            times[name].append(time.thread_time() - start)
    median = {name: statistics.median(values[1:]) for name, values in times.items()}
    median["unchecked kernel, per block"] /= blocks
    return {"T": length, "median_s": median, "load_average": os.getloadavg()[0]}


def kernel_campaign(trials: int, seed: int, shape=(1, 2, 128, 32), block: int = 32) -> dict:
    """Faults at every attention site of the runtime kernel and of the stepwise kernel, both ``flash``, on random inputs.

    Per trial: fresh q, k, v (seeded by the trial), one fault drawn as in the MiniLM campaign (uniform over the
    site's elements and over every fault model); significant when the attention output moves by more than
    DEFAULT_THRESHOLD in relative L2 norm or is not finite. Shows that the stepwise kernel's invariants cover
    what the runtime kernel's cover, fault for fault.
    """
    from runtime.abft_kernels import ATTENTION_SITES
    from runtime.fault_injection import FaultInjector, SiteProfile, fault_stream

    kernels = {"runtime": blockwise_attention, "stepwise": stepwise_attention}
    summary: dict[str, dict[str, dict[str, int]]] = {name: {} for name in kernels}
    false_alarms = dict.fromkeys(kernels, 0)  # the fault-free run of every trial, checked too
    for name, kernel in kernels.items():
        profile = SiteProfile()
        q, k, v = (torch.randn(*shape) for _ in range(3))
        kernel(q, k, v, block=block, check="flash", hook=lambda site, x, step: profile.visit(site, x, "kernel"))
        for trial, fault in fault_stream(seed, list(ATTENTION_SITES), FAULT_MODELS, profile, trials):
            gen = torch.Generator().manual_seed(trial)
            q, k, v = (torch.randn(*shape, generator=gen) for _ in range(3))
            reference = kernel(q, k, v, block=block, check="flash", tol=DEFAULT_TOL)
            clean = reference.output
            false_alarms[name] += bool(reference.fired())
            injector = FaultInjector(fault)
            result = kernel(q, k, v, block=block, check="flash", tol=DEFAULT_TOL,
                            hook=lambda site, x, step: injector.visit(site, x, "kernel"))
            change = float((result.output - clean).norm() / clean.norm())
            significant = not (change <= DEFAULT_THRESHOLD)  # NaN counts as significant
            row = summary[name].setdefault(fault.site, {"trials": 0, "significant": 0, "detected_significant": 0})
            row["trials"] += 1
            row["significant"] += significant
            row["detected_significant"] += significant and bool(result.fired())
    return {"trials_per_site": trials, "shape": list(shape), "block": block, "threshold": DEFAULT_THRESHOLD,
            "tol": DEFAULT_TOL, "kernels": summary, "false_alarms": false_alarms}


def _anchor(name: str) -> str:
    """The unchecked kernel a timing is compared with: the stepwise and compiled kernels with their own."""
    return next((group[0] for group in (STEPWISE, COMPILED) if name in group), "none")


def campaign(outdir: str, items: list[tuple], seed: int, workers: int) -> tuple[list[dict], float]:
    start = time.perf_counter()
    results, _ = run_items(outdir, seed, FAULT_MODELS, items, workers, None, residuals=True)
    return results, time.perf_counter() - start


def detection_vs_tau(results: list[dict], sites: list[str]) -> dict[str, list[float | None]]:
    """Per site, the detection rate of significant faults at each τ of TAUS (a check fires when residual > τ)."""
    curves: dict[str, list[float | None]] = {}
    for site in sites:
        significant = [r for r in results if r["kind"] == "trial" and r["site"] == site and r["change"] > DEFAULT_THRESHOLD]
        curves[site] = [
            (sum(r["residual"] > tau for r in significant) / len(significant)) if significant else None for tau in TAUS
        ]
    return curves


def plot(curves: dict[str, list[float | None]], clean_max: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for site, rates in curves.items():
        points = [(t, 100 * r) for t, r in zip(TAUS, rates) if r is not None]
        if points:
            ax.plot(*zip(*points), marker=".", label=f"{site}: {SITE_DESCRIPTIONS[site]}")
    ax.axvline(DEFAULT_TOL, color="k", linestyle="--", linewidth=1, label=f"default τ = {DEFAULT_TOL:g}")
    ax.axvline(clean_max, color="r", linestyle=":", linewidth=1, label=f"largest clean residual {clean_max:.1e}")
    ax.set_xscale("log")
    ax.set_xlabel("relative tolerance τ")
    ax.set_ylabel("detected significant faults (%)")
    ax.set_title("MiniLM, abft-weave{check=flash linear=true}: detection vs τ per fault site")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def rate_cell(row: dict) -> str:
    if row["detection_rate"] is None:
        return "— (none significant)"
    return f"{100 * row['detection_rate']:.1f} % [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"


def short_minilm_artifacts(work: Path) -> dict[str, str]:
    """MiniLM on one short example sentence, woven with flash and with per-gemm (linears checked too)."""
    from compiler.api import ModelSpec
    from compiler.models import DEMO_SENTENCES, minilm

    model, inputs = minilm(sentences=(DEMO_SENTENCES[1],))
    artifacts = {}
    for check in ("flash", "per-gemm"):
        compiled = compile_model(ModelSpec("minilm", model, inputs), f"attn-raise,abft-weave{{linear=true check={check}}}")
        artifacts[check] = str(compiled.save(work / check))
    return artifacts


def part_path(part: str) -> Path:
    return RESULTS / f"abft_{part}.json"


def save_part(part: str, data: dict) -> None:
    part_path(part).write_text(json.dumps(data, indent=2) + "\n")


def coverage_part(results: dict[str, list[dict]], sites: list[str], seconds: dict[str, float], args) -> dict:
    """The coverage summaries, bit-flip subset, τ curves and clean residuals of the campaign results so far."""
    summaries = {check: summarise(rows, sites, DEFAULT_THRESHOLD) for check, rows in results.items()}
    flips = {check: summarise([r for r in rows if r["kind"] == "clean" or r["model"].startswith("bitflip")], sites,
                              DEFAULT_THRESHOLD) for check, rows in results.items()}
    clean = [r for r in results["flash"] if r["kind"] == "clean"]
    per_invariant: dict[str, float] = {}
    for r in clean:
        for name, value in r["residuals"].items():
            per_invariant[name] = max(per_invariant.get(name, 0.0), value)
    return {
        "threshold": DEFAULT_THRESHOLD, "tol": DEFAULT_TOL, "sentences": 1, "seconds": seconds,
        "trials_per_site": {check: summaries[check]["sites"][sites[0]]["trials"] for check in summaries},
        "coverage": summaries, "coverage_bitflips": flips,
        "clean_max_residual": max((r["residual"] for r in clean), default=0.0),
        "clean_max_residual_per_invariant": per_invariant,
        "tau": TAUS, "detection_vs_tau": detection_vs_tau(results["flash"], sites),
        "workers": args.workers,
    }


def run_coverage(artifacts: dict[str, str], sites: list[str], args) -> None:
    """per-gemm first (small), then flash in rounds; the part file and the report are rewritten after each round."""
    results: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    items: list[tuple] = [("trial", site, i) for site in sites for i in range(args.gemm_trials)]
    items += [("clean", i) for i in range(min(args.clean_runs, 200))]
    results["per-gemm"], seconds["per-gemm"] = campaign(artifacts["per-gemm"], items, args.seed, args.workers)
    print(f"per-gemm: {len(items)} runs in {seconds['per-gemm']:.0f}s", flush=True)
    results["flash"], seconds["flash"] = [], 0.0
    pending: list[tuple] = [("clean", i) for i in range(args.clean_runs)]
    for first in range(0, args.trials, args.round):
        last = min(first + args.round, args.trials)
        items = pending + [("trial", site, i) for site in sites for i in range(first, last)]
        rows, took = campaign(artifacts["flash"], items, args.seed, args.workers)
        results["flash"] += rows
        seconds["flash"] += took
        pending = []
        save_part("coverage", coverage_part(results, sites, seconds, args))
        write_markdown()
        print(f"flash: trials {first}..{last - 1} per site in {took:.0f}s (load {os.getloadavg()[0]:.1f})", flush=True)


def run_speedup(artifact: str, sites: list[str], args) -> None:
    """End-to-end seconds on 1 and ``workers`` workers, and the same for a 2-item run (the start-up)."""
    items: list[tuple] = [("trial", sites[i % len(sites)], i) for i in range(args.speedup_trials)]
    seconds: dict[str, dict[str, float]] = {"work": {}, "startup": {}}
    loads = []
    for workers in (1, args.workers):
        for name, chosen in (("startup", items[:2]), ("work", items)):
            loads.append(os.getloadavg()[0])
            start = time.perf_counter()
            run_items(artifact, args.seed, FAULT_MODELS, chosen, workers, None)
            seconds[name][str(workers)] = time.perf_counter() - start
            print(f"speed-up {name} on {workers} worker(s): {seconds[name][str(workers)]:.1f}s", flush=True)
    one, many = str(1), str(args.workers)
    steady = (seconds["work"][one] - seconds["startup"][one]) / (seconds["work"][many] - seconds["startup"][many])
    save_part("speedup", {"items": args.speedup_trials, "workers": args.workers, "seconds": seconds,
                          "ratio": seconds["work"][one] / seconds["work"][many], "ratio_without_startup": steady,
                          "load_average": [min(loads), max(loads)], "cores": os.cpu_count()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="overhead,coverage,speedup")
    parser.add_argument("--trials", type=int, default=10000)
    parser.add_argument("--round", type=int, default=2000)
    parser.add_argument("--gemm-trials", type=int, default=1000)
    parser.add_argument("--clean-runs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--speedup-trials", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--kernel-trials", type=int, default=1000, help="faults per site in --parts kernels")
    parser.add_argument("--lengths", default="512,1024,2048,4096")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also time the stepwise kernels compiled by torch.compile")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.round, args.gemm_trials, args.clean_runs = 20, 10, 10, 20
        args.speedup_trials, args.reps, args.lengths = 40, 2, "512,1024"
    torch.set_num_threads(1)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    command = "python bench/abft.py" + "".join(f" {a}" for a in sys.argv[1:])
    began = time.perf_counter()

    if "overhead" in parts:
        overhead = time_kernels([int(x) for x in args.lengths.split(",")], args.reps, compile_steps=args.compile)
        save_part("overhead", {"command": command, "reps": args.reps, "rows": overhead,
                               "load_average": os.getloadavg()[0], "torch": torch.__version__})
        write_markdown()
    if "passes" in parts:
        passes = time_passes(2048, args.reps)
        save_part("passes", {"command": command, "reps": args.reps, **passes})
        print(passes, flush=True)
    if "kernels" in parts:
        save_part("kernels", {"command": command, "seed": args.seed, **kernel_campaign(args.kernel_trials, args.seed)})
    if "coverage" in parts or "speedup" in parts:
        from compiler.faults import TrialRunner

        artifacts = short_minilm_artifacts(Path(tempfile.mkdtemp(prefix="attnc-abft-bench-")))
        sites = TrialRunner(artifacts["flash"], args.seed, pool=1).sites()
        if "coverage" in parts:
            run_coverage(artifacts, sites, args)
            data = json.loads(part_path("coverage").read_text())
            data["command"] = command
            save_part("coverage", data)
        if "speedup" in parts:
            run_speedup(artifacts["flash"], sites, args)
            data = json.loads(part_path("speedup").read_text())
            data["command"] = command
            save_part("speedup", data)
    write_markdown()
    print(f"wrote {RESULTS / 'abft.md'} ({(time.perf_counter() - began) / 60:.1f} min)")


def _load(part: str) -> dict | None:
    path = part_path(part)
    return json.loads(path.read_text()) if path.exists() else None


def write_markdown() -> None:
    """bench/results/abft.md (and abft_tau.png) from the part files present."""
    lines = [
        "# ABFT for attention: coverage, overhead, campaign speed-up",
        "",
        f"torch {torch.__version__}, {platform.machine()}, 1 thread per process, 2 cores shared with other jobs. "
        "Method and invariants: docs/methods/abft.md. Each section names the command that produced it.",
    ]
    overhead = _load("overhead")
    if overhead:
        lines += [
            "",
            f"## Kernel overhead (batch 1, 4 heads, head size 64, block 128; {overhead['reps']} runs interleaved, "
            "thread CPU time; ratio to the unchecked blockwise kernel)",
            "",
            f"Command: `{overhead['command']}` (load average {overhead['load_average']:.1f} at the end). "
            "flash = output checksum + score row sums + independent normaliser; the two breakdown columns are flash "
            "narrowed to its first invariant(s), to show what each costs. Each cell: median (ratio of medians; "
            "ratio of minima, the least disturbed runs).",
            "",
            "| T | unchecked | flash | flash: checksum only | flash: checksum + rowsum | per-gemm | both | torch SDPA |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in overhead["rows"]:
            m, r, rm = row["median_s"], row["ratio"], row["ratio_min"]
            names = ("flash", *BREAKDOWN, "per-gemm", "both", "sdpa")
            cells = [f"{m[n] * 1e3:.1f} ms ({r[n]:.3f}x; {rm[n]:.3f}x)" for n in names]
            lines.append(f"| {row['T']} | {m['none'] * 1e3:.1f} ms | " + " | ".join(cells) + " |")
        stepwise = [n for n in (*STEPWISE, *COMPILED) if n in overhead["rows"][0]["median_s"]]
        if stepwise:
            lines += [
                "",
                "The stepwise kernels: the same flash invariants as pure per-block steps (`stepwise_attention`), eager, and "
                "with both kernels' steps compiled by torch.compile (inductor, C++; `--compile`; compile time left out). "
                "Ratios to the unchecked kernel of the same kind. Load average at the end of each length in the last column.",
                "",
                "| T | " + " | ".join(stepwise) + " | load |",
                "|---|" + "---|" * (len(stepwise) + 1),
            ]
            for row in overhead["rows"]:
                m, r, rm = row["median_s"], row["ratio"], row["ratio_min"]
                cells = [f"{m[n] * 1e3:.1f} ms ({r[n]:.3f}x; {rm[n]:.3f}x)" for n in stepwise]
                lines.append(f"| {row['T']} | " + " | ".join(cells) + f" | {row.get('load_average', float('nan')):.1f} |")
    passes = _load("passes")
    if passes:
        per_block = passes["median_s"]["unchecked kernel, per block"]
        lines += [
            "",
            f"## What each pass costs (one key block: T = {passes['T']}, 4 heads, 128 keys; {passes['reps']} runs, median)",
            "",
            f"Command: `{passes['command']}` (load average {passes['load_average']:.1f}). Share: of the unchecked "
            "kernel's time per block. A check that needs a pass cannot cost less than its share in eager PyTorch.",
            "",
            "| operation | time | share |",
            "|---|---|---|",
        ]
        for name, seconds in passes["median_s"].items():
            lines.append(f"| {name} | {seconds * 1e3:.3f} ms | {100 * seconds / per_block:.1f} % |")
    kernels = _load("kernels")
    if kernels:
        runtime, stepwise = kernels["kernels"]["runtime"], kernels["kernels"]["stepwise"]
        lines += [
            "",
            f"## Kernel-level coverage: runtime kernel and stepwise kernel ({kernels['trials_per_site']} faults per site)",
            "",
            f"Command: `{kernels['command']}`. Random q, k, v of shape {tuple(kernels['shape'])} per trial, block "
            f"{kernels['block']}, `flash`, τ = {kernels['tol']:g}, every fault model; significant: the attention output "
            f"moves by more than {kernels['threshold']:g} in relative L2 norm, or is not finite.",
            "",
            "| site | runtime: significant | runtime: detected | stepwise: significant | stepwise: detected |",
            "|---|---|---|---|---|",
        ]
        for site, row in runtime.items():
            other = stepwise[site]
            lines.append(f"| {site} | {row['significant']}/{row['trials']} | {row['detected_significant']} | "
                         f"{other['significant']}/{other['trials']} | {other['detected_significant']} |")
        clean_runs = kernels["trials_per_site"] * len(runtime)
        lines += ["", f"False alarms on the fault-free run of every trial ({clean_runs} per kernel): runtime "
                  f"{kernels['false_alarms']['runtime']}, stepwise {kernels['false_alarms']['stepwise']}."]
    coverage = _load("coverage")
    if coverage:
        flash, gemm = coverage["coverage"]["flash"], coverage["coverage"]["per-gemm"]
        sites = list(flash["sites"])
        trials = coverage["trials_per_site"]
        lines += [
            "",
            f"## Coverage on all-MiniLM-L6-v2 (flash {trials['flash']} faults per site, per-gemm {trials['per-gemm']}; "
            f"every fault model; τ = {coverage['tol']:g})",
            "",
            f"Command: `{coverage.get('command', 'python bench/abft.py (in progress)')}`. MiniLM on one short sentence "
            f"(13 tokens), its token ids varied per trial. Campaign time on {coverage['workers']} Ray workers: flash "
            f"{coverage['seconds']['flash']:.0f} s, per-gemm {coverage['seconds']['per-gemm']:.0f} s.",
            "",
            f"Significant: the model output moves by more than {coverage['threshold']:g} in relative L2 norm, or is not "
            "finite. Detection rate of significant faults with its Wilson 95 % interval; sdc = significant and "
            "undetected; benign = detected but not significant (e.g. a fault in a masked score or in the checksum).",
            "",
            "| site | significant (flash) | flash: detected | sdc | benign | per-gemm: significant | per-gemm: detected | sdc |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for site in sites:
            f, g = flash["sites"][site], gemm["sites"][site]
            lines.append(
                f"| {site} ({SITE_DESCRIPTIONS[site]}) | {f['significant']}/{f['trials']} | {rate_cell(f)} | {f['sdc']} | "
                f"{f['benign_detected']} | {g['significant']}/{g['trials']} | {rate_cell(g)} | {g['sdc']} |"
            )
        lines += [
            "",
            f"False alarms: flash {flash['false_alarms']} in {flash['clean_runs']} clean runs on varied inputs; per-gemm "
            f"{gemm['false_alarms']} in {gemm['clean_runs']}. Largest relative residual of any check in the clean flash "
            f"runs: {coverage['clean_max_residual']:.2e} (per invariant: "
            + ", ".join(f"{n} {v:.1e}" for n, v in sorted(coverage["clean_max_residual_per_invariant"].items()))
            + ").",
            "",
            "Single bit flips only (sign, exponent, mantissa; the subset of the trials above):",
            "",
            "| site | flash: significant | flash: detected | per-gemm: significant | per-gemm: detected |",
            "|---|---|---|---|---|",
        ]
        for site in sites:
            f, g = coverage["coverage_bitflips"]["flash"]["sites"][site], coverage["coverage_bitflips"]["per-gemm"]["sites"][site]
            lines.append(f"| {site} | {f['significant']}/{f['trials']} | {rate_cell(f)} | "
                         f"{g['significant']}/{g['trials']} | {rate_cell(g)} |")
        curves = coverage["detection_vs_tau"]
        plot(curves, coverage["clean_max_residual"], RESULTS / "abft_tau.png")
        lines += [
            "",
            "## Detection vs τ (flash)",
            "",
            "![detection vs tau](abft_tau.png)",
            "",
            "| site | " + " | ".join(f"τ={t:.0e}" for t in TAUS[::4]) + " |",
            "|---|" + "---|" * len(TAUS[::4]),
        ]
        for site, rates in curves.items():
            cells = ["—" if r is None else f"{100 * r:.2f} %" for r in rates[::4]]
            lines.append(f"| {site} | " + " | ".join(cells) + " |")
    speed = _load("speedup")
    if speed:
        sec, w = speed["seconds"], str(speed["workers"])
        lines += [
            "",
            "## Campaign speed-up",
            "",
            f"Command: `{speed.get('command', '')}`. {speed['items']} trials, end to end: one worker in-process "
            f"{sec['work']['1']:.1f} s, local Ray with {w} workers {sec['work'][w]:.1f} s: **{speed['ratio']:.2f}x**. "
            f"Start-up alone (a 2-trial run: Ray, the worker processes importing torch and attnc, loading the artifact "
            f"and running the clean inputs once): {sec['startup']['1']:.1f} s in-process, {sec['startup'][w]:.1f} s "
            f"on Ray. Without it: **{speed['ratio_without_startup']:.2f}x**. Load average during the runs "
            f"{speed['load_average'][0]:.1f}–{speed['load_average'][1]:.1f} on {speed['cores']} cores.",
        ]
    (RESULTS / "abft.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
