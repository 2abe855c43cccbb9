"""A whole model on the crossbar target, timed side by side with the reference executor, and its cost report.

Speed: MiniLM (all-MiniLM-L6-v2, its 4 x 21-token example inputs) raised once, then run on the reference
executor (``attn-raise``) and on the crossbar (``attn-raise,lower-to-xbar``, default device) in one process,
alternating, ``--reps`` times each; the time of a run is what ``attnc run`` reports (executor construction plus
the call). Crossbar variants:
* ``cold``: the chip is programmed in the run (what a fresh ``attnc run`` does without the on-disk chip store);
* ``cold, chip store``: the programmed matrices are read from the on-disk chip store (a temporary one, filled by
  the first run), as in a new process on a model programmed before;
* ``warm``: the programmed tiles come from the in-memory chip cache (a second run on the same weights);
* ``original``: programming and writes through ``device.program``/``device.write`` (the implementation before
  the fast paths), for the before/after figure.
Each crossbar output is checked bit for bit against the original implementation's for the same seed.
It also runs ``attnc run`` on both artifacts in new processes (``--cli-reps`` each), reads "ran in" and times the
whole process; the crossbar once with an empty chip store (it programs and stores the chip) and once with the
stored chip.

Cost: ``attnc run --report``'s figures for MiniLM and vit-digits, with and without ``kv-clip{alpha=2 beta=0.25}``,
and the attention energy/area ClipFormer's always-zero slice saves.

Writes bench/results/xbar_whole_model.{md,json}. Run (about 5 minutes on a loaded 2-core machine):
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/xbar_whole_model.py --reps 9 --cli-reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from compiler.api import CompiledModel, apply_passes, compile_model, parse_pipeline  # noqa: E402
from targets.crossbar import device, simulator  # noqa: E402
from targets.crossbar.chip_store import ENVIRONMENT  # noqa: E402
from targets.crossbar.cost import matrix_costs, totals  # noqa: E402
from targets.crossbar.programming import CHIP_CACHE  # noqa: E402
from targets.crossbar.simulator import device_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CLIP = "kv-clip{alpha=2.0 beta=0.25}"


def lowered(base: CompiledModel, passes: str) -> CompiledModel:
    module = base.module.clone()
    apply_passes(module, parse_pipeline(passes))
    return CompiledModel(module, base.weights, base.inputs, base.input_names)


def timed_run(compiled: CompiledModel, seed: int) -> tuple[float, tuple[torch.Tensor, ...]]:
    start = time.perf_counter()
    with torch.no_grad():
        outputs = compiled.executor(seed)(*compiled.inputs)
    return time.perf_counter() - start, outputs


class OriginalSimulator:
    """Swaps the simulator's fast paths for device.program/device.write while in use."""

    def __enter__(self):
        self.saved = (simulator.CHIP_CACHE, simulator.write_fast)

        class Direct:
            @staticmethod
            def program(weight, cfg, gen, skip):
                return device.program(weight.detach(), cfg, gen, skip_tiles=skip)

        simulator.CHIP_CACHE = Direct()  # type: ignore[assignment]
        simulator.write_fast = lambda matrix, cfg, gen, clip=None: device.write(matrix.detach(), cfg, gen, clip=clip)
        return self

    def __exit__(self, *exc):
        simulator.CHIP_CACHE, simulator.write_fast = self.saved


def identical(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    return all(torch.equal(x, y) and torch.equal(x.signbit(), y.signbit()) for x, y in zip(a, b, strict=True))


def speed(reps: int, seeds: tuple[int, ...]) -> dict:
    base = compile_model("minilm", "attn-raise")
    xbar = lowered(base, "lower-to-xbar")
    names = ("reference", "crossbar cold", "crossbar cold, chip store", "crossbar warm", "crossbar original")
    times: dict[str, list[float]] = {name: [] for name in names}
    same = True
    with tempfile.TemporaryDirectory() as store:
        for rep in range(reps):
            seed = seeds[rep % len(seeds)]
            times["reference"].append(timed_run(base, seed)[0])
            CHIP_CACHE.clear()
            os.environ[ENVIRONMENT] = "off"
            seconds, cold = timed_run(xbar, seed)
            times["crossbar cold"].append(seconds)
            os.environ[ENVIRONMENT] = store
            if rep == 0:  # fills the store
                CHIP_CACHE.clear()
                timed_run(xbar, seed)
            CHIP_CACHE.clear()
            seconds, stored = timed_run(xbar, seed)
            times["crossbar cold, chip store"].append(seconds)
            seconds, warm = timed_run(xbar, seed)
            times["crossbar warm"].append(seconds)
            with OriginalSimulator():
                seconds, original = timed_run(xbar, seed)
            times["crossbar original"].append(seconds)
            same = same and identical(cold, original) and identical(stored, original) and identical(warm, original)
        os.environ[ENVIRONMENT] = "off"
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {"times_s": times, "median_s": medians, "bit_identical_to_original": same, "seeds": list(seeds)}


CLI_RUNS = ("reference", "crossbar, empty chip store", "crossbar, stored chip")


def cli_speed(reps: int) -> dict[str, dict[str, list[float]]]:
    """``attnc run`` in new processes: its own "ran in" line and the whole process's wall time. The crossbar
    runs once with an empty chip store (it programs the chip and stores it) and once with the stored chip."""
    attnc = str(Path(sys.executable).parent / "attnc")
    ran: dict[str, list[float]] = {name: [] for name in CLI_RUNS}
    process: dict[str, list[float]] = {name: [] for name in CLI_RUNS}
    with tempfile.TemporaryDirectory() as tmp:
        for name, pipeline in (("reference", "attn-raise"), ("crossbar", "attn-raise,lower-to-xbar")):
            out = Path(tmp) / name
            subprocess.run([attnc, "compile", "minilm", "-p", pipeline, "-o", str(out)], check=True, capture_output=True)
        for rep in range(reps):
            store = Path(tmp) / f"store-{rep}"
            for name in CLI_RUNS:
                artifact = Path(tmp) / ("reference" if name == "reference" else "crossbar")
                env = {**os.environ, ENVIRONMENT: str(store)}
                start = time.perf_counter()
                result = subprocess.run([attnc, "run", str(artifact)], check=True, capture_output=True, text=True, env=env)
                process[name].append(time.perf_counter() - start)
                match = re.search(r"ran in ([0-9.]+)s", result.stdout)
                assert match is not None, result.stdout
                ran[name].append(float(match.group(1)))
    return {"ran_in_s": ran, "process_s": process}


def cli_series(reps: int, path: Path) -> None:
    """One series of the ``attnc run`` comparison, appended to ``path`` (a JSON list), to see how the ratio moves
    with the machine's load from one moment to another; prints every series so far."""
    load = os.getloadavg()[0]
    ran = cli_speed(reps)["ran_in_s"]
    reference, stored = ran["reference"], ran["crossbar, stored chip"]
    series = {
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load": load,
        "reps": reps,
        "reference s": statistics.median(reference),
        "stored chip s": statistics.median(stored),
        "ratio of medians": statistics.median(stored) / statistics.median(reference),
        "median of per-run ratios": statistics.median(s / r for s, r in zip(stored, reference, strict=True)),
    }
    history = json.loads(path.read_text()) if path.exists() else []
    history.append(series)
    path.write_text(json.dumps(history, indent=2) + "\n")
    print("| time | load | reference s | stored chip s | ratio of medians | median of per-run ratios |")
    print("|---|---|---|---|---|---|")
    for row in history:
        print(f"| {row['time']} | {row['load']:.2f} | {row['reference s']:.3f} | {row['stored chip s']:.3f} | "
              f"{row['ratio of medians']:.2f} | {row['median of per-run ratios']:.2f} |")


def cost(model: str) -> dict:
    base = compile_model(model, "attn-raise")
    rows = {}
    for label, pipeline in (("no clip", "lower-to-xbar"), ("kv-clip 2/0.25", f"{CLIP},lower-to-xbar")):
        module = lowered(base, pipeline).module
        costs = matrix_costs(module, device_config(module.attributes["xbar.device"]))
        rows[label] = {"model": totals(costs), "attention": totals(costs, attention_only=True)}
    rows["saving"] = {}
    for part in ("attention", "model"):
        full, clipped = rows["no clip"][part], rows["kv-clip 2/0.25"][part]
        rows["saving"][f"{part} energy %"] = 100 * (1 - clipped["energy nJ per inference"] / full["energy nJ per inference"])
        rows["saving"][f"{part} area %"] = 100 * (1 - clipped["area mm2"] / full["area mm2"])
    return rows


def markdown(result: dict) -> str:
    sp = result["speed"]
    med = sp["median_s"]
    ref = med["reference"]
    lines = [
        "# A whole model on the crossbar target: speed and cost",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}; torch threads {result['threads']}; load average (1 min) at start "
        f"{result['load']:.2f}, at the end {result.get('load_end', float('nan')):.2f}.",
        "",
        f"## Speed (MiniLM, 4 x 21 tokens; {len(sp['times_s']['reference'])} alternating runs, medians)",
        "",
        "| run | median s | ratio to reference |",
        "|---|---|---|",
    ]
    for name, value in med.items():
        lines.append(f"| {name} | {value:.3f} | {value / ref:.2f} |")
    lines += [
        "",
        f"Crossbar outputs bit-identical to the original implementation for the same seed: **{sp['bit_identical_to_original']}** "
        f"(seeds {sp['seeds']}).",
        "",
    ]
    if result.get("cli"):
        cli = result["cli"]
        ran, process = cli["ran_in_s"], cli["process_s"]
        ref_ran, ref_process = statistics.median(ran["reference"]), statistics.median(process["reference"])
        lines += [
            f"`attnc run` in new processes ({len(ran['reference'])} each, medians; \"ran in\" is the line `attnc run` prints: "
            "executor construction and the call; the process time includes starting Python, imports and loading):",
            "",
            "| run | ran in s | ratio | whole process s | ratio |",
            "|---|---|---|---|---|",
        ]
        for name in CLI_RUNS:
            r, p = statistics.median(ran[name]), statistics.median(process[name])
            lines.append(f"| {name} | {r:.3f} | {r / ref_ran:.2f} | {p:.2f} | {p / ref_process:.2f} |")
        lines.append("")
    lines += ["## Cost (docs/methods/crossbar_cost.md; default device, 6-bit ADC, 8-bit inputs streamed bit-serially)", ""]
    for model, rows in result["cost"].items():
        lines += [
            f"### {model}",
            "",
            "| pipeline | part | arrays | ADCs | cell writes / inf. | ADC conv. / inf. | energy µJ / inf. | area mm² |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label in ("no clip", "kv-clip 2/0.25"):
            for part in ("model", "attention"):
                t = rows[label][part]
                lines.append(
                    f"| {label} | {part} | {t['arrays']} | {t['ADCs']} | {t['cell writes per inference']:.3g} | "
                    f"{t['ADC conversions per inference']:.3g} | {t['energy nJ per inference'] / 1e3:.2f} | {t['area mm2']:.3f} |"
                )
        s = rows["saving"]
        lines += [
            "",
            "ClipFormer (β = 0.25: the top slice of every K/V write is always zero) saves "
            f"{s['attention energy %']:.2f} % of attention energy and {s['attention area %']:.2f} % of attention area "
            f"({s['model energy %']:.2f} % / {s['model area %']:.2f} % of the model's).",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--cli-reps", type=int, default=3)
    parser.add_argument(
        "--cli-only",
        metavar="JSON",
        help="only the `attnc run` comparison: append one series (time, load, medians, per-pair ratios) to JSON",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cli_only:
        cli_series(args.cli_reps, Path(args.cli_only))
        return
    result = {
        "command": "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/xbar_whole_model.py "
        f"--reps {args.reps} --cli-reps {args.cli_reps}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": torch.get_num_threads(),
        "load": os.getloadavg()[0],
        "speed": speed(args.reps, (0, 3)),
        "cli": cli_speed(args.cli_reps) if args.cli_reps else None,
        "cost": {model: cost(model) for model in ("minilm", "vit-digits")},
        "load_end": os.getloadavg()[0],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "xbar_whole_model.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "xbar_whole_model.md").write_text(markdown(result) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
