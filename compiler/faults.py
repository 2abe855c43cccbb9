"""Fault-injection campaigns on a compiled, ABFT-checked model (``attnc faults``).

Each trial runs the model once with one transient fault (runtime/fault_injection.py) at one site, every
checked op set to ``count`` so the run finishes, and records whether any check fired and whether the
fault was *significant*: it moved some model output by more than ``threshold`` in relative L2 norm
(‖y_fault − y‖ / ‖y‖), or made it non-finite. ``sdc`` counts significant faults no check saw (silent data
corruption). Clean runs on varied inputs count false alarms. Detection rates carry Wilson 95 % intervals.

Trials are independent, so they run on the sweep engine (compiler/sweeps.py): Ray actors, a local Ray
instance with ``workers`` processes by default, or an existing cluster given by ``address`` (its nodes need
attnc installed and OUTDIR readable); ``workers=1`` without an address runs in this process. Every trial
is a pure function of (seed, site, trial index), so results do not depend on the number of workers or the
order trials finish in.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from compiler import sweeps
from compiler.errors import AttncError
from runtime.fault_injection import FAULT_MODELS, SITES, FaultInjector, SiteProfile, sample_fault

DEFAULT_THRESHOLD = 1e-3
INPUT_POOL = 8  # varied inputs the trials draw from (their clean outputs are computed once per worker)
CHUNK = 16  # work items per task


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % by default); (0, 1) when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def varied_inputs(inputs: tuple[torch.Tensor, ...], seed: int) -> tuple[torch.Tensor, ...]:
    """A variation of the example inputs, reproducible by seed (seed 0: the example inputs themselves).

    Float inputs get Gaussian noise of a tenth of their standard deviation. Integer inputs that are more than
    0/1 masks are token ids: each position that is not padding (0), not its row's first token and not its
    row's last non-padding token is replaced, with probability ½, by a random id between the smallest and
    the largest such id of the example. Masks are kept.
    """
    if seed == 0:
        return inputs
    gen = torch.Generator().manual_seed(seed)
    varied = []
    for tensor in inputs:
        if tensor.is_floating_point():
            varied.append(tensor + 0.1 * tensor.std().nan_to_num() * torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype))
        elif tensor.dtype != torch.bool and tensor.numel() and int(tensor.max()) > 1 and tensor.dim() >= 1:
            positions = torch.arange(tensor.shape[-1])
            last = ((tensor != 0) * positions).amax(-1, keepdim=True)
            mutable = (tensor != 0) & (positions > 0) & (positions < last)
            if not bool(mutable.any()):
                varied.append(tensor)
                continue
            low, high = int(tensor[mutable].min()), int(tensor[mutable].max())
            draws = torch.randint(low, high + 1, tensor.shape, generator=gen, dtype=tensor.dtype)
            flip = mutable & (torch.rand(tensor.shape, generator=gen) < 0.5)
            varied.append(torch.where(flip, draws, tensor))
        else:
            varied.append(tensor)
    return tuple(varied)


def relative_change(outputs: Iterable[torch.Tensor], reference: Iterable[torch.Tensor]) -> float:
    """The largest ‖y − y_ref‖ / ‖y_ref‖ over the float outputs (inf when an output is not finite)."""
    worst = 0.0
    for out, ref in zip(outputs, reference):
        if not out.is_floating_point():
            continue
        if not bool(torch.isfinite(out).all()):
            return math.inf
        norm = float(ref.double().norm()) or 1.0
        worst = max(worst, float((out.double() - ref.double()).norm()) / norm)
    return worst


@dataclass
class TrialRunner:
    """Loads the artifact once and runs trials and clean runs on it (one per process: a Ray actor or local)."""

    outdir: str
    seed: int
    models: tuple[str, ...] = FAULT_MODELS
    pool: int = INPUT_POOL
    residuals: bool = False  # also return the largest relative residual of any check (to sweep τ afterwards)
    one_thread: bool = False  # a Ray worker: one torch thread per process, the processes are the parallelism
    _state: dict[str, Any] = field(default_factory=dict)

    def _setup(self) -> dict[str, Any]:
        if self._state:
            return self._state
        if self.one_thread:
            torch.set_num_threads(1)
        from compiler.api import CompiledModel
        from runtime.abft_impl import AbftFunctions

        compiled = CompiledModel.load(self.outdir)
        if not compiled.inputs:
            raise AttncError(f"{self.outdir} holds no example inputs: a campaign varies them")
        functions = AbftFunctions(on_fault="count", keep_residuals=self.residuals)
        executor = compiled.executor(extra_functions=[functions])
        pool = [compiled.inputs] + [varied_inputs(compiled.inputs, self.seed * 1000 + i) for i in range(1, self.pool)]
        with torch.no_grad():
            clean = [executor(*inputs) for inputs in pool]
            profile = SiteProfile()
            functions.injector = profile
            executor(*compiled.inputs)
            functions.injector = None
        self._state.update(executor=executor, functions=functions, pool=pool, clean=clean, profile=profile)
        return self._state

    def sites(self) -> list[str]:
        """The sites this program exposes (linear sites only when linears are checked)."""
        return self._setup()["profile"].sites()

    def run(self, items: list[tuple]) -> list[dict[str, Any]]:
        """Runs work items: ("trial", site, index) or ("clean", index)."""
        return [self._trial(item[1], item[2]) if item[0] == "trial" else self._clean(item[1]) for item in items]

    def _trial(self, site: str, index: int) -> dict[str, Any]:
        state = self._setup()
        rng = random.Random(f"{self.seed}/{site}/{index}")
        fault = sample_fault(state["profile"], site, rng.choice(self.models), rng)
        which = rng.randrange(len(state["pool"]))
        functions = state["functions"]
        functions.detections.clear()
        functions.residuals.clear()
        functions.injector = FaultInjector(fault)
        with torch.no_grad():
            outputs = state["executor"](*state["pool"][which])
        functions.injector = None
        change = relative_change(outputs, state["clean"][which])
        invariants = sorted({name for d in functions.detections for name in d.invariants})
        return {"kind": "trial", "site": site, "model": fault.model, "change": change, "detected": bool(functions.detections),
                "invariants": invariants, **self._worst_residuals(functions)}

    def _worst_residuals(self, functions) -> dict[str, Any]:
        """{"residual": largest relative residual of any check, "residuals": per invariant} when asked."""
        if not self.residuals:
            return {}
        per_invariant: dict[str, float] = {}
        for seen in functions.residuals.values():
            for name, ratio in seen.items():
                per_invariant[name] = max(per_invariant.get(name, 0.0), ratio)
        return {"residual": max(per_invariant.values(), default=0.0), "residuals": per_invariant}

    def _clean(self, index: int) -> dict[str, Any]:
        state = self._setup()
        functions = state["functions"]
        functions.detections.clear()
        functions.residuals.clear()
        inputs = varied_inputs(state["pool"][0], 10_000_019 * (self.seed + 1) + index + 1)
        with torch.no_grad():
            state["executor"](*inputs)
        return {"kind": "clean", "false_alarm": bool(functions.detections),
                "where": [d.describe() for d in functions.detections][:3], **self._worst_residuals(functions)}


def run_items(
    outdir: str,
    seed: int,
    models: tuple[str, ...],
    items: list[tuple],
    workers: int,
    address: str | None,
    progress: Callable[[int], None] | None = None,
    residuals: bool = False,
) -> tuple[list[dict[str, Any]], str]:
    """Runs work items on the sweep engine (compiler/sweeps.py), one TrialRunner per worker; returns results
    in item order and the engine."""
    kwargs = {"outdir": outdir, "seed": seed, "models": models, "residuals": residuals,
              "one_thread": workers > 1 or bool(address)}
    return sweeps.run_items(TrialRunner, kwargs, items, workers, address, progress, chunk=CHUNK)


def summarise(results: list[dict[str, Any]], sites: list[str], threshold: float) -> dict[str, Any]:
    """The campaign's JSON: per site trials, significant, detected_significant, rate, Wilson CI, sdc."""
    table: dict[str, Any] = {}
    for site in sites:
        trials = [r for r in results if r["kind"] == "trial" and r["site"] == site]
        significant = [r for r in trials if r["change"] > threshold]
        caught = sum(r["detected"] for r in significant)
        low, high = wilson_interval(caught, len(significant))
        invariants: dict[str, int] = {}
        for r in trials:
            for name in r["invariants"]:
                invariants[name] = invariants.get(name, 0) + 1
        table[site] = {
            "trials": len(trials),
            "significant": len(significant),
            "detected_significant": caught,
            "detection_rate": caught / len(significant) if significant else None,
            "ci_low": low,
            "ci_high": high,
            "sdc": len(significant) - caught,
            "detected": sum(r["detected"] for r in trials),
            "benign_detected": sum(r["detected"] for r in trials if r["change"] <= threshold),
            "invariants": invariants,
        }
    clean = [r for r in results if r["kind"] == "clean"]
    return {
        "sites": table,
        "clean_runs": len(clean),
        "false_alarms": sum(r["false_alarm"] for r in clean),
        "threshold": threshold,
    }


def run_campaign(
    outdir: str,
    sites: str = "all",
    trials: int = 100,
    seed: int = 0,
    workers: int = 1,
    address: str | None = None,
    clean_runs: int = 1000,
    threshold: float = DEFAULT_THRESHOLD,
    models: tuple[str, ...] = FAULT_MODELS,
    progress: Callable[[int, int], Callable[[int], None]] | None = None,
) -> dict[str, Any]:
    """Runs ``trials`` faults per site and ``clean_runs`` clean runs; returns the summary (see ``summarise``)."""
    if trials < 0 or clean_runs < 0:
        raise AttncError("--trials and --clean-runs must be >= 0")
    if workers < 1:
        raise AttncError(f"--workers must be at least 1, got {workers}")
    unknown = sorted(set(models) - set(FAULT_MODELS))
    if unknown:
        raise AttncError(f"unknown fault model '{unknown[0]}' (known: {', '.join(FAULT_MODELS)})")
    available = TrialRunner(outdir, seed, models, pool=1).sites()
    if not available:
        raise AttncError(f"{outdir} has no checked ops: compile it with abft-weave")
    chosen = available if sites == "all" else [s.strip() for s in sites.split(",") if s.strip()]
    for site in chosen:
        if site not in SITES:
            raise AttncError(f"unknown site '{site}' (known: {', '.join(SITES)}, or all)")
        if site not in available:
            raise AttncError(f"site '{site}' does not occur in {outdir} (it has: {', '.join(available)})")
    items: list[tuple] = [("trial", site, index) for site in chosen for index in range(trials)]
    items += [("clean", index) for index in range(clean_runs)]
    start = time.perf_counter()
    advance = progress(len(items), workers) if progress else None
    results, engine = run_items(outdir, seed, models, items, workers, address, advance)
    summary = summarise(results, chosen, threshold)
    summary.update(seed=seed, fault_models=list(models), workers=workers, engine=engine,
                   seconds=round(time.perf_counter() - start, 2))
    return summary


def write_report(summary: dict[str, Any], json_path: str | None) -> None:
    """Prints the per-site table (and the clean runs) and writes the JSON file when asked."""
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from runtime.fault_injection import SITE_DESCRIPTIONS

    table = Table(title=f"fault campaign: significant = output change > {summary['threshold']:g} (relative L2)")
    for column in ("site", "trials", "significant", "detected", "rate", "95 % CI", "sdc", "benign detections"):
        table.add_column(column, justify="left" if column == "site" else "right")
    for site, row in summary["sites"].items():
        rate = "—" if row["detection_rate"] is None else f"{100 * row['detection_rate']:.1f} %"
        table.add_row(
            site, str(row["trials"]), str(row["significant"]),
            str(row["detected_significant"]), rate, f"[{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]",
            str(row["sdc"]), str(row["benign_detected"]),
        )
    console = Console()
    console.print(table)
    console.print("sites: " + "; ".join(f"{site} = {SITE_DESCRIPTIONS.get(site, site)}" for site in summary["sites"]))
    console.print(f"clean runs: {summary['clean_runs']}, false alarms: {summary['false_alarms']}; "
                  f"{summary['engine']}, {summary['seconds']} s")
    if json_path:
        path = Path(json_path)
        if path.is_dir() or not path.absolute().parent.is_dir():
            raise AttncError(f"cannot write {path}: it is a directory or its directory does not exist")
        staging = path.with_name(f".{path.name}.tmp")
        staging.write_text(json.dumps(summary, indent=2) + "\n")
        staging.replace(path)  # a reader sees the old file or the new one, never half of one
        console.print(f"wrote {json_path}")
