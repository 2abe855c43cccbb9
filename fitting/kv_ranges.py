"""Calibrated K/V ranges, the step ``lower-to-xbar{kv-range=global|head}`` asks for.

A calibrated range policy maps every written K and V with a fixed range instead of the matrix's own max|x|:
one per write site (``global``) or per site and head (``head``), the ``kv_percentile`` of |x| over the
calibration inputs. The pass sees no activations, so it leaves ``kv_percentile`` without ``kv_scale`` on each
``xbar.write``; right after it the driver runs this step: it runs the lowered program on the calibration
batches on a noise-free copy of the device with ideal converters and unclipped writes, samples |x| of every
write per head (targets/crossbar/kv_ranges.py), and records the percentile as the op's ``kv_scale``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, DictionaryAttr, ModuleOp, TensorType, f32
from xdsl.interpreter import Interpreter, impl, register_impls

from dialects import xbar
from dialects.diagnostics import AttncError, remark
from runtime.executor import Executor
from targets.crossbar.kv_ranges import KvRangeFunctions, calibrated_ranges
from targets.crossbar.programming import write_fast
from targets.crossbar.simulator import device_config


def pending_kv_ranges(module: ModuleOp) -> list[xbar.WriteOp]:
    return [op for op in module.walk() if isinstance(op, xbar.WriteOp) and op.range_policy in xbar.CALIBRATED_KV_RANGES
            and op.kv_scale is None]


def has_pending_kv_ranges(module: ModuleOp) -> bool:
    return bool(pending_kv_ranges(module))


@register_impls
class KvRangeRecorder(KvRangeFunctions):
    """The simulator on a quiet device that writes K and V plainly (each matrix's own range, no clip) and keeps
    samples of each write's |x| per head."""

    def __init__(self, module: ModuleOp, seed: int = 0):
        device = module.attributes.get(xbar.DEVICE_ATTRIBUTE)
        if not isinstance(device, DictionaryAttr):
            raise AttncError("lower-to-xbar: calibrating K/V ranges needs the module's xbar.device")
        quiet = dataclasses.replace(device_config(device), gamma=0.0, program_noise=0.0, read_noise=0.0,
                                    stuck_at_rate=0.0, input_bits=None, adc_bits=None, adc_range="dynamic")
        super().__init__(quiet, seed, record=True)

    @impl(xbar.WriteOp)
    def run_write(self, interpreter: Interpreter, op: xbar.WriteOp, args):
        matrix = args[0].detach()
        self._keep_sample(self.write_site(op), matrix)
        return (write_fast(matrix, self.config_for(op.result.type), self.inference_generator),)


def record_samples(module: ModuleOp, weights: dict[str, torch.Tensor],
                   calibration: Sequence[tuple[torch.Tensor, ...]]) -> KvRangeRecorder:
    """Runs the lowered program on the calibration batches with a :class:`KvRangeRecorder`."""
    recorder = KvRangeRecorder(module)
    executor = Executor(module, weights, extra_functions=[recorder])
    with torch.no_grad():
        for batch in calibration:
            executor(*batch)
    return recorder


def calibrate_kv_ranges(
    module: ModuleOp, weights: dict[str, torch.Tensor], calibration: Sequence[tuple[torch.Tensor, ...]]
) -> dict[str, int]:
    """Sets ``kv_scale`` on every ``xbar.write`` of a calibrated range policy."""
    pending = pending_kv_ranges(module)
    if not pending:
        return {"writes": 0, "batches": 0}
    recorder = record_samples(module, weights, calibration)
    for op in pending:
        site = recorder.write_site(op)
        if site not in recorder.samples:
            raise AttncError(f"lower-to-xbar: the write '{site}' ran on no calibration input, so its K/V range is unknown")
        assert op.kv_percentile is not None
        ranges = calibrated_ranges({site: recorder.samples[site]}, op.range_policy, op.kv_percentile.value.data)[site]
        ranges = ranges.clamp(min=torch.finfo(torch.float32).tiny)  # an all-zero head: the smallest positive range
        op.attributes["kv_scale"] = DenseIntOrFPElementsAttr.from_list(TensorType(f32, [ranges.numel()]),
                                                                       [float(v) for v in ranges])
    policies = sorted({op.range_policy for op in pending})
    remark("lower-to-xbar", None, f"calibrated the K/V ranges of {len(pending)} crossbar writes on {len(calibration)} "
           f"calibration batches ({', '.join(policies)}: a percentile of |x| per write site)")
    return {"writes": len(pending), "batches": len(calibration)}
