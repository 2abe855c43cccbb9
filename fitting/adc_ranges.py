"""Calibrated ADC ranges, the step ``lower-to-xbar{adc-range=calibrated}`` asks for.

A deployed chip cannot re-range its ADCs on every conversion: their full-scale is set once, from sample
inputs. Right after the lowering the driver runs this step: it runs the lowered program on the calibration
batches on a noise-free copy of the device, and for every crossbar array (``xbar.program`` and ``xbar.write``)
records the largest noise-free current of each (row tile, slice, column tile) over the MVMs it served
(for a written K or V, over every batch item and head as well: one array serves them all). The result is
the op's ``adc_full_scale``, in the device's level units, so a written matrix with other values but the same
normalised range reads on the same scale. Later currents beyond it saturate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, DictionaryAttr, ModuleOp, TensorType, f32
from xdsl.interpreter import Interpreter, impl, register_impls

from dialects import xbar
from dialects.diagnostics import remark
from runtime.executor import Executor
from targets.crossbar.device import CrossbarConfig, program, write
from targets.crossbar.simulator import XbarFunctions, device_config

Array = xbar.ProgramOp | xbar.WriteOp


def _calibrated_device(module: ModuleOp) -> CrossbarConfig | None:
    device = module.attributes.get(xbar.DEVICE_ATTRIBUTE)
    if not isinstance(device, DictionaryAttr):
        return None
    config = device_config(device)
    return config if config.adc_range == "calibrated" and config.adc_bits is not None else None


def pending_ranges(module: ModuleOp) -> list[Array]:
    if _calibrated_device(module) is None:
        return []
    return [op for op in module.walk() if isinstance(op, (xbar.ProgramOp, xbar.WriteOp)) and op.adc_full_scale is None]


def has_pending_ranges(module: ModuleOp) -> bool:
    return bool(pending_ranges(module))


@register_impls
class _RangeRecorder(XbarFunctions):
    """The simulator on a noise-free device with a dynamic ADC (so the program runs before any range is
    known), which also records, per array, the largest current each (tile, slice) sees."""

    def __init__(self, config: CrossbarConfig):
        quiet = dataclasses.replace(config, adc_range="dynamic", gamma=0.0, program_noise=0.0, read_noise=0.0,
                                    stuck_at_rate=0.0)
        super().__init__(quiet)
        self.measuring = dataclasses.replace(quiet, adc_range="calibrated", mode="exact")
        self.matrices: dict[Array, torch.Tensor] = {}
        self.full_scale: dict[Array, torch.Tensor] = {}

    @impl(xbar.ProgramOp)
    def run_program(self, interpreter: Interpreter, op: xbar.ProgramOp, args):
        self.matrices[op] = args[0].detach()
        return super().run_program(interpreter, op, args).values

    @impl(xbar.WriteOp)
    def run_write(self, interpreter: Interpreter, op: xbar.WriteOp, args):
        self.matrices[op] = args[0].detach()
        return super().run_write(interpreter, op, args).values

    @impl(xbar.MvmOp)
    def run_mvm(self, interpreter: Interpreter, op: xbar.MvmOp, args):
        array = op.operands[0].owner
        if isinstance(array, (xbar.ProgramOp, xbar.WriteOp)):
            cfg = dataclasses.replace(self.measuring, tile_rows=args[0].cfg.tile_rows, tile_cols=args[0].cfg.tile_cols)
            x = args[1].detach()
            if isinstance(array, xbar.ProgramOp):
                state = program(self.matrices[array], cfg, adc_calibration=x)
            else:
                state = write(self.matrices[array], cfg, clip=_clip(array), adc_calibration=x)
            assert state.adc_full_scale is not None
            seen = state.adc_full_scale.reshape(-1, *state.adc_full_scale.shape[-3:]).amax(dim=0)
            previous = self.full_scale.get(array)
            self.full_scale[array] = seen if previous is None else torch.maximum(previous, seen)
        return super().run_mvm(interpreter, op, args).values


def _clip(op: xbar.WriteOp):
    from targets.crossbar.device import ClipFormer

    return None if op.clip is None else ClipFormer(*op.clip)


def calibrate_adc_ranges(
    module: ModuleOp, weights: dict[str, torch.Tensor], calibration: Sequence[tuple[torch.Tensor, ...]]
) -> dict[str, int]:
    """Sets ``adc_full_scale`` on every crossbar array of a module lowered with ``adc-range=calibrated``."""
    config = _calibrated_device(module)
    pending = pending_ranges(module)
    if config is None or not pending:
        return {"arrays": 0, "batches": 0}
    recorder = _RangeRecorder(config)
    executor = Executor(module, weights, extra_functions=[recorder])
    with torch.no_grad():
        for batch in calibration:
            executor(*batch)
    for op in pending:
        full_scale = recorder.full_scale.get(op)
        if full_scale is None:  # an array no MVM read on the calibration inputs: the physical maximum instead
            rows, cols = op.result.type.grid()
            full_scale = torch.full((rows, config.n_slices, cols), float("inf"))
        full_scale = torch.where(torch.isfinite(full_scale), full_scale, torch.zeros_like(full_scale))
        op.attributes["adc_full_scale"] = DenseIntOrFPElementsAttr.from_list(
            TensorType(f32, list(full_scale.shape)), [float(v) for v in full_scale.flatten()]
        )
    remark("lower-to-xbar", None, f"calibrated the ADC ranges of {len(pending)} crossbar arrays on {len(calibration)} "
           "calibration batches (the largest noise-free current of each tile and slice)")
    return {"arrays": len(pending), "batches": len(calibration)}
