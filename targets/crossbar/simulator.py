"""The crossbar simulator: runtime implementations of the ``xbar`` ops on top of the device model.

One :class:`XbarFunctions` instance is one model instance on one chip: static matrices (``xbar.program``) are
programmed once (``programming.py``: bit for bit ``device.program``, from integer levels when programming is
noise-free, and cached in memory for the life of the weight tensor; noise-free, every parameter matrix is
programmed at the first ``xbar.program``, noisy, each at its own op in program order) and then kept (their
programming noise and stuck cells are fixed; the all-zero tiles of an ``xbar.program {skip_zero_tiles}`` are
left out and contribute exactly zero), stuck-at maps of the dynamic arrays are drawn once per write site (a
fixed physical array), and every ``xbar.write`` draws fresh write noise. Randomness comes from two generators
seeded from ``seed``: one for the chip (programming noise, stuck cells), one for what changes per inference
(write and read noise), so the same seed and inputs give bit-identical outputs, and a chip keeps its static
noise while inputs vary.

Register it with the reference executor (``Executor(..., extra_functions=[XbarFunctions.for_module(m)])``);
``compiler.api.CompiledModel.executor`` does that for a module lowered with ``lower-to-xbar``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from xdsl.dialects.builtin import DictionaryAttr, FloatAttr, IntegerAttr, ModuleOp, StringAttr
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls

from dialects import nn, xbar
from targets.crossbar.device import (
    ClipFormer,
    CrossbarConfig,
    CrossbarTiles,
    StuckMap,
    draw_stuck_map,
    mvm,
    program,
    write,
    zero_tiles,
)
from targets.crossbar.programming import CHIP_CACHE, ChipCache, write_fast

# The inference-time generator's seed is derived from the chip's, so one integer names a whole experiment.
_DYNAMIC_SEED_OFFSET = 0x9E3779B1


def device_config(device: DictionaryAttr | Mapping[str, object]) -> CrossbarConfig:
    """A :class:`CrossbarConfig` (tile size aside) from a module's ``xbar.device`` dictionary."""
    raw = device.data if isinstance(device, DictionaryAttr) else device
    values: dict[str, object] = {}
    for key, attr in raw.items():
        if isinstance(attr, (IntegerAttr, FloatAttr)):
            values[key] = attr.value.data
        elif isinstance(attr, StringAttr):
            values[key] = attr.data
        else:
            values[key] = attr
    fields = {f.name for f in dataclasses.fields(CrossbarConfig)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ValueError(f"xbar.device has an unknown parameter '{key}'")
        kwargs[key] = value
    for optional_bits in ("input_bits", "adc_bits"):  # 0 means ideal in the IR
        if kwargs.get(optional_bits) == 0:
            kwargs[optional_bits] = None
    return CrossbarConfig(**kwargs)


def adc_full_scale(op: xbar.ProgramOp | xbar.WriteOp) -> torch.Tensor | None:
    """A calibrated ADC range's full-scale (``adc_full_scale``, set at compile time) as a tensor, or None."""
    if op.adc_full_scale is None:
        return None
    shape = tuple(op.adc_full_scale.get_shape())
    values = torch.tensor(op.adc_full_scale.get_values(), dtype=torch.float32)
    return values.expand(shape).clone() if values.numel() == 1 else values.reshape(shape)  # a splat holds one value


@register_impls
class XbarFunctions(InterpreterFunctions):
    """``xbar.program`` / ``xbar.write`` / ``xbar.mvm`` on the simulated crossbar (one chip per instance)."""

    def __init__(self, config: CrossbarConfig, seed: int = 0):
        self.config = config
        self.seed = seed
        self.chip_generator = torch.Generator().manual_seed(seed)
        self.inference_generator = torch.Generator().manual_seed((seed + _DYNAMIC_SEED_OFFSET) % 2**63)
        self.programmed: dict[xbar.ProgramOp, CrossbarTiles] = {}
        self.chip_programmed = False
        self.stuck_maps: dict[xbar.WriteOp, StuckMap] = {}
        self._configs: dict[tuple[int, int], CrossbarConfig] = {}

    @classmethod
    def for_module(cls, module: ModuleOp, seed: int = 0) -> XbarFunctions:
        device = module.attributes.get(xbar.DEVICE_ATTRIBUTE)
        if not isinstance(device, DictionaryAttr):
            raise ValueError(f"the module has no '{xbar.DEVICE_ATTRIBUTE}' dictionary: lower it with lower-to-xbar")
        return cls(device_config(device), seed)

    def config_for(self, tiles: xbar.TilesType) -> CrossbarConfig:
        tile = tiles.get_tile()
        if tile not in self._configs:
            self._configs[tile] = dataclasses.replace(self.config, tile_rows=tile[0], tile_cols=tile[1])
        return self._configs[tile]

    @impl(xbar.ProgramOp)
    def run_program(self, interpreter: Interpreter, op: xbar.ProgramOp, args):
        state = self.programmed.get(op)
        if state is None:
            if not self.chip_programmed:
                self.chip_programmed = True  # once: a matrix that failed there is programmed at its own op
                self._program_chip(interpreter, op)
            state = self.programmed.get(op)
            if state is None:
                state = self.programmed[op] = self._program(op, args[0])
        return (state,)

    def _program(self, op: xbar.ProgramOp, weight: torch.Tensor) -> CrossbarTiles:
        cfg = self.config_for(op.result.type)
        skip = None
        if op.skip_zero_tiles is not None:
            skip = zero_tiles(weight, cfg.tile_rows, cfg.tile_cols)
            if op.zero_tiles is not None and int(skip.sum()) != op.zero_tiles.value.data:
                raise ValueError(
                    f"the weight has {int(skip.sum())} all-zero tiles but was compiled with {op.zero_tiles.value.data}: "
                    "these are not the weights the module was compiled with"
                )
        full_scale = adc_full_scale(op)
        if full_scale is None:
            return CHIP_CACHE.program(weight, cfg, self.chip_generator, skip)
        # A calibrated ADC range: the general path (the fast paths and the cache assume a dynamic range).
        return program(weight.detach(), cfg, self.chip_generator, skip_tiles=skip, adc_full_scale=full_scale)

    def _program_chip(self, interpreter: Interpreter, first: xbar.ProgramOp) -> None:
        """At the first ``xbar.program``, programs every matrix of its block that is a parameter, one after the
        other, as a chip is programmed before it runs: each programming then finds the previous one's code and
        data in the caches (spread through a run, between the products, it takes twice as long). Only where
        programming draws no random numbers, so that the order cannot change a state. The parameters are read
        with the interpreter's listeners set aside (they see each op once, in program order), and a matrix that
        fails here is left to its own op, which then reports the failure where it happens."""
        block = first.parent_block()
        if block is None or not ChipCache.cacheable(self.config):
            return
        listeners, interpreter.listeners = interpreter.listeners, ()
        try:
            for op in block.ops:
                if not isinstance(op, xbar.ProgramOp) or not isinstance(op.operands[0].owner, nn.ParamOp):
                    continue
                try:
                    (weight,) = interpreter.run_op(op.operands[0].owner, ())
                    self.programmed[op] = self._program(op, weight)
                except Exception:  # reported by the op itself when it runs
                    continue
        finally:
            interpreter.listeners = listeners

    @impl(xbar.WriteOp)
    def run_write(self, interpreter: Interpreter, op: xbar.WriteOp, args):
        cfg = self.config_for(op.result.type)
        clip = None if op.clip is None else ClipFormer(*op.clip)
        stuck_map = None
        if cfg.stuck_at_rate > 0:
            stuck_map = self.stuck_maps.get(op)
            if stuck_map is None:
                # Draw the fixed fault map of this physical array from the chip's generator, once.
                shape = (*args[0].shape[:-2], cfg.devices_per_value, cfg.n_slices, args[0].shape[-1], args[0].shape[-2])
                stuck_map = self.stuck_maps[op] = draw_stuck_map(shape, cfg, self.chip_generator)
        full_scale = adc_full_scale(op)
        if stuck_map is None and full_scale is None:
            return (write_fast(args[0], cfg, self.inference_generator, clip=clip),)
        return (write(args[0].detach(), cfg, self.inference_generator, clip=clip, stuck_map=stuck_map,
                      adc_full_scale=full_scale),)

    @impl(xbar.MvmOp)
    def run_mvm(self, interpreter: Interpreter, op: xbar.MvmOp, args):
        state, x = args
        return (mvm(state, x, self.inference_generator).to(x.dtype),)
