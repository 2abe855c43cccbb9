"""Fast programming and K/V writes: the same tiles as ``device.program``/``device.write``, bit for bit.

When programming is noise-free (no programming noise, no stuck cells, the default) every cell holds an exact
digit, so the noisy-conductance pipeline of ``device.program`` (devices x slices copies of the matrix, each
mapped to siemens and back) computes integers that can be had directly: the recombined weight is the signed
quantised level, and each tile's per-slice energy (the fast mode's dynamic-ADC factor) is a histogram of the
levels times a table of squared digits. Every figure is an exact integer in float32, so summation order
cannot change it, and the one float reduction that is not exact (``||W_eff||²`` per column tile) runs the same
torch op on the same tensor as ``device.program``. The shortcut is taken only where that argument holds
(:func:`shortcut_applies`); anything else (noisy programming, exact mode, a calibrated ADC, cell digits that do
not survive the siemens round trip exactly) goes through ``device.program`` unchanged.

:func:`write_fast` is ``device.write`` with the write noise worked out once per value instead of once per device
of each differential pair (the idle device sits at g_min, where the noise is zero), from per-level tables; it
draws the same normals and hands ``_build_tiles``' reductions a tensor of the same values and memory layout.

Both keep their temporaries in scratch buffers reused from call to call (one per shape and purpose): on a whole
model, allocating and first touching a fresh tensor for every step cost more than the arithmetic. What they
return never aliases a scratch buffer. Each thread has its own buffers, so runs in several threads do not
interfere (parallel sweeps use processes anyway: compiler/sweeps.py).

:class:`ChipCache` keeps programmed tiles in memory for the life of the weight tensors, keyed by the tensor
(and its version counter), the device configuration and what was skipped, so repeated runs of one model in a
process (benchmarks, sweeps over inputs) program each matrix once. Only states whose programming draws no
random numbers are cached, so a cached run consumes the chip generator exactly like an uncached one.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref

import torch

from runtime.clip_kernels import matrix_max
from targets.crossbar.chip_store import ChipStore, state_key, store_directory
from targets.crossbar.device import (
    _TINY,
    ClipFormer,
    CrossbarConfig,
    CrossbarTiles,
    _rows_per_tile,
    clipformer_normalised,
    program,
    write,
)

_EXACT_FLOAT32 = 1 << 24  # integers up to here are exact in float32
_MAX_HISTOGRAM_LEVELS = 1 << 16


@functools.cache
def _digits_round_trip_exactly(cfg: CrossbarConfig, dtype: torch.dtype) -> bool:
    """Whether every cell digit survives ``device.map_to_conductances`` → ``_build_tiles`` (digit → siemens →
    digit) unchanged, with the very ops those functions use."""
    digits = torch.arange(cfg.cell_levels + 1, dtype=dtype)
    g = cfg.g_min + digits * (cfg.g_range / cfg.cell_levels)
    back = (g - cfg.g_min) * (cfg.cell_levels / cfg.g_range)
    return bool(torch.equal(back, digits))


def stored_levels(cfg: CrossbarConfig) -> int:
    """How many distinct integer levels a cell group holds (the histogram's width)."""
    return 1 << cfg.weight_bits


def shortcut_applies(weight: torch.Tensor, cfg: CrossbarConfig, adc_calibration: torch.Tensor | None = None) -> bool:
    """Whether :func:`program_fast` gives ``device.program``'s tiles exactly (see the module docstring)."""
    return (
        weight.dim() == 2
        and weight.dtype in (torch.float32, torch.float64)
        and cfg.program_noise == 0
        and cfg.stuck_at_rate == 0
        and cfg.mode == "fast"
        and cfg.adc_range in ("dynamic", "max")
        and adc_calibration is None
        and stored_levels(cfg) <= _MAX_HISTOGRAM_LEVELS
        and math.ceil(weight.shape[0] / cfg.tile_cols) * math.ceil(weight.shape[1] / cfg.tile_rows) * stored_levels(cfg)
        < _EXACT_FLOAT32
        and cfg.tile_rows * cfg.tile_cols * cfg.cell_levels**2 < _EXACT_FLOAT32
        and _digits_round_trip_exactly(cfg, weight.dtype)
    )


_SCRATCH = threading.local()  # each thread its own buffers: runs in several threads never share a temporary
_SCRATCH_LIMIT = 32


def _scratch(shape: torch.Size | tuple[int, ...], dtype: torch.dtype, purpose: str) -> torch.Tensor:
    """A reusable contiguous buffer for a temporary, one per size, dtype and purpose (shapes of one size share
    it: a K write and a Vᵀ write use the same memory); its contents are the caller's to overwrite."""
    buffers: dict[tuple, torch.Tensor] | None = getattr(_SCRATCH, "buffers", None)
    if buffers is None:
        buffers = _SCRATCH.buffers = {}
    key = (math.prod(shape), dtype, purpose)
    buffer = buffers.get(key)
    if buffer is None:
        if len(buffers) >= _SCRATCH_LIMIT:
            buffers.clear()
        buffer = buffers[key] = torch.empty(key[0], dtype=dtype)
    return buffer.view(shape)


def _padded_scratch(shape: tuple[int, ...], dtype: torch.dtype, rows: int, cols: int) -> torch.Tensor:
    """A reusable buffer of ``shape`` that is +0 everywhere outside ``[..., :rows, :cols]`` (the caller fills
    that block). Matrices that pad to one shape share it (a K write and a Vᵀ write): what an earlier matrix wrote
    outside the block is zeroed, and only that."""
    shared: dict[tuple, tuple[torch.Tensor, list[int]]] | None = getattr(_SCRATCH, "padded", None)
    if shared is None:
        shared = _SCRATCH.padded = {}
    entry = shared.get((tuple(shape), dtype))
    if entry is None:
        if len(shared) >= _SCRATCH_LIMIT:
            shared.clear()
        entry = shared[(tuple(shape), dtype)] = (torch.zeros(shape, dtype=dtype), [0, 0])
    buffer, written = entry
    written_rows, written_cols = written
    if written_cols > cols:
        buffer[..., :written_rows, cols:written_cols].zero_()
    if written_rows > rows:
        buffer[..., rows:written_rows, : min(cols, written_cols)].zero_()
    written[:] = [rows, cols]
    return buffer


def _matrix_scale(w: torch.Tensor) -> torch.Tensor:
    """``matrix_max(w)`` of a matrix in one pass without a temporary: max(max, -min) is max|w| exactly."""
    low, high = torch.aminmax(w)
    peak = torch.maximum(high, -low)
    if bool(torch.isfinite(peak)) and float(peak) > 0:
        return peak.reshape(1, 1)
    return matrix_max(w)  # zero, NaN or Inf: matrix_max's own conventions


@functools.cache
def _squared_digits(cfg: CrossbarConfig) -> torch.Tensor:
    """``(levels, n_slices)`` float64: the square of each slice's digit of every stored level."""
    levels = torch.arange(stored_levels(cfg), dtype=torch.int64)
    shifts = [cfg.bits_per_cell * (cfg.n_slices - 1 - k) for k in range(cfg.n_slices)]
    digits = torch.stack([(levels >> s) & cfg.cell_levels for s in shifts], dim=1)
    return (digits * digits).to(torch.float64)


@functools.lru_cache(maxsize=16)
def _tile_bins(n_out: int, n_in: int, tile_rows: int, tile_cols: int, levels: int) -> torch.Tensor:
    """``(out, in)`` int32: the first histogram bin of the tile each weight element lands in (crossbar
    orientation: row tile from the input index, column tile from the output index); the bins plus a level fit
    (checked by ``shortcut_applies``)."""
    col_tiles = math.ceil(n_out / tile_cols)
    row_tile = torch.arange(n_in) // tile_rows
    col_tile = torch.arange(n_out) // tile_cols
    return ((row_tile.view(1, -1) * col_tiles + col_tile.view(-1, 1)) * levels).to(torch.int32).contiguous()


@torch.no_grad()
def program_fast(
    weight: torch.Tensor,
    cfg: CrossbarConfig,
    gen: torch.Generator | None = None,
    *,
    skip_tiles: torch.Tensor | None = None,
) -> CrossbarTiles:
    """``device.program(weight, cfg, gen, skip_tiles=skip_tiles)``, computed from integer levels where
    :func:`shortcut_applies`, else by ``device.program`` itself."""
    if not shortcut_applies(weight, cfg):
        return program(weight, cfg, gen, skip_tiles=skip_tiles)
    w = weight.detach()
    n_out, n_in = w.shape
    row_tiles, col_tiles = math.ceil(n_in / cfg.tile_rows), math.ceil(n_out / cfg.tile_cols)
    out_pad = col_tiles * cfg.tile_cols
    if skip_tiles is not None and bool(skip_tiles.any()) and tuple(skip_tiles.shape) != (row_tiles, col_tiles):
        raise ValueError(f"skip_tiles has shape {tuple(skip_tiles.shape)}, the matrix has {(row_tiles, col_tiles)} tiles")
    # Skipped tiles need no work: without programming noise a skipped tile already holds its ideal zeros.

    scale = _matrix_scale(w)
    if not bool(torch.isfinite(scale).all()):
        return program(weight, cfg, gen, skip_tiles=skip_tiles)
    # The quantised level of each value, with device.map_to_conductances' ops, in (out, in) layout; the
    # temporaries live in reused scratch buffers (allocating and first touching a fresh tensor per step cost more
    # than the arithmetic itself).
    w_eff_t = torch.empty(n_in, out_pad, dtype=w.dtype) if out_pad == n_out else torch.zeros(n_in, out_pad, dtype=w.dtype)
    stored = _scratch(w.shape, torch.int32, "stored")  # the level each cell group holds, as an integer
    if cfg.signed_mapping == "differential":
        # round(w / scale * L) is copysign(round(|w| / scale * L), w) exactly (each op is symmetric in the sign);
        # G+ - G- is that level, and +0 (never -0) for a zero level: + 0. Each device of the pair holds |level|.
        signed = torch.div(w, scale, out=_scratch(w.shape, w.dtype, "levels"))
        signed.mul_(cfg.weight_levels).round_().add_(0.0)
        stored.copy_(signed).abs_()
    else:
        signed = torch.round(w / scale * cfg.weight_levels)
        offset = signed + cfg.offset_level
        signed = offset - cfg.offset_level  # the digital offset removal of device._build_tiles: +0 for 0
        stored.copy_(offset)
    w_eff_t[:, :n_out].copy_(signed.t())
    slice_energy = _slice_energy(stored, cfg, row_tiles, col_tiles).to(w.dtype)
    return _fast_tiles(w_eff_t, n_out, slice_energy, scale, cfg, gen)


@functools.cache
def _packed_squared_digits(cfg: CrossbarConfig) -> tuple[torch.Tensor, int] | None:
    """Per stored level, the squares of its slice digits packed into one int64, ``width`` bits a slice, wide
    enough that a tile row's sum never carries into the next slice; None when they do not fit."""
    width = (cfg.tile_rows * cfg.cell_levels**2).bit_length()
    if width * cfg.n_slices > 62:
        return None
    shifts = torch.arange(cfg.n_slices, dtype=torch.int64) * width
    return (_squared_digits(cfg).to(torch.int64) << shifts).sum(dim=1), width


def _slice_energy(stored: torch.Tensor, cfg: CrossbarConfig, row_tiles: int, col_tiles: int) -> torch.Tensor:
    """``(S, row_tiles, col_tiles)`` int64: the sum of each slice's squared cell digit over each tile, for the
    stored levels ``(out, in)`` (int32). Exact integer sums, so any order gives the same figure: one table
    lookup of packed squared digits and two tile sums where whole tiles cover the matrix, else a histogram of
    levels per tile."""
    n_out, n_in = stored.shape
    packed = _packed_squared_digits(cfg)
    if packed is not None and n_in % cfg.tile_rows == 0 and n_out % cfg.tile_cols == 0:
        table, width = packed
        squares = torch.index_select(table, 0, stored.view(-1), out=_scratch((stored.numel(),), torch.int64, "packed"))
        per_row = squares.view(n_out, row_tiles, cfg.tile_rows).sum(dim=-1)  # (out, row_tiles): no field carries
        shifts = (torch.arange(cfg.n_slices, dtype=torch.int64) * width).view(-1, 1, 1)
        fields = (per_row.t().unsqueeze(0) >> shifts) & ((1 << width) - 1)  # (S, row_tiles, out)
        return fields.view(cfg.n_slices, row_tiles, col_tiles, cfg.tile_cols).sum(dim=-1)
    levels = stored_levels(cfg)
    bins = stored.add(_tile_bins(n_out, n_in, cfg.tile_rows, cfg.tile_cols, levels))
    counts = torch.bincount(bins.view(-1), minlength=row_tiles * col_tiles * levels)
    energy = counts.view(row_tiles * col_tiles, levels).to(torch.float64) @ _squared_digits(cfg)
    return energy.t().reshape(cfg.n_slices, row_tiles, col_tiles).contiguous()


@functools.cache
def _write_noise_tables(cfg: CrossbarConfig, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Per cell digit, with ``device.map_to_conductances``' and ``device.write_noise``' own ops: the ideal
    conductance, the write-noise std, and the digit an idle device (digit 0, no noise) reads back as; None when an
    idle device would be noisy (then the shortcut does not apply)."""
    digits = torch.arange(cfg.cell_levels + 1, dtype=dtype)
    g = cfg.g_min + digits * (cfg.g_range / cfg.cell_levels)
    std = (cfg.gamma * cfg.sigma) * torch.sqrt(torch.clamp(g - cfg.g_min, min=0.0) * cfg.g_range)
    if float(std[0]) != 0.0:
        return None
    idle = torch.clamp(g[:1] + std[:1] * 0.0, min=cfg.g_min, max=cfg.g_max)
    idle_digit = ((idle - cfg.g_min) * (cfg.cell_levels / cfg.g_range))[0]
    return g, std, idle_digit


@functools.cache
def _level_tables(cfg: CrossbarConfig, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n_slices, levels)``: for every quantised level, each slice's ideal conductance and write-noise std
    (``_write_noise_tables`` of the level's digit in that slice)."""
    tables = _write_noise_tables(cfg, dtype)
    assert tables is not None
    conductance, noise_std, _ = tables
    levels = torch.arange(stored_levels(cfg), dtype=torch.int64)
    shifts = [cfg.bits_per_cell * (cfg.n_slices - 1 - k) for k in range(cfg.n_slices)]
    digits = torch.stack([(levels >> shift) & cfg.cell_levels for shift in shifts])  # (S, levels)
    return conductance[digits], noise_std[digits]


@functools.cache
def _slice_offsets(cfg: CrossbarConfig) -> torch.Tensor:
    """``(S, 1, 1)`` int32: where each slice's row starts in the flattened ``_level_tables`` (below 2^31:
    ``shortcut_applies`` caps the levels at 2^16)."""
    return (torch.arange(cfg.n_slices, dtype=torch.int32) * stored_levels(cfg)).view(-1, 1, 1)


def write_shortcut_applies(matrix: torch.Tensor, cfg: CrossbarConfig, clip: ClipFormer | None) -> bool:
    """Whether :func:`write_fast` gives ``device.write``'s tiles exactly."""
    return (
        matrix.dim() >= 2
        and matrix.dtype in (torch.float32, torch.float64)
        and cfg.signed_mapping == "differential"
        and cfg.mode == "fast"
        and cfg.adc_range in ("dynamic", "max")
        and cfg.stuck_at_rate == 0
        and cfg.gamma > 0
        and cfg.sigma > 0
        and (clip is None or clip.at == "full_precision")
        and stored_levels(cfg) <= _MAX_HISTOGRAM_LEVELS
        and _write_noise_tables(cfg, matrix.dtype) is not None
    )


@torch.no_grad()
def write_fast(
    matrix: torch.Tensor, cfg: CrossbarConfig, gen: torch.Generator | None = None, *, clip: ClipFormer | None = None
) -> CrossbarTiles:
    """``device.write(matrix, cfg, gen, clip=clip)`` bit for bit, with the noise worked out once per value
    instead of once per device of each differential pair.

    Of a pair only the device on the value's side holds a digit; the other sits at g_min, where the write noise
    is zero, so it reads back as a constant. The same normals are drawn (one per device and slice, in
    ``device.write``'s order) and the active device's are used; every per-cell op is ``device.write``'s own, and
    the per-slice matrix the tiles are built from has the same values and memory layout.
    """
    if not write_shortcut_applies(matrix, cfg, clip):
        return write(matrix, cfg, gen, clip=clip)
    tables = _write_noise_tables(cfg, matrix.dtype)
    assert tables is not None
    idle_digit = tables[2]
    if gen is None:
        raise ValueError("write noise is random: pass an explicit torch.Generator (gen=...) for reproducibility")
    w = matrix.detach()
    *batch, n_out, n_in = w.shape
    wt = w.transpose(-1, -2)
    scale = matrix_max(w)
    if not bool(torch.isfinite(scale).all()):  # NaN or Inf in K/V: device.write's own (meaningless) levels
        return write(matrix, cfg, gen, clip=clip)
    magnitude = wt.abs() / scale
    if clip is not None:
        magnitude = clipformer_normalised(magnitude, clip.alpha, clip.beta, cfg)
    levels = torch.round(magnitude * cfg.weight_levels).to(torch.int32)  # at most 2^24 - 1
    # Per slice and level: the ideal conductance of the level's digit in that slice and its write-noise std,
    # flattened (slice-major) so that one gather with index level + slice * levels reads a (*batch, S, in, out)
    # tensor. Every op below is elementwise, so working in that layout (the per-slice matrix's own) instead of
    # device.write's changes no value.
    level_conductance, level_std = _level_tables(cfg, w.dtype)
    slices = cfg.n_slices
    slice_shape = (*batch, slices, n_in, n_out)
    index = torch.add(levels.unsqueeze(-3), _slice_offsets(cfg), out=_scratch(slice_shape, torch.int32, "write-index"))
    flat_index = index.view(-1)
    # device.write draws one normal per (*batch, device, slice, in, out); the active device's are kept.
    normal_shape = (*batch, cfg.devices_per_value, slices, n_in, n_out)
    normals = torch.randn(normal_shape, generator=gen, out=_scratch(normal_shape, w.dtype, "write-normals"))
    positive = torch.gt(wt, 0, out=_scratch((*batch, n_in, n_out), torch.bool, "write-positive")).unsqueeze(-3)
    # The active device's normal, picked with bit operations on the normals' bits (a select, so exact, and several
    # times faster than torch.where with a broadcast condition): keep = -1 (all bits) where the value is positive.
    as_bits, sign_bit = (torch.int32, -(1 << 31)) if w.dtype == torch.float32 else (torch.int64, -(1 << 63))
    keep = positive.to(as_bits).neg_()
    bits = normals.view(as_bits)
    active_normals = _scratch(slice_shape, w.dtype, "write-active")
    chosen = torch.bitwise_xor(bits.select(-4, 0), bits.select(-4, 1), out=active_normals.view(as_bits))
    chosen.bitwise_and_(keep).bitwise_xor_(bits.select(-4, 1))
    # device.write's ops, in place: G + std * N (addition commutes bit for bit), clamped, then back to digits.
    g = torch.index_select(level_std.view(-1), 0, flat_index, out=_scratch((index.numel(),), w.dtype, "write-g"))
    g = g.view(slice_shape).mul_(active_normals)
    conductance = torch.index_select(level_conductance.view(-1), 0, flat_index, out=active_normals.view(-1))
    g.add_(conductance.view(slice_shape)).clamp_(min=cfg.g_min, max=cfg.g_max)
    active = g.sub_(cfg.g_min).mul_(cfg.cell_levels / cfg.g_range)
    if float(idle_digit) == 0.0:
        # G+ - G- is +-active (active >= +0, never NaN): times -1 is a flip of the sign bit where the value is not
        # positive; + 0 then turns -0 into +0, as device._build_tiles' subtraction gives.
        active.view(as_bits).bitwise_xor_(torch.bitwise_not(keep).bitwise_and_(sign_bit))
    else:
        active = torch.where(positive, active - idle_digit, idle_digit - active)

    # device._build_tiles from its per-slice matrix on (fast mode, no calibration).
    row_tiles, col_tiles = math.ceil(n_in / cfg.tile_rows), math.ceil(n_out / cfg.tile_cols)
    in_pad, out_pad = row_tiles * cfg.tile_rows, col_tiles * cfg.tile_cols
    # device._build_tiles pads the per-slice matrix (columns for the recombination, rows and columns for the tile
    # energies). Here the padded matrix is a scratch buffer shared by the matrices that pad to this shape, +0
    # outside this matrix's block (``_padded_scratch``), so each write fills only its values: the same tensors,
    # without the padding work.
    padded = _padded_scratch((*batch, cfg.n_slices, in_pad, out_pad), w.dtype, n_in, n_out)
    cols_padded = padded[..., :n_in, :]
    per_slice = cols_padded[..., :n_out]
    if float(idle_digit) == 0.0:
        torch.add(active, 0.0, out=per_slice)  # + 0: -0 becomes +0
    else:
        per_slice.copy_(active)
    w_eff_t = _recombine(cols_padded, cfg)
    # Squared in place, whole padded rows (their padding squares to the +0 already there); the padding rows stay +0.
    cols_padded.pow_(2)
    tiled = padded.view(*batch, cfg.n_slices, row_tiles, cfg.tile_rows, col_tiles, cfg.tile_cols)
    # These energies set the dynamic ADC's step (adc_kappa) of every product with this matrix, so their last bits
    # are the outputs' bits: they are summed by device._build_tiles' own reduction on its own layout.
    slice_energy = tiled.sum(dim=(-3, -1))
    return _fast_tiles(w_eff_t, n_out, slice_energy, scale, cfg, gen)


@functools.cache
def _sequential_recombination_is_einsum(cfg: CrossbarConfig, dtype: torch.dtype) -> bool:
    """Whether adding the slices one by one, most significant first, gives ``device._build_tiles``' einsum
    bit for bit on this machine. The products are exact (powers of two), so only the order of the additions could
    differ; a random probe with values of mixed magnitudes tells a different order apart at once."""
    probe_gen = torch.Generator().manual_seed(12345)
    shape = (3, cfg.n_slices, 37, 2 * cfg.tile_cols)
    probe = torch.randn(shape, generator=probe_gen, dtype=dtype) * torch.rand(shape, generator=probe_gen, dtype=dtype) ** 4
    probe[0] = torch.round(probe[0] * cfg.cell_levels) + 1e-3 * probe[1]
    sig = torch.tensor(cfg.slice_significance(), dtype=dtype)
    expected = torch.einsum("s,...sio->...io", sig, probe).contiguous()
    added = _add_slices(probe, cfg)
    same_bits = torch.equal(expected, added) and torch.equal(expected.signbit(), added.signbit())
    return same_bits and expected.stride() == added.stride()


def _add_slices(per_slice: torch.Tensor, cfg: CrossbarConfig) -> torch.Tensor:
    """sum_s significance_s * per_slice[..., s, :, :], added in slice order (each product is exact)."""
    significance = cfg.slice_significance()
    total = torch.mul(per_slice.select(-3, 0), float(significance[0]))
    for k in range(1, cfg.n_slices):
        total.add_(per_slice.select(-3, k), alpha=float(significance[k]))
    return total


def _recombine(per_slice: torch.Tensor, cfg: CrossbarConfig) -> torch.Tensor:
    """``device._build_tiles``' ``einsum("s,...sio->...io", significance, per_slice).contiguous()``, bit for bit:
    the slices added in order where that is the einsum's result on this machine, else the einsum itself."""
    if _sequential_recombination_is_einsum(cfg, per_slice.dtype):
        return _add_slices(per_slice, cfg)
    sig = torch.tensor(cfg.slice_significance(), dtype=per_slice.dtype, device=per_slice.device)
    return torch.einsum("s,...sio->...io", sig, per_slice.contiguous()).contiguous()


def _fast_tiles(
    w_eff_t: torch.Tensor,
    n_out: int,
    slice_energy: torch.Tensor,
    scale: torch.Tensor,
    cfg: CrossbarConfig,
    gen: torch.Generator | None,
) -> CrossbarTiles:
    """The fast mode's tiles (dynamic or "max" ADC range, no calibration) from the recombined weight
    ``(*batch, in, out_pad)`` and the per-slice tile energies ``(*batch, S, row_tiles, col_tiles)``: the lines
    of ``device._build_tiles`` that follow them, on the same tensors."""
    *batch, n_in, _ = w_eff_t.shape
    row_tiles, col_tiles = slice_energy.shape[-2:]
    sig = torch.tensor(cfg.slice_significance(), dtype=w_eff_t.dtype, device=w_eff_t.device)
    weighted = torch.einsum("s,...stc->...c", sig**2, slice_energy)
    by_column_tile = w_eff_t.reshape(*batch, n_in, col_tiles, cfg.tile_cols)
    squares = torch.pow(by_column_tile, 2, out=_scratch(by_column_tile.shape, by_column_tile.dtype, "squares"))
    w_energy = squares.sum(dim=(-3, -1))  # device._build_tiles' op on a tensor of the same values and layout
    kappa = torch.where(w_energy > 0, torch.sqrt(weighted / w_energy.clamp(min=_TINY)), torch.ones_like(w_energy))
    kappa = kappa / (cfg.adc_code_max or 1)
    return tiles_from_parts(w_eff_t, n_out, kappa, scale, cfg, gen)


def tiles_from_parts(
    w_eff_t: torch.Tensor,
    n_out: int,
    kappa: torch.Tensor,
    scale: torch.Tensor,
    cfg: CrossbarConfig,
    gen: torch.Generator | None,
) -> CrossbarTiles:
    """The fast mode's tiles from the three tensors that depend on the matrix (the recombined weight, the
    dynamic-ADC factor per column tile and the mapping scale); everything else follows from the
    configuration, with ``device._build_tiles``' ops (the chip store rebuilds a state from these three)."""
    *batch, n_in, _ = w_eff_t.shape
    row_tiles, col_tiles = math.ceil(n_in / cfg.tile_rows), kappa.shape[-1]
    fast_step = fast_inv_step = full_scale = None
    if cfg.adc_range == "max":
        sig = torch.tensor(cfg.slice_significance(), dtype=w_eff_t.dtype, device=w_eff_t.device)
        rows = torch.tensor(_rows_per_tile(n_in, cfg), dtype=w_eff_t.dtype, device=w_eff_t.device)
        full_scale = (rows * (cfg.cell_levels * cfg.input_levels)).view(row_tiles, 1, 1)
        full_scale = full_scale.expand(*batch, row_tiles, cfg.n_slices, col_tiles)
        if cfg.adc_code_max is not None:
            step = full_scale / cfg.adc_code_max
            fast_step = torch.sqrt(torch.einsum("s,...tsc->...c", sig**2, step**2))
            fast_step = fast_step.repeat_interleave(cfg.tile_cols, dim=-1)
            if batch:
                fast_step = fast_step.unsqueeze(-2)
            fast_inv_step = torch.where(fast_step > 0, 1.0 / fast_step.clamp(min=_TINY), torch.zeros_like(fast_step))

    out_factor: float | torch.Tensor = scale / (cfg.weight_levels * cfg.input_levels)
    if not batch:
        out_factor = float(out_factor)
    sum_sig2 = sum(s * s for s in cfg.slice_significance())
    read_noise_factor = cfg.read_noise * cfg.cell_levels * math.sqrt(cfg.devices_per_value * sum_sig2)
    pool = None
    if cfg.read_noise > 0 and cfg.read_noise_pool > 0:
        if gen is None:
            raise ValueError("read-noise pool is random: pass an explicit torch.Generator (gen=...) for reproducibility")
        pool = torch.randn(cfg.read_noise_pool, generator=gen, dtype=w_eff_t.dtype)
    return CrossbarTiles(
        cfg=cfg,
        in_features=n_in,
        out_features=n_out,
        batch_shape=tuple(batch),
        scale=scale,
        w_eff_t=w_eff_t,
        slice_levels_tiled=None,
        adc_kappa=kappa,
        adc_full_scale=full_scale,
        fast_adc_step=fast_step,
        fast_adc_inv_step=fast_inv_step,
        out_factor=out_factor,
        read_noise_factor=read_noise_factor,
        read_noise_pool=pool,
    )


class ChipCache:
    """Programmed tiles kept for the life of each weight tensor (see the module docstring)."""

    def __init__(self) -> None:
        # id(tensor) -> (a weak reference to it, its states by key); an entry goes when its tensor does.
        self._states: dict[int, tuple[weakref.ref, dict[tuple, CrossbarTiles]]] = {}

    @staticmethod
    def cacheable(cfg: CrossbarConfig) -> bool:
        """Programming with this configuration draws no random numbers (so the seed does not matter)."""
        return cfg.program_noise == 0 and cfg.stuck_at_rate == 0 and not (cfg.read_noise > 0 and cfg.read_noise_pool > 0)

    def program(
        self, weight: torch.Tensor, cfg: CrossbarConfig, gen: torch.Generator | None, skip_tiles: torch.Tensor | None
    ) -> CrossbarTiles:
        if not self.cacheable(cfg):
            return program_fast(weight, cfg, gen, skip_tiles=skip_tiles)
        entry = self._states.get(id(weight))
        if entry is None or entry[0]() is not weight:
            ident = id(weight)
            entry = self._states[ident] = (weakref.ref(weight, lambda _: self._states.pop(ident, None)), {})
        skipped = None if skip_tiles is None else tuple(skip_tiles.flatten().tolist())
        key = (weight._version, cfg, skipped)
        state = entry[1].get(key)
        if state is None:
            state = entry[1][key] = self._program_through_store(weight, cfg, gen, skip_tiles, skipped)
        return state

    @staticmethod
    def _program_through_store(
        weight: torch.Tensor, cfg: CrossbarConfig, gen: torch.Generator | None, skip_tiles: torch.Tensor | None, skipped
    ) -> CrossbarTiles:
        """The state from the on-disk store when it holds it, else programmed (and then stored); only states
        the fast programming makes are stored (they are rebuilt from three tensors, ``tiles_from_parts``)."""
        store = ChipStore(store_directory())
        if store.directory is None or not shortcut_applies(weight, cfg):
            return program_fast(weight, cfg, gen, skip_tiles=skip_tiles)
        key = state_key(weight, cfg, skipped)
        parts = store.load(key, weight, cfg)
        if parts is not None:
            w_eff_t, kappa, scale = parts
            return tiles_from_parts(w_eff_t, weight.shape[0], kappa, scale, cfg, gen)
        state = program_fast(weight, cfg, gen, skip_tiles=skip_tiles)
        if state.slice_levels_tiled is None and state.read_noise_pool is None and bool(torch.isfinite(state.scale).all()):
            store.save(key, state)
        return state

    def clear(self) -> None:
        self._states.clear()


CHIP_CACHE = ChipCache()
"""The process-wide cache the simulator programs through."""
