"""Compile steps that need data: a pass marks the IR, the driver runs the matching step right after it.

A pass sees no weights and no activations. One that needs them (``attn-prune``; ``lower-to-xbar``'s count of
the all-zero tiles of pruned weights; its calibrated ADC ranges, ``fitting/adc_ranges.py``,
and K/V ranges, ``fitting/kv_ranges.py``; calibrated
fixed-point formats, ``fitting/tinycl_formats.py``) leaves a mark in the IR saying what it wants; after every
pass the driver calls :func:`run_pending_steps` with the weights and the calibration batches, and each registered step whose mark
is pending captures the activations it needs by running the executor (:mod:`fitting.capture`), updates the
weights and marks the IR done. Nothing passes through global state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from xdsl.dialects.builtin import ModuleOp


@dataclass(frozen=True)
class PendingStep:
    """A step the IR can ask for: ``pending(module)`` says whether it must run, ``run`` carries it out."""

    name: str
    pending: Callable[[ModuleOp], bool]
    run: Callable[[ModuleOp, dict[str, torch.Tensor], Sequence[tuple[torch.Tensor, ...]]], object]


def _prune_step() -> PendingStep:
    from fitting.prune import has_pending_pruning, prune_pending

    return PendingStep("attn-prune", has_pending_pruning, prune_pending)


def _zero_tiles_step() -> PendingStep:
    from fitting.zero_tiles import count_zero_tiles, has_pending_counts

    return PendingStep("xbar-zero-tiles", has_pending_counts, count_zero_tiles)


def _kv_ranges_step() -> PendingStep:
    from fitting.kv_ranges import calibrate_kv_ranges, has_pending_kv_ranges

    return PendingStep("xbar-kv-ranges", has_pending_kv_ranges, calibrate_kv_ranges)


def _adc_ranges_step() -> PendingStep:
    from fitting.adc_ranges import calibrate_adc_ranges, has_pending_ranges

    return PendingStep("xbar-adc-ranges", has_pending_ranges, calibrate_adc_ranges)


def _tinycl_formats_step() -> PendingStep:
    from fitting.tinycl_formats import calibrate_formats, has_pending_formats

    return PendingStep("tinycl-formats", has_pending_formats, calibrate_formats)


STEPS: tuple[Callable[[], PendingStep], ...] = (
    _prune_step, _zero_tiles_step, _kv_ranges_step, _adc_ranges_step, _tinycl_formats_step,
)


def run_pending_steps(
    module: ModuleOp,
    weights: dict[str, torch.Tensor],
    calibration: Callable[[], Sequence[tuple[torch.Tensor, ...]]],
) -> dict[str, object]:
    """Runs every step the module asks for, in place on ``weights``; ``calibration()`` gives the batches
    (called only when a step runs). Returns each step's report by name."""
    reports: dict[str, object] = {}
    for make in STEPS:
        step = make()
        if step.pending(module):
            reports[step.name] = step.run(module, weights, calibration())
    return reports
