"""The crossbar's cost model: arrays, cell writes, ADC/DAC conversions, energy and area of a lowered module.

Counts come from the IR alone (shapes, tile sizes, the ``xbar.device`` parameters); energy and area multiply
them by the per-event and per-component figures of :data:`COMPONENTS` (sources in docs/methods/crossbar_cost.md:
ISAAC's component table, 32 nm, scaled where the device differs, plus one stated assumption for write energy).

What is counted, per stored matrix (a weight of ``xbar.program``, or a K/Vᵀ of ``xbar.write`` with one matrix
per batch item and head):

* **arrays**: row tiles x column tiles x devices per value (2 for a differential pair) x *used* slices, each a
  ``tile_rows x tile_cols`` array; one ADC per (tile, slice), shared by the tile's columns (the differential
  pair's currents are subtracted before it), and one input driver (DAC) per array row.
* **used slices**: all ``ceil(weight_bits / bits_per_cell)`` slices, except on a write clipped by ClipFormer,
  where the ceiling ``beta * g_max`` caps the level, so the most significant slices that can only hold zeros
  need no array, no write and no conversion (with 8-bit values in 2-bit cells, g_max/g_min = 100 and
  beta = 0.25 the top slice is always zero).
* **cell writes**: a written matrix's cells (its real rows and columns x devices x used slices) on every
  inference; a programmed matrix's cells once (``cells programmed``), all-zero tiles of pruned weights left out.
* **per MVM**, for each input vector, streamed bit-serially over ``input_bits`` cycles on 1-bit input drivers as
  in ISAAC: per cycle one ADC conversion per row tile, used slice and output column, one DAC conversion per
  array row, and every cell of the used arrays read once. (The simulator applies the multi-bit input at once
  and converts once, a numerical simplification; the cost is that of the bit-serial chip.)

Attention is what ``lower-to-xbar`` made of ``attn.sdpa`` (the K and Vᵀ writes and their products) plus the
static matrices whose module path names an attention module (``attention``/``attn``/``self_attn``: Q, K, V
and output projections).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from dialects import xbar
from dialects.locations import module_path_of
from dialects.shapes import tensor_shape
from runtime.clip_kernels import clip_thresholds
from targets.crossbar.device import CrossbarConfig

ATTENTION_PATH = re.compile(r"attention|attn", re.IGNORECASE)


@dataclass(frozen=True)
class Components:
    """Per-event energy (pJ) and per-component area (µm²) of one crossbar tile's parts (docs/methods/crossbar_cost.md)."""

    adc_energy_pj_8bit: float = 16e-3 / 8 / 1.28e9 * 1e12  # ISAAC: 8 ADCs, 16 mW, 1.28 GS/s -> 1.5625 pJ a conversion
    adc_area_um2_8bit: float = 0.0096e6 / 8  # ISAAC: 8 ADCs in 0.0096 mm²
    dac_energy_pj: float = 4e-3 / (8 * 128) * 100e-9 * 1e12  # ISAAC: 8x128 1-bit DACs, 4 mW, 100 ns cycle
    dac_area_um2: float = 0.00017e6 / (8 * 128)
    cell_read_energy_pj: float = 2.4e-3 / 8 * 100e-9 * 1e12 / (128 * 128)  # ISAAC: 8 arrays 128x128, 2.4 mW, 100 ns
    cell_area_um2: float = 0.0002e6 / 8 / (128 * 128)
    cell_write_energy_pj: float = 1.0  # assumption (no source in ISAAC): one programming pulse of a cell
    adc_bits_reference: int = 8

    def adc_scale(self, bits: int | None) -> float:
        """ADC energy and area relative to the 8-bit reference: x2 per bit (an ideal ADC is costed at 8 bits)."""
        return 2.0 ** ((bits or self.adc_bits_reference) - self.adc_bits_reference)


COMPONENTS = Components()


@dataclass
class MatrixCost:
    """Counts and costs of one stored matrix (all its batch items) and the MVMs that read it."""

    name: str
    kind: str  # "static" or "dynamic"
    attention: bool
    arrays: int
    adcs: int
    dacs: int
    cells: int
    slices: int
    used_slices: int
    cells_programmed: int = 0
    cell_writes: int = 0  # per inference
    adc_conversions: int = 0  # per inference
    dac_conversions: int = 0  # per inference
    cell_reads: int = 0  # per inference
    energy_pj: dict[str, float] = field(default_factory=dict)  # per inference, by component
    area_um2: dict[str, float] = field(default_factory=dict)

    @property
    def energy_total_pj(self) -> float:
        return sum(self.energy_pj.values())

    @property
    def area_total_um2(self) -> float:
        return sum(self.area_um2.values())


def used_slices(cfg: CrossbarConfig, clip: tuple[float, float] | None) -> int:
    """Slices that can hold a nonzero digit: all of them, or under a ClipFormer ceiling only those below the
    capped level's top digit."""
    if clip is None:
        return cfg.n_slices
    _, ceiling = clip_thresholds(clip[0], clip[1], cfg.g_min, cfg.g_max)
    top_level = round(min(ceiling, 1.0) * cfg.weight_levels)
    return max(1, math.ceil(top_level.bit_length() / cfg.bits_per_cell)) if top_level else 1


def _rows(value: SSAValue) -> int:
    return math.prod(tensor_shape(value)[:-1])


def matrix_costs(module: ModuleOp, cfg: CrossbarConfig, components: Components = COMPONENTS) -> list[MatrixCost]:
    """One :class:`MatrixCost` per ``xbar.program``/``xbar.write`` of ``module`` (``cfg``: its device)."""
    costs: list[MatrixCost] = []
    for op in module.walk():
        if not isinstance(op, (xbar.ProgramOp, xbar.WriteOp)):
            continue
        tiles = op.result.type
        *batch, n_out, n_in = tiles.get_shape()
        tile_rows, tile_cols = tiles.get_tile()
        row_tiles, col_tiles = tiles.grid()
        matrices = math.prod(batch)
        dynamic = isinstance(op, xbar.WriteOp)
        used = used_slices(cfg, op.clip if isinstance(op, xbar.WriteOp) else None)
        skipped = op.zero_tiles.value.data if isinstance(op, xbar.ProgramOp) and op.zero_tiles is not None else 0
        tile_count = matrices * (row_tiles * col_tiles - skipped)
        arrays = tile_count * cfg.devices_per_value * used
        path = module_path_of(op)
        cost = MatrixCost(
            name=f"{path} ({op.result.name_hint})" if dynamic and op.result.name_hint else path or op.name,
            kind="dynamic" if dynamic else "static",
            attention=dynamic or bool(ATTENTION_PATH.search(path)),
            arrays=arrays,
            adcs=tile_count * used,
            dacs=arrays * tile_rows,
            cells=arrays * tile_rows * tile_cols,
            slices=cfg.n_slices,
            used_slices=used,
        )
        live = (row_tiles * col_tiles - skipped) / (row_tiles * col_tiles)  # share of the matrix on programmed tiles
        value_cells = matrices * n_in * n_out * cfg.devices_per_value * used
        if dynamic:
            cost.cell_writes = value_cells
        else:
            cost.cells_programmed = round(value_cells * live)
        for use in op.result.uses:
            mvm = use.operation
            if not isinstance(mvm, xbar.MvmOp):
                continue
            vectors = _rows(mvm.input) * (cfg.input_bits or 8)  # input vectors over all batch items, bit-serial cycles
            cost.adc_conversions += round(vectors * row_tiles * used * n_out * live)
            cost.dac_conversions += round(vectors * (n_in * col_tiles) * cfg.devices_per_value * used * live)
            cost.cell_reads += round(vectors * n_in * n_out * cfg.devices_per_value * used * live)
        adc = components.adc_scale(cfg.adc_bits)
        cost.energy_pj = {
            "adc": cost.adc_conversions * components.adc_energy_pj_8bit * adc,
            "dac": cost.dac_conversions * components.dac_energy_pj,
            "array read": cost.cell_reads * components.cell_read_energy_pj,
            "cell write": cost.cell_writes * components.cell_write_energy_pj,
        }
        cost.area_um2 = {
            "adc": cost.adcs * components.adc_area_um2_8bit * adc,
            "dac": cost.dacs * components.dac_area_um2,
            "array": cost.cells * components.cell_area_um2,
        }
        costs.append(cost)
    return costs


def totals(costs: list[MatrixCost], attention_only: bool = False) -> dict[str, float]:
    """Summed counts, energy (nJ per inference) and area (mm²) of ``costs`` (of their attention part)."""
    chosen = [c for c in costs if c.attention or not attention_only]
    return {
        "arrays": sum(c.arrays for c in chosen),
        "ADCs": sum(c.adcs for c in chosen),
        "cells": sum(c.cells for c in chosen),
        "cells programmed once": sum(c.cells_programmed for c in chosen),
        "cell writes per inference": sum(c.cell_writes for c in chosen),
        "ADC conversions per inference": sum(c.adc_conversions for c in chosen),
        "DAC conversions per inference": sum(c.dac_conversions for c in chosen),
        "energy nJ per inference": sum(c.energy_total_pj for c in chosen) / 1e3,
        "area mm2": sum(c.area_total_um2 for c in chosen) / 1e6,
    }


def _without_clip(module: ModuleOp, cfg: CrossbarConfig, components: Components) -> list[MatrixCost]:
    clone = module.clone()
    for op in clone.walk():
        if isinstance(op, xbar.WriteOp):
            op.attributes.pop("clip_alpha", None)
            op.attributes.pop("clip_beta", None)
    return matrix_costs(clone, cfg, components)


def format_report(module: ModuleOp, cfg: CrossbarConfig, components: Components = COMPONENTS) -> str:
    """What ``attnc run --report`` prints for a crossbar module: per matrix kind, totals, attention, and what
    ClipFormer's always-zero slices save."""
    costs = matrix_costs(module, cfg, components)
    lines = [
        f"crossbar cost (per inference; components: docs/methods/crossbar_cost.md): {cfg.n_slices} slices of "
        f"{cfg.bits_per_cell} bits, {cfg.devices_per_value} device(s) per value, ADC {cfg.adc_bits or 'ideal'} bits",
        f"{'matrix':<48} {'kind':<8} {'arrays':>8} {'slices':>6} {'cell writes':>12} {'ADC conv.':>12} "
        f"{'energy nJ':>10} {'area mm2':>9}",
    ]
    for c in costs:
        lines.append(
            f"{c.name[-48:]:<48} {c.kind:<8} {c.arrays:>8} {c.used_slices:>3}/{c.slices:<2} {c.cell_writes:>12} "
            f"{c.adc_conversions:>12} {c.energy_total_pj / 1e3:>10.2f} {c.area_total_um2 / 1e6:>9.4f}"
        )
    for label, only in (("model", False), ("attention", True)):
        figures = totals(costs, only)
        lines.append(f"{label}: " + ", ".join(f"{k} {v:.6g}" for k, v in figures.items()))
    if any(isinstance(op, xbar.WriteOp) and op.clip is not None for op in module.walk()):
        full = totals(_without_clip(module, cfg, components), attention_only=True)
        clipped = totals(costs, attention_only=True)
        energy = 1 - clipped["energy nJ per inference"] / full["energy nJ per inference"]
        area = 1 - clipped["area mm2"] / full["area mm2"]
        lines.append(
            f"ClipFormer's always-zero slices save {100 * energy:.2f} % of attention energy and {100 * area:.2f} % of "
            "attention area (against the same module writing every slice)"
        )
    return "\n".join(lines)
