"""Crossbar simulator vs plain torch vs IBM aihwkit on one static 512x512 linear layer, batch 64.

Measures, in one run:
* the mean relative output error ||y_noisy - y_ideal|| / ||y_ideal|| (y_ideal = x @ W.T in float, mean over
  seeds) with programming noise set to the same std in weight units (fraction of max|W|) in both tools;
* the median forward time of plain ``torch.nn.functional.linear``, of our simulator (fast and exact modes,
  several periphery settings) and of aihwkit's tile, each as a ratio to plain torch timed in the same process.

aihwkit is never a project dependency: it runs in a separate interpreter (``--aihwkit-python``, default
/tmp/aihwkit-venv/bin/python) through a small worker script that prints JSON. Both processes load the same
W and x from a temporary file. Conventions aligned for the error comparison: one differential pair per
weight in aihwkit (SinglePairConductanceConverter, g_min = 0.1 uS, g_max = 10 uS, state-independent
programming noise clamped at 0 like ours), no drift, no read noise, and either ideal DAC/ADC on both sides
(``is_perfect=True``) or an 8-bit DAC with per-vector max scaling on both sides (aihwkit: inp_res =
1/254, noise_management ABS_MAX) and ideal ADC. Ours additionally bit-slices 8-bit weights into four
2-bit cells: its per-cell noise is set so the nominal weight-unit std matches.

Writes bench/results/xbar_vs_aihwkit.md and .json. Run:  .venv/bin/python bench/xbar_vs_aihwkit.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from targets.crossbar.device import (  # noqa: E402
    ClipFormer,
    CrossbarConfig,
    clipformer_values,
    mvm,
    program,
    weight_noise_std,
    write,
)

IN_FEATURES = OUT_FEATURES = 512
BATCH = 64
PROGRAM_NOISE = 0.01  # our per-cell std, fraction of (g_max - g_min)
SWEEP_PROGRAM_NOISE = (0.0025, 0.005, 0.01, 0.02, 0.04)
G_MIN_US, G_MAX_US = 0.1, 10.0

AIHWKIT_WORKER = r"""
import json, random, statistics, sys, time
import torch
params = json.loads(sys.stdin.read())
torch.set_num_threads(params["threads"])
from aihwkit.nn import AnalogLinear
from aihwkit.simulator.configs import TorchInferenceRPUConfig
from aihwkit.simulator.parameters.io import IOParameters
from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType
from aihwkit.inference.noise.custom import StateIndependentNoiseModel
from aihwkit.inference.converter.conductance import SinglePairConductanceConverter
import aihwkit

data = torch.load(params["data"])
w, x = data["w"], data["x"]
y_ideal = x @ w.T

def make_layer(variant, seed, prog_std_us=params["prog_std_us"]):
    rpu = TorchInferenceRPUConfig()
    if variant == "ideal_io":
        rpu.forward = IOParameters(is_perfect=True)
    else:  # 8-bit DAC with per-vector abs-max scaling, ideal ADC, no other analog noise
        rpu.forward = IOParameters(
            inp_res=1 / 254, inp_bound=1.0, out_res=-1.0, out_bound=-1.0, out_noise=0.0, w_noise=0.0,
            noise_management=NoiseManagementType.ABS_MAX, bound_management=BoundManagementType.NONE,
        )
    rpu.noise_model = StateIndependentNoiseModel(
        g_converter=SinglePairConductanceConverter(g_max=params["g_max"], g_min=params["g_min"]),
        prog_coeff=[prog_std_us, 0.0, 0.0], drift_nu_mean=0.0, drift_nu_std=0.0, read_noise_scale=0.0,
    )
    rpu.drift_compensation = None
    torch.manual_seed(seed)  # aihwkit draws from torch's global generator
    layer = AnalogLinear(w.shape[1], w.shape[0], bias=False, rpu_config=rpu)
    layer.set_weights(w)
    layer.eval()
    layer.program_analog_weights()
    return layer

def time_calls(fn, rounds, calls):
    times = []
    for _ in range(rounds):
        for _ in range(10):
            fn()
        for _ in range(calls):
            start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    return statistics.median(times)

out = {"aihwkit_version": aihwkit.__version__, "torch_version": torch.__version__, "variants": {}}
with torch.no_grad():
    for variant in params["variants"]:
        errors, weight_errors = [], []
        for seed in params["seeds"]:
            layer = make_layer(variant, seed)
            y = layer(x)
            errors.append(float((y - y_ideal).norm() / y_ideal.norm()))
            w_prog = layer.get_weights()[0]
            weight_errors.append(float((w_prog - w).std() / w.abs().max()))
        layer = make_layer(variant, params["seeds"][0])
        tile = type(layer.analog_module).__name__
        out["variants"][variant] = {"errors": errors, "weight_error_std": weight_errors, "tile": tile}
    out["sweep"] = []
    for std in params["sweep_prog_std_us"]:
        errors = []
        for seed in params["seeds"]:
            y = make_layer("ideal_io", seed, std)(x)
            errors.append(float((y - y_ideal).norm() / y_ideal.norm()))
        out["sweep"].append({"prog_std_us": std, "errors": errors})
    fns = {"plain_torch": lambda: torch.nn.functional.linear(x, w)}
    for v in params["variants"]:
        fns[v] = (lambda layer: (lambda: layer(x)))(make_layer(v, 0))
    timings = {k: [] for k in fns}
    order = random.Random(0)
    for _ in range(params["rounds"]):  # interleaved blocks, shuffled, so slow spells hit every variant
        names = list(fns)
        order.shuffle(names)
        for name in names:
            timings[name].append(time_calls(fns[name], 1, params["calls"]))
    out["median_s"] = {k: statistics.median(v) for k, v in timings.items()}
print(json.dumps(out))
"""


def time_calls(fn: Callable[[], object], calls: int) -> float:
    """Median of ``calls`` timed calls after a short warm-up (one block; blocks are interleaved)."""
    for _ in range(10):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).norm() / ref.norm())


def our_variants() -> dict[str, tuple[CrossbarConfig, str]]:
    """Name -> (config, what it models). All have programming noise on."""
    noisy = dict(program_noise=PROGRAM_NOISE, gamma=0.0)  # static weights: programming noise, no write noise
    return {
        "ours fast, ideal DAC/ADC": (
            CrossbarConfig(input_bits=None, adc_bits=None, **noisy),
            "aligned with aihwkit is_perfect",
        ),
        "ours exact, ideal DAC/ADC": (
            CrossbarConfig(input_bits=None, adc_bits=None, mode="exact", **noisy),
            "per-slice currents, same numbers",
        ),
        "ours fast, 8b DAC": (CrossbarConfig(adc_bits=None, **noisy), "aligned with aihwkit inp_res=1/254"),
        "ours fast, 8b DAC + 6b ADC calibrated": (CrossbarConfig(adc_range="calibrated", **noisy), "static ADC range"),
        "ours fast, 8b DAC + 6b ADC dynamic": (CrossbarConfig(**noisy), "default periphery"),
        "ours fast, 8b DAC + 6b ADC calibrated + read noise": (
            CrossbarConfig(adc_range="calibrated", read_noise=0.01, **noisy),
            "fresh normals each call",
        ),
        "ours fast, 8b DAC + 6b ADC calibrated + read noise (pool)": (
            CrossbarConfig(adc_range="calibrated", read_noise=0.01, read_noise_pool=1 << 18, **noisy),
            "pooled normals",
        ),
        "ours exact, 8b DAC + 6b ADC dynamic": (CrossbarConfig(mode="exact", **noisy), "per-slice ADC"),
    }


def run_aihwkit(
    python: str,
    data_path: str,
    args: argparse.Namespace,
    threads: int,
    prog_std_us: float,
    sweep_prog_std_us: list[float],
) -> dict:
    """Run the aihwkit worker in its own interpreter; returns its JSON or {'error': why}."""
    if not Path(python).exists():
        return {"error": f"no aihwkit interpreter at {python} (see the results file for how it was built)"}
    params = {
        "data": data_path,
        "threads": threads,
        "seeds": list(range(args.seeds)),
        "variants": ["ideal_io", "dac8"],
        "g_min": G_MIN_US,
        "g_max": G_MAX_US,
        "prog_std_us": prog_std_us,
        "sweep_prog_std_us": sweep_prog_std_us,
        "rounds": args.rounds,
        "calls": args.calls,
    }
    proc = subprocess.run(
        [python, "-c", AIHWKIT_WORKER], input=json.dumps(params), capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        return {"error": f"aihwkit worker failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_noise_table(seed: int) -> list[dict]:
    """Relative Frobenius error of written Gaussian K-like matrices at gamma 3/4/5, with/without ClipFormer."""
    gen = torch.Generator().manual_seed(seed)
    k = torch.randn(16, 128, 64, generator=gen)
    clip = ClipFormer(alpha=2.0, beta=0.25)
    rows = []
    for sigma in (0.05, CrossbarConfig().sigma):
        for gamma in (3.0, 4.0, 5.0):
            cfg = CrossbarConfig(gamma=gamma, sigma=sigma)
            plain = write(k, cfg, gen).effective_weight()
            clipped = write(k, cfg, gen, clip=clip).effective_weight()
            rows.append(
                {
                    "sigma": sigma,
                    "gamma": gamma,
                    "error": relative_error(plain, k),
                    "clip_noise_error": relative_error(clipped, clipformer_values(k, clip, cfg)),
                    "clip_total_error": relative_error(clipped, k),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aihwkit-python", default=os.environ.get("AIHWKIT_PYTHON", "/tmp/aihwkit-venv/bin/python"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved timing blocks per variant")
    parser.add_argument("--calls", type=int, default=100, help="timed calls per block")
    parser.add_argument(
        "--threads",
        default=",".join(dict.fromkeys(["1", str(torch.get_num_threads())])),
        help="comma-separated torch thread counts to time with (default: 1 and torch's default)",
    )
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "xbar_vs_aihwkit"))
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    load_before = os.getloadavg()

    gen = torch.Generator().manual_seed(1234)
    w = torch.randn(OUT_FEATURES, IN_FEATURES, generator=gen)
    x = torch.randn(BATCH, IN_FEATURES, generator=gen)
    y_ideal = x @ w.T
    sigma_w = weight_noise_std(CrossbarConfig(program_noise=PROGRAM_NOISE), "program")
    # aihwkit: w = (g+ - g-) * max|W| / (g_max - g_min), so a per-device std s gives sqrt(2)*s/(g_max-g_min).
    prog_std_us = sigma_w * (G_MAX_US - G_MIN_US) / math.sqrt(2)

    # ---- errors (ours)
    results: dict[str, dict] = {}
    states = {}
    for name, (cfg, note) in our_variants().items():
        errors, weight_errors = [], []
        for seed in range(args.seeds):
            g = torch.Generator().manual_seed(seed)
            state = program(w, cfg, g, adc_calibration=x)
            errors.append(relative_error(mvm(state, x, g), y_ideal))
            weight_errors.append(float((state.effective_weight() - w).std() / w.abs().max()))
        states[name] = program(w, cfg, torch.Generator().manual_seed(0), adc_calibration=x)
        results[name] = {"errors": errors, "weight_error_std": weight_errors, "note": note}

    # ---- error vs noise level (ideal DAC/ADC): where the clamp at 0 starts to matter
    sweep = []
    for per_cell in SWEEP_PROGRAM_NOISE:
        cfg = CrossbarConfig(input_bits=None, adc_bits=None, program_noise=per_cell)
        y_quantised = mvm(program(w, CrossbarConfig(input_bits=None, adc_bits=None)), x)  # noise-free, 8-bit W
        outputs = [mvm(program(w, cfg, torch.Generator().manual_seed(seed)), x) for seed in range(args.seeds)]
        level = weight_noise_std(cfg, "program")
        row = {
            "program_noise_per_cell": per_cell,
            "sigma_w_nominal": level,
            "errors": [relative_error(y, y_ideal) for y in outputs],
            # noise alone: against our own noise-free (8-bit quantised) output, normalised by ||y_ideal||
            "noise_only_errors": [float((y - y_quantised).norm() / y_ideal.norm()) for y in outputs],
        }
        sweep.append((row, level, level * (G_MAX_US - G_MIN_US) / math.sqrt(2)))

    # ---- timings (ours + plain torch) per thread count, and aihwkit in its own interpreter
    timings = {}
    aihwkit: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_path = str(Path(tmp) / "layer.pt")
        torch.save({"w": w, "x": x}, data_path)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            medians = time_ours(states, x, w, args)
            run = run_aihwkit(args.aihwkit_python, data_path, args, threads, prog_std_us, [s for _, _, s in sweep])
            aihwkit = aihwkit or run
            timings[str(threads)] = {
                "plain_torch_median_s": medians.pop("plain torch (F.linear)"),
                "ours_median_s": medians,
                "aihwkit_median_s": run.get("median_s"),
            }
    load_after = os.getloadavg()

    report = {
        "command": f".venv/bin/python bench/xbar_vs_aihwkit.py --seeds {args.seeds} --rounds {args.rounds} "
        f"--calls {args.calls} --threads {args.threads}",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "layer": {"in": IN_FEATURES, "out": OUT_FEATURES, "batch": BATCH},
        "noise": {
            "program_noise_per_cell": PROGRAM_NOISE,
            "sigma_w_nominal": sigma_w,
            "aihwkit_prog_std_uS": prog_std_us,
        },
        "ours": results,
        "timings": timings,
        "aihwkit": aihwkit,
        "sweep": [row for row, _, _ in sweep],
        "write_noise_table": write_noise_table(7),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(render_table(report))
    print()
    print(render_sweep(report))
    out.with_suffix(".md").write_text(render_markdown(report))
    print(f"\nwrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def time_ours(states: dict, x: torch.Tensor, w: torch.Tensor, args: argparse.Namespace) -> dict[str, float]:
    """Median forward time of plain torch and of each of our states, in interleaved, shuffled blocks."""
    plain = lambda: torch.nn.functional.linear(x, w)  # noqa: E731
    timing: dict[str, list[float]] = {"plain torch (F.linear)": []}
    for name in states:
        timing[name] = []
    read_gen = torch.Generator().manual_seed(99)
    fns = {"plain torch (F.linear)": (plain, args.calls)}
    for name, state in states.items():
        calls = args.calls if state.cfg.mode == "fast" else max(5, args.calls // 20)
        fns[name] = ((lambda st: lambda: mvm(st, x, read_gen))(state), calls)
    order = random.Random(0)
    for _ in range(args.rounds):  # interleaved blocks, shuffled, so slow spells hit every variant
        names = list(fns)
        order.shuffle(names)
        for name in names:
            fn, calls = fns[name]
            timing[name].append(time_calls(fn, calls))
    return {k: statistics.median(v) for k, v in timing.items()}


def render_table(report: dict) -> str:
    """The comparison table printed by the bench (also in the results markdown)."""
    threads = list(report["timings"])
    header_time = " | ".join(f"median, {t} thr | vs plain, {t} thr" for t in threads)
    lines = [
        f"static {report['layer']['out']}x{report['layer']['in']} linear, batch {report['layer']['batch']}; "
        f"programming noise {report['noise']['sigma_w_nominal']:.4f} max|W| nominal in both tools",
        "",
        f"| variant | rel. output error (mean over seeds) | weight error std / max|W| | {header_time} |",
        "|---|---|---|" + "---|---|" * len(threads),
    ]

    def time_cells(median: float | None, base: float) -> str:
        return "n/a | n/a" if median is None else f"{median * 1e6:.0f} us | {median / base:.2f}x"

    plain_cells = " | ".join(
        time_cells(report["timings"][t]["plain_torch_median_s"], report["timings"][t]["plain_torch_median_s"])
        for t in threads
    )
    lines.append(f"| plain torch (F.linear) | 0 | 0 | {plain_cells} |")
    for name, r in report["ours"].items():
        cells = " | ".join(
            time_cells(report["timings"][t]["ours_median_s"][name], report["timings"][t]["plain_torch_median_s"])
            for t in threads
        )
        lines.append(
            f"| {name} | {statistics.mean(r['errors']):.4f} | {statistics.mean(r['weight_error_std']):.4f} | {cells} |"
        )
    ai = report["aihwkit"]
    if "error" in ai:
        lines.append(f"| aihwkit | not run: {ai['error'][:300]} | |" + " | |" * len(threads))
        return "\n".join(lines)
    labels = {"ideal_io": "is_perfect (ideal DAC/ADC)", "dac8": "8b DAC (inp_res=1/254), ideal ADC"}
    for variant, r in ai["variants"].items():
        cells = []
        for t in threads:
            medians = report["timings"][t]["aihwkit_median_s"] or {}
            cells.append(time_cells(medians.get(variant), medians.get("plain_torch", 1.0)))
        lines.append(
            f"| aihwkit {ai['aihwkit_version']} {r['tile']}, {labels[variant]} | {statistics.mean(r['errors']):.4f} "
            f"| {statistics.mean(r['weight_error_std']):.4f} | {' | '.join(cells)} |"
        )
    lines.append("")
    lines.append(
        "aihwkit ratios are against plain torch timed in aihwkit's own process: "
        + ", ".join(
            f"{t} thr: {report['timings'][t]['aihwkit_median_s']['plain_torch'] * 1e6:.0f} us"
            for t in threads
            if report["timings"][t]["aihwkit_median_s"]
        )
        + "."
    )
    for ours_name, ai_variant in (("ours fast, ideal DAC/ADC", "ideal_io"), ("ours fast, 8b DAC", "dac8")):
        ours_err = statistics.mean(report["ours"][ours_name]["errors"])
        ai_err = statistics.mean(ai["variants"][ai_variant]["errors"])
        lines.append(f"error ratio {ours_name} / aihwkit {ai_variant}: {ours_err / ai_err:.3f}")
    return "\n".join(lines)


def render_sweep(report: dict) -> str:
    """Error vs programming-noise level, ideal DAC/ADC, ours vs aihwkit at the same nominal weight-unit std."""
    lines = [
        "| per-cell noise (ours) | nominal std / max|W| | aihwkit per-device std | ours rel. error | "
        "ours, noise only | aihwkit rel. error | ours / aihwkit | ours noise only / aihwkit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ai = report["aihwkit"]
    ai_sweep = {round(r["prog_std_us"], 9): r["errors"] for r in ai.get("sweep", [])}
    for row in report["sweep"]:
        ours = statistics.mean(row["errors"])
        std_us = row["sigma_w_nominal"] * (G_MAX_US - G_MIN_US) / math.sqrt(2)
        theirs = ai_sweep.get(round(std_us, 9))
        noise_only = statistics.mean(row["noise_only_errors"])
        theirs_text = f"{statistics.mean(theirs):.4f}" if theirs else "n/a"
        ratio = f"{ours / statistics.mean(theirs):.3f}" if theirs else "n/a"
        ratio_noise = f"{noise_only / statistics.mean(theirs):.3f}" if theirs else "n/a"
        lines.append(
            f"| {row['program_noise_per_cell']:.4f} | {row['sigma_w_nominal']:.4f} | {std_us:.4f} uS | {ours:.4f} | "
            f"{noise_only:.4f} | {theirs_text} | {ratio} | {ratio_noise} |"
        )
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    """The results file: command, machine, tables, and what they say against the goals."""
    speed_lines = []
    for t, timing in report["timings"].items():
        base = timing["plain_torch_median_s"]
        ratio = {name: median / base for name, median in timing["ours_median_s"].items()}
        static = ratio["ours fast, 8b DAC + 6b ADC calibrated"]
        speed_lines.append(
            f"  - {t} thread(s): static noise (programming noise baked into the weight), 8b DAC, 6b calibrated "
            f"ADC: {static:.2f}x ({'met' if static <= 1.2 else 'NOT met'}); ideal DAC/ADC: "
            f"{ratio['ours fast, ideal DAC/ADC']:.2f}x; 6b dynamic ADC (default): "
            f"{ratio['ours fast, 8b DAC + 6b ADC dynamic']:.2f}x; plus per-read noise, fresh normals: "
            f"{ratio['ours fast, 8b DAC + 6b ADC calibrated + read noise']:.2f}x, pooled normals: "
            f"{ratio['ours fast, 8b DAC + 6b ADC calibrated + read noise (pool)']:.2f}x; exact mode: "
            f"{ratio['ours exact, 8b DAC + 6b ADC dynamic']:.1f}x"
        )
    verdict_speed = "\n".join(speed_lines)
    ai = report["aihwkit"]
    m = report["machine"]
    rows = report["write_noise_table"]
    write_lines = [
        "| sigma | gamma | rel. error, no clip | ClipFormer(2, 0.25): noise only | ClipFormer: total vs unclipped |",
        "|---|---|---|---|---|",
    ] + [
        f"| {r['sigma']:.2f} | {r['gamma']:.0f} | {r['error']:.3f} | {r['clip_noise_error']:.3f} "
        f"| {r['clip_total_error']:.3f} |"
        for r in rows
    ]
    if "error" in ai:
        ai_text = f"aihwkit could not be run: {ai['error']}"
        verdict_error = "not checked (no aihwkit run)"
    else:
        ratios = [
            statistics.mean(report["ours"][o]["errors"]) / statistics.mean(ai["variants"][v]["errors"])
            for o, v in (("ours fast, ideal DAC/ADC", "ideal_io"), ("ours fast, 8b DAC", "dac8"))
        ]
        ok = all(abs(r - 1) <= 0.10 for r in ratios)
        ai_text = (
            f"aihwkit {ai['aihwkit_version']} (torch {ai['torch_version']}) ran its torch-based tile "
            f"`{next(iter(ai['variants'].values()))['tile']}` (`TorchInferenceRPUConfig`)."
        )
        ai_sweep = {round(r["prog_std_us"], 9): statistics.mean(r["errors"]) for r in ai.get("sweep", [])}
        sweep_ratios = []
        for row in report["sweep"]:
            theirs = ai_sweep.get(round(row["sigma_w_nominal"] * (G_MAX_US - G_MIN_US) / math.sqrt(2), 9))
            if theirs:
                sweep_ratios.append(f"{row['sigma_w_nominal']:.4f}: {statistics.mean(row['errors']) / theirs:.3f}")
        verdict_error = (
            f"{'met' if ok else 'NOT met'} at the benchmark's noise level: output-error ratio ours/aihwkit = "
            + ", ".join(f"{r:.3f}" for r in ratios)
            + " (ideal I/O, 8-bit DAC). Across noise levels (nominal std/max|W|: ratio) "
            + "; ".join(sweep_ratios)
            + ". Low noise: our 8-bit weight quantisation adds to the error (aihwkit does not quantise weights); "
            "high noise: the clamp at 0 cuts more of our noise, since 8 cells per value mostly sit at g_min"
        )
    return f"""# Crossbar simulator vs plain torch vs IBM aihwkit (static 512x512 linear, batch 64)

Command (from the repository root, project venv; aihwkit runs in its own venv through a subprocess):

```
{report["command"]}
```

Machine: {m["platform"]}, {m["cpus"]} CPUs, torch {m["torch"]}.
Load average (1/5/15 min) before: {", ".join(f"{v:.2f}" for v in m["loadavg_before"])}; after:
{", ".join(f"{v:.2f}" for v in m["loadavg_after"])}. The machine is shared: timings are medians of
interleaved, shuffled blocks, and ratios are taken against plain torch timed in the same process.

## Goals

- Speed (simulator forward <= 1.2x plain torch with noise on):
{verdict_speed}
- Error statistics within 10 % of aihwkit once conventions are aligned: {verdict_error}.

## Main table

{render_table(report)}

{ai_text}

## Error vs programming-noise level (ideal DAC/ADC)

Same nominal weight-unit std in both tools. Our nominal std counts the 8 cells of a value (4 slices x 2
devices), `sqrt(2 * sum(significance**2)) * 3 * noise / 255`; aihwkit's single pair gives
`sqrt(2) * std / (g_max - g_min)`. Both clamp conductances at 0, which removes part of the noise of the
cells sitting at g_min once the per-cell std approaches g_min = 0.1 uS; we have 8 cells per value and most
of them sit at g_min, so our realised noise falls below nominal sooner (column "weight error std" above
includes the 8-bit weight quantisation, ~0.0011 max|W|).

{render_sweep(report)}

## Write noise (dynamic K/V writes): the default sigma

`sigma` is not given by the paper; the default ({CrossbarConfig().sigma}) is chosen so that gamma = 5
visibly hurts. Relative Frobenius error of written Gaussian matrices (16 x 128 x 64), 8-bit values in 2-bit
cells; "noise only" compares with the noise-free clipped matrix, "total" with the unclipped one (clipping at
beta = 0.25 of max|K| is itself a large change on Gaussian data; real K/V are heavier-tailed).

{chr(10).join(write_lines)}

## Conventions and notes

- Ours: `targets/crossbar/device.py`, `y = x @ W.T`, one scale per matrix (max|W|), 8-bit magnitudes
  sliced into four 2-bit cells on a differential pair, 64x64 tiles, programming noise per cell
  `program_noise * (g_max - g_min)` clamped at 0. Fast mode = one matmul with the precomputed noisy
  weight; exact mode = per-tile, per-slice currents with per-(tile, slice) ADC.
- 6-bit ADC "calibrated": full-scale per (tile, slice, column tile) = max |noise-free current| over the
  64 benchmark inputs; "dynamic": per call. The fast mode replaces the per-slice ADCs with one
  variance-matched rounding of the output (its error tracks the exact mode's, see the table).
- Threads: with 2 threads each 64x512 elementwise op is split across both cores (32768 elements is
  torch's parallel grain size), so on this shared 2-core machine any other busy process stalls every one
  of them; the 1-thread columns measure the simulator's own overhead more cleanly. Check the load average
  above before reading the 2-thread columns.
- Read noise: `read_noise * (g_max - g_min)` per cell per read, sampled exactly in distribution at the
  column output. Drawing 64x512 fresh normals costs about half a 512x512x64 matmul on this CPU (torch's
  CPU normal generator runs at ~3 ns/sample); the pool option (`read_noise_pool`) reuses a pool of normals
  made at program time at a random offset per call (samples repeat across calls).
- aihwkit: `AnalogLinear(512, 512, bias=False)` with `TorchInferenceRPUConfig`, `StateIndependentNoiseModel`
  (prog_coeff = [std, 0, 0], no drift, no read noise), `SinglePairConductanceConverter(g_max=10, g_min=0.1)`,
  `drift_compensation=None`, `program_analog_weights()` once, forward in eval mode under `torch.no_grad()`.
  Forward `is_perfect=True`, or the 8-bit DAC variant: `inp_res=1/254`, ABS_MAX noise management, no
  output noise, no ADC bound/resolution. aihwkit draws from torch's global generator (seeded per seed).
- aihwkit installation (outside the repo, never a project dependency), as done for this run:
  ```
  python3 -m venv /tmp/aihwkit-venv
  /tmp/aihwkit-venv/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
  /tmp/aihwkit-venv/bin/pip install aihwkit==1.1.0   # its requirements pull torch 2.15 + CUDA + torchvision
  /tmp/aihwkit-venv/bin/pip uninstall -y torch torchvision triton <every nvidia-* and cuda-* package>
  /tmp/aihwkit-venv/bin/pip install --no-deps /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
  ```
  aihwkit 1.1.0 imports and runs without torchvision. Its C++ RPUCuda tile (`InferenceRPUConfig`) fails
  already when the layer is built (`ensure_shared_weights` -> `RuntimeError: weights must be a CPU tensor`)
  under torch 2.13; the torch-based
  tile (`TorchInferenceRPUConfig` -> `TorchInferenceTile`) works and is what is measured. aihwkit 1.2.0
  (source build, ~40 min) was not tried.
"""


if __name__ == "__main__":
    main()
