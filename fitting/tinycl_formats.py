"""Calibrated fixed-point formats, the step ``lower-to-tinycl{formats=calibrated}`` asks for.

The pass sees no activations, so with ``formats=calibrated`` it leaves the module as it is, with its options
in ``tinycl.pending_formats``. Right after it the driver runs this step: it runs the float program on the
calibration batches, records the largest |x| of every quantisation point of every op the lowering takes
(targets/tinycl/formats.py ``POINTS``: operands, results, attention scores) as the op's ``tinycl.max_abs``,
then runs the lowering, which gives each point the most fractional bits that hold its range. The formats are
the element types of the lowered values, so they travel with the saved artifact.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from dialects import attn
from dialects.diagnostics import AttncError, remark
from fitting.capture import observing_executor
from runtime.executor import module_path_of
from targets.tinycl.formats import MAX_ABS_ATTRIBUTE, PENDING_ATTRIBUTE, POINTS, ranges_attribute
from targets.tinycl.lowering import PASS, LowerToTinyclPass, lowered_ops


def has_pending_formats(module: ModuleOp) -> bool:
    return PENDING_ATTRIBUTE in module.attributes


def _largest(value: torch.Tensor) -> float:
    return float(value.detach().abs().max()) if value.numel() else 0.0


class _RangeRecorder:
    """The largest |x| of each quantisation point of the chosen ops, over every batch the executor runs."""

    def __init__(self) -> None:
        self.max_abs: dict[Operation, dict[str, float]] = {}

    def _keep(self, op: Operation, point: str, value: torch.Tensor) -> None:
        seen = self.max_abs.setdefault(op, {})
        seen[point] = max(seen.get(point, 0.0), _largest(value))

    def __call__(self, op: Operation, args: tuple, results: tuple) -> None:
        operands = list(op.operands)
        points = POINTS[type(op)]
        for point in points:
            value = getattr(op, point, None)
            if isinstance(value, SSAValue) and value in operands:
                self._keep(op, point, args[operands.index(value)])
        if "result" in points:
            self._keep(op, "result", results[0])
        if isinstance(op, attn.SdpaOp):
            query, key = args[operands.index(op.query)], args[operands.index(op.key)]
            if key.shape[-3:-2] != query.shape[-3:-2] and key.dim() >= 3:  # grouped heads: each key head serves several
                key = key.repeat_interleave(query.shape[-3] // key.shape[-3], dim=-3)
            self._keep(op, "scores", query @ key.transpose(-1, -2))
        elif isinstance(op, attn.CosineOp):
            query, key, value = (args[operands.index(v)] for v in (op.query, op.key, op.value))
            state = F.normalize(key, dim=-1).transpose(-1, -2) @ value
            self._keep(op, "state", state)
            self._keep(op, "out", F.normalize(query, dim=-1) @ state)


def calibrate_formats(
    module: ModuleOp, weights: dict[str, torch.Tensor], calibration: Sequence[tuple[torch.Tensor, ...]]
) -> dict[str, int]:
    """Records ``tinycl.max_abs`` on every op the pending lowering takes, then runs that lowering."""
    lowering = LowerToTinyclPass.pending(module)
    if lowering is None:
        return {"ops": 0, "batches": 0}
    if not calibration:
        raise AttncError(f"{PASS}: formats=calibrated needs at least one calibration batch")
    ops = lowered_ops(module)
    recorder = _RangeRecorder()
    executor = observing_executor(module, weights, ops, recorder)
    with torch.no_grad():
        for batch in calibration:
            executor(*batch)
    for op in ops:
        if op not in recorder.max_abs:
            where = module_path_of(op) or op.name
            raise AttncError(f"{PASS}: '{where}' ran on no calibration input, so its fixed-point formats are unknown")
        op.attributes[MAX_ABS_ATTRIBUTE] = ranges_attribute(recorder.max_abs[op])
    del module.attributes[PENDING_ATTRIBUTE]
    lowering.apply(Context(), module)
    remark(PASS, None, f"chose the fixed-point formats of {len(ops)} ops from their max |x| on {len(calibration)} "
           f"calibration batches (headroom {lowering.headroom:g}; parameters exact)")
    return {"ops": len(ops), "batches": len(calibration)}
