"""Memristive crossbar device model and simulator core, in pure vectorised torch.

This module is the numerical heart of the crossbar target: it maps value matrices to conductances, applies
the device non-idealities (programming noise, write noise, stuck-at cells, read noise), and computes
matrix-vector products the way a tiled, bit-sliced crossbar with DACs and ADCs would. It imports only torch,
so the runtime implementations of the ``xbar`` dialect and the benchmarks can use it directly.

Conventions (the same everywhere in this module)
-----------------------------------------------
* **Orientation.** A weight matrix ``W`` is ``(out, in)`` like ``nn.Linear.weight``; the product is
  ``y = x @ W.T`` (``nn.linear`` without bias). On the crossbar, inputs drive the rows (word lines) and
  outputs are read on the columns, so conductance arrays are stored transposed, ``(..., in, out)``.
  Leading batch dimensions on ``W`` (e.g. one K matrix per batch item and head) give independent arrays.
* **Mapping.** One scale per matrix, ``scale = max|W|`` over the last two dims. The magnitude
  ``u = |W| / scale`` in [0, 1] is quantised to an integer level ``q = round(u * (2**weight_bits - 1))``
  (``weight_bits`` magnitude bits; the sign is carried by the differential pair), ``q`` is bit-sliced into
  ``ceil(weight_bits / bits_per_cell)`` digits, most-significant slice first, and each digit ``d`` becomes
  the conductance ``g_min + d / (2**bits_per_cell - 1) * (g_max - g_min)``.
  ``signed_mapping="differential"`` (default): positive values on G+, negative on G-, the idle device at
  g_min. ``"offset"``: one device per cell holding ``q + 2**(weight_bits-1)`` with ``q`` in
  [-(2**(weight_bits-1) - 1), 2**(weight_bits-1) - 1]; the offset is removed digitally using the sum of the
  (digital) inputs.
* **Noise, in the conductance domain.**
  - programming noise (static tiles, once at ``program``): ``G + program_noise * (g_max - g_min) * N(0, 1)``,
    clamped at 0 from below only (a conductance cannot be negative; same convention as IBM aihwkit);
  - write noise (dynamic operands, every ``write``, i.e. K and V on each inference; docs/methods/clipformer.md):
    ``G + gamma * sqrt((G - g_min)(g_max - g_min)) * N(0, sigma**2)``, clamped to
    [g_min, g_max] (a write cannot leave the device's programmable window). Zero at g_min, grows with G;
  - stuck-at faults: each cell independently stuck with probability ``stuck_at_rate``, at g_max with
    probability ``stuck_at_high_fraction`` and at g_min otherwise;
  - read noise (every MVM): additive ``read_noise * (g_max - g_min) * N(0, 1)`` per cell and per read,
    independent of G. Because it is Gaussian and the column current is linear in it, it is sampled exactly
    in distribution at the column output (std ``read_noise * ||x||_2`` in conductance units), which
    avoids drawing a noise value per cell per input vector.
* **Inputs (DAC).** Each input vector is scaled by its own ``max|x|`` and quantised to signed
  ``input_bits`` (levels +-(2**(input_bits-1) - 1)). Bit-serial input streaming is modelled as applying the
  quantised multi-bit input at once; the ADC then sees the accumulated multi-bit current (documented
  simplification: per-input-bit ADC conversions are not modelled).
* **ADC.** One ADC conversion per tile, per slice, per column, on the differential column current
  (I+ - I-, or the single-device current for offset mapping), signed, ``2**(adc_bits-1) - 1`` steps each
  side. The full-scale range policy ``adc_range`` is set per (tile, slice) and shared by a tile's columns:
  - ``"dynamic"`` (default): full-scale = the largest |current| of that tile and slice in this MVM call
    (ideal per-call auto-ranging; never clips). Chosen because the paper does not give the ADC range and
    a range fixed for the worst case would let the ADC, not the device, dominate the error. It is the
    natural policy for K and V, which are rewritten every inference.
  - ``"calibrated"``: full-scale fixed at program time = the largest |noise-free current| of that tile and
    slice over sample inputs (``program(..., adc_calibration=x)``), as a deployed chip would be set up;
    later currents beyond it saturate (exact mode). The fast mode's cheapest path.
  - ``"max"``: full-scale = the largest current physically possible (all rows at full input, all cells at
    the top level); data-free and pessimistic: with 6 bits it leaves few levels for typical currents.
  ``adc_bits=None`` is an ideal ADC. The digital shift-and-add weights slice ``k`` (MSB first) by
  ``2**(bits_per_cell * (n_slices - 1 - k))`` and sums the row tiles.
* **Two MVM modes.**
  - ``"exact"``: per tile, per slice currents, read noise added per (tile, slice, column), ADC per
    (tile, slice, column), digital shift-and-add. Costs ``n_slices`` matmuls plus elementwise work on
    ``n_slices * n_row_tiles`` times the output size.
  - ``"fast"`` (default): the noisy, sliced and recombined weight is precomputed at program time
    (programming noise and stuck-at cells are static), so an MVM is one matmul. Read noise is added on the
    recombined output with the exactly-equivalent variance. The per-(tile, slice) ADCs are replaced by one
    rounding of the recombined output with a variance-matched step
    ``sqrt(sum_{tile,slice} significance**2 * step_{tile,slice}**2)``; for ``"dynamic"`` the per-tile-slice
    full-scale is estimated as ``max|y| * ||G_{tile,slice}||_F / ||W_eff||_F`` per column tile (isotropic
    inputs). This matches the exact mode's ADC error variance while the ADC step is small compared with the
    currents; when the ADC is very coarse (e.g. ``"max"`` with 6 bits) it is only an approximation. The fast
    mode does not model saturation of a calibrated ADC (the exact mode does).
* **Units.** Conductances are in siemens. Internally, MVMs run in "level" units (conductance above g_min
  divided by ``(g_max - g_min) / (2**bits_per_cell - 1)``, times the significance), then rescale to values.
* **Randomness.** Every random draw takes an explicit ``torch.Generator``; the same generator state gives
  bit-identical results. Functions that need randomness raise if none is given.

ClipFormer (docs/methods/clipformer.md) is :func:`clipformer_conductance` in the conductance domain and
:func:`clipformer_values` in value units (the exact equivalent for the noise-free reference target).
It is applied to the full-precision conductance of the mapped value, before quantisation and bit slicing
(``ClipFormer.at="full_precision"``, the paper's reading, unconfirmed); ``at="per_slice"`` applies it to
each slice's cell instead. With 8-bit values in 2-bit cells and g_max/g_min = 100, beta = 0.25 caps the
level at 62 < 64, so the most significant slice is always zero (see the tests).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from dialects.attn import clipformer_errors
from runtime.clip_kernels import clip_normalised_magnitude, matrix_max

SIGNED_MAPPINGS = ("differential", "offset")
ADC_RANGES = ("dynamic", "calibrated", "max")
MVM_MODES = ("fast", "exact")
CLIP_POSITIONS = ("full_precision", "per_slice")

# Default write-noise sigma: NOT the paper's value (unconfirmed there). Chosen so that gamma = 5 visibly
# hurts: with the default 2-bit cells / 8-bit values it gives a relative Frobenius error of ~0.49 on a
# written Gaussian matrix at gamma = 5 (~0.42 at gamma = 4, ~0.33 at gamma = 3); ClipFormer(2, 0.25) cuts
# the noise part to ~0.33 at gamma = 5. Table in bench/results/xbar_vs_aihwkit.md.
DEFAULT_WRITE_SIGMA = 0.1

_TINY = 1e-30


def crossbar_config_errors(values: Any, spell: Callable[[str], str] = str) -> list[str]:
    """What is wrong with a set of crossbar parameters (anything with CrossbarConfig's attributes), one
    message per problem, each naming the parameter as ``spell`` writes it.

    The one validation of the device parameters: ``CrossbarConfig`` raises on the first, ``lower-to-xbar``
    reports it with its option spelling (``spell`` turns ``bits_per_cell`` into ``bits-per-cell``).
    A bit width of 0 or None means an ideal converter.
    """
    errors: list[str] = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            errors.append(message)

    for item in dataclasses.fields(CrossbarConfig):
        value = getattr(values, item.name)
        check(not isinstance(value, float) or math.isfinite(value), f"{spell(item.name)} must be a finite number, got {value}")
    if errors:
        return errors
    check(values.tile_rows > 0 and values.tile_cols > 0, f"tile size must be positive, got {values.tile_rows}x{values.tile_cols}")
    check(1 <= values.bits_per_cell <= 8, f"{spell('bits_per_cell')} must be in 1..8, got {values.bits_per_cell}")
    check(2 <= values.weight_bits <= 24, f"{spell('weight_bits')} must be in 2..24, got {values.weight_bits}")
    for name in ("input_bits", "adc_bits"):
        bits = getattr(values, name)
        check(not bits or 2 <= bits <= 24, f"{spell(name)} must be 0 (ideal) or 2..24, got {bits}")
    for name, allowed in (("adc_range", ADC_RANGES), ("signed_mapping", SIGNED_MAPPINGS), ("mode", MVM_MODES)):
        value = getattr(values, name)
        check(value in allowed, f"{spell(name)} must be one of {', '.join(allowed)}, got '{value}'")
    check(
        0 <= values.g_min < values.g_max,
        f"need 0 <= {spell('g_min')} < {spell('g_max')}, got {spell('g_min')}={values.g_min}, {spell('g_max')}={values.g_max}",
    )
    for name in ("gamma", "sigma", "program_noise", "read_noise"):
        check(getattr(values, name) >= 0, f"{spell(name)} must be >= 0, got {getattr(values, name)}")
    check(values.read_noise_pool >= 0, f"{spell('read_noise_pool')} must be >= 0, got {values.read_noise_pool}")
    for name in ("stuck_at_rate", "stuck_at_high_fraction"):
        check(0 <= getattr(values, name) <= 1, f"{spell(name)} must be in [0, 1], got {getattr(values, name)}")
    return errors


@dataclass(frozen=True)
class CrossbarConfig:
    """Crossbar hardware and non-ideality parameters (defaults: ClipFormer's setup, docs/methods/clipformer.md).

    Fields marked "default, not the paper's" are choices of this simulator where the paper is silent.
    """

    tile_rows: int = 64
    tile_cols: int = 64
    bits_per_cell: int = 2
    weight_bits: int = 8
    # Signed input levels +-(2**(input_bits-1) - 1) after per-vector max scaling; None = no DAC quantisation.
    input_bits: int | None = 8
    # Default, not the paper's (unconfirmed; the same group uses 6). None = ideal ADC.
    adc_bits: int | None = 6
    adc_range: str = "dynamic"
    g_min: float = 0.1e-6  # siemens (R_max = 10 MOhm)
    g_max: float = 10e-6  # siemens (R_min = 100 kOhm, ON/OFF = 100)
    signed_mapping: str = "differential"
    gamma: float = 5.0  # gamma of the write-noise model; the paper reports 3, 4, 5
    sigma: float = DEFAULT_WRITE_SIGMA  # default, not the paper's
    program_noise: float = 0.0  # std of static programming noise, fraction of (g_max - g_min)
    read_noise: float = 0.0  # std of per-read noise, fraction of (g_max - g_min)
    # >0: draw read noise from a pool of this many normals made at program time, at a random offset per
    # call (fast, but samples repeat across calls); 0: fresh normals every call.
    read_noise_pool: int = 0
    stuck_at_rate: float = 0.0  # fraction of cells stuck
    stuck_at_high_fraction: float = 0.5  # of the stuck cells, the fraction stuck at g_max
    mode: str = "fast"

    def __post_init__(self) -> None:
        errors = crossbar_config_errors(self)
        if errors:
            raise ValueError(f"CrossbarConfig: {errors[0]}")

    @property
    def n_slices(self) -> int:
        """Cells per value (per device of a differential pair)."""
        return math.ceil(self.weight_bits / self.bits_per_cell)

    @property
    def cell_levels(self) -> int:
        """Top digit of one cell: 2**bits_per_cell - 1."""
        return (1 << self.bits_per_cell) - 1

    @property
    def weight_levels(self) -> int:
        """Largest integer magnitude a value can take (the level of max|W|)."""
        if self.signed_mapping == "differential":
            return (1 << self.weight_bits) - 1
        return (1 << (self.weight_bits - 1)) - 1

    @property
    def offset_level(self) -> int:
        """Integer offset added before slicing (offset mapping) and removed digitally after the MVM."""
        return 0 if self.signed_mapping == "differential" else 1 << (self.weight_bits - 1)

    @property
    def devices_per_value(self) -> int:
        """Devices per slice of one value: 2 for a differential pair, 1 for offset mapping."""
        return 2 if self.signed_mapping == "differential" else 1

    @property
    def input_levels(self) -> float:
        """Largest input level after DAC scaling (1.0 when inputs are not quantised)."""
        return float((1 << (self.input_bits - 1)) - 1) if self.input_bits is not None else 1.0

    @property
    def adc_code_max(self) -> int | None:
        """Largest ADC code on each side of zero (None for an ideal ADC)."""
        return None if self.adc_bits is None else (1 << (self.adc_bits - 1)) - 1

    @property
    def g_range(self) -> float:
        return self.g_max - self.g_min

    def slice_significance(self) -> list[int]:
        """Digital shift-and-add weight of each slice, most-significant slice first."""
        return [1 << (self.bits_per_cell * (self.n_slices - 1 - k)) for k in range(self.n_slices)]


# --------------------------------------------------------------------------------------------------------
# ClipFormer transform
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipFormer:
    """ClipFormer's K/V transform: a dead zone of alpha*g_min and a ceiling of beta*g_max.

    ``at`` says where it acts: on the full-precision conductance of the mapped value, before quantisation
    and bit slicing (``"full_precision"``, default), or on each slice's cell conductance (``"per_slice"``;
    with beta = 0.25 and 2-bit cells that squashes every slice to digit <= 0.73, so it is mostly of
    interest to show why the paper's reading is the full-precision one).
    """

    alpha: float = 2.0
    beta: float = 0.25
    at: str = "full_precision"

    def __post_init__(self) -> None:
        for error in clipformer_errors(self.alpha, self.beta):
            raise ValueError(f"ClipFormer: {error}")
        if self.at not in CLIP_POSITIONS:
            raise ValueError(f"ClipFormer: at must be one of {CLIP_POSITIONS}, got {self.at!r}")


def clipformer_conductance(g: torch.Tensor, alpha: float, beta: float, cfg: CrossbarConfig) -> torch.Tensor:
    """ClipFormer in the conductance domain: G1 = max(G - alpha*g_min, g_min); G2 = min(G1, beta*g_max)."""
    g1 = torch.clamp(g - alpha * cfg.g_min, min=cfg.g_min)
    return torch.clamp(g1, max=beta * cfg.g_max)


def clipformer_normalised(u: torch.Tensor, alpha: float, beta: float, cfg: CrossbarConfig) -> torch.Tensor:
    """ClipFormer on a normalised magnitude u in [0, 1] (u = (G - g_min) / (g_max - g_min)).

    Exactly :func:`clipformer_conductance` with G = g_min + u * (g_max - g_min): a soft threshold of
    alpha*g_min/(g_max-g_min) followed by a ceiling at (beta*g_max - g_min)/(g_max-g_min) (floored at 0).
    The same function is the reference semantics of ``attn.kv_clip`` (runtime/clip_kernels.py).
    """
    return clip_normalised_magnitude(u, alpha, beta, cfg.g_min, cfg.g_max)


def clipformer_values(
    x: torch.Tensor, clip: ClipFormer, cfg: CrossbarConfig, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """ClipFormer in value units: what the noise-free reference target applies to K and V.

    ``scale`` is the mapping scale (default: max|x| over the last two dims, one scale per stored matrix,
    as :func:`map_to_conductances` does). For ``at="full_precision"`` this is the exact value-domain
    image of the conductance transform, without weight quantisation; for ``at="per_slice"`` it is the
    noise-free quantise -> slice -> clip each cell -> recombine pipeline.
    """
    if cfg.signed_mapping != "differential":
        raise ValueError("ClipFormer is defined for the differential mapping (value 0 at g_min); got 'offset'")
    if scale is None:
        scale = matrix_max(x)
    magnitude = x.abs() / scale
    if clip.at == "full_precision":
        return torch.sign(x) * scale * clipformer_normalised(magnitude, clip.alpha, clip.beta, cfg)
    digits = slice_levels(torch.round(magnitude * cfg.weight_levels), cfg)
    clipped = cfg.cell_levels * clipformer_normalised(digits / cfg.cell_levels, clip.alpha, clip.beta, cfg)
    sig = torch.tensor(cfg.slice_significance(), dtype=x.dtype, device=x.device)
    recombined = torch.tensordot(sig, clipped, dims=1)
    return torch.sign(x) * scale * recombined / cfg.weight_levels


# --------------------------------------------------------------------------------------------------------
# Value <-> conductance mapping
# --------------------------------------------------------------------------------------------------------


def slice_levels(levels: torch.Tensor, cfg: CrossbarConfig) -> torch.Tensor:
    """Bit-slice non-negative integer levels into cell digits, most-significant slice first (new dim 0)."""
    q = levels.to(torch.int64)
    mask = cfg.cell_levels
    shifts = [cfg.bits_per_cell * (cfg.n_slices - 1 - k) for k in range(cfg.n_slices)]
    return torch.stack([(q >> s) & mask for s in shifts]).to(levels.dtype)


class MappedMatrix(NamedTuple):
    """Ideal (noise-free) conductances of a matrix and its value scale.

    ``g`` has shape ``(*batch, devices, n_slices, in, out)``: devices = (G+, G-) for the differential pair
    or (G,) for offset mapping; slices most-significant first; rows = inputs, columns = outputs.
    ``scale`` has shape ``(*batch, 1, 1)``.
    """

    g: torch.Tensor
    scale: torch.Tensor


def map_to_conductances(
    w: torch.Tensor, cfg: CrossbarConfig, clip: ClipFormer | None = None, scale: torch.Tensor | None = None
) -> MappedMatrix:
    """Map a value matrix ``(*batch, out, in)`` to cell conductances (see the module docstring).

    ``scale``: a mapping scale given instead of each matrix's max|w| (a calibrated range), broadcastable to
    ``(*batch, 1, 1)``; magnitudes beyond it saturate at the top level.
    """
    if w.dim() < 2:
        raise ValueError(f"expected a matrix (..., out, in), got shape {tuple(w.shape)}")
    if not w.is_floating_point():
        raise ValueError(f"expected a floating-point matrix, got {w.dtype}")
    if clip is not None and cfg.signed_mapping != "differential":
        raise ValueError("ClipFormer needs signed_mapping='differential' (value 0 must sit at g_min)")
    wt = w.transpose(-1, -2)
    given = scale is not None
    scale = matrix_max(w) if scale is None else scale.to(w.dtype).expand_as(matrix_max(w))
    if cfg.signed_mapping == "differential":
        magnitude = wt.abs() / scale
        if given:
            magnitude = magnitude.clamp(max=1.0)
        if clip is not None and clip.at == "full_precision":
            magnitude = clipformer_normalised(magnitude, clip.alpha, clip.beta, cfg)
        digits = slice_levels(torch.round(magnitude * cfg.weight_levels), cfg)  # (S, *batch, in, out)
        if clip is not None and clip.at == "per_slice":
            digits = cfg.cell_levels * clipformer_normalised(digits / cfg.cell_levels, clip.alpha, clip.beta, cfg)
        positive = (wt > 0).to(w.dtype)
        per_device = torch.stack([digits * positive, digits * (1 - positive)])  # (2, S, *batch, in, out)
    else:
        signed = torch.round((wt / scale).clamp(-1.0, 1.0) * cfg.weight_levels)
        per_device = slice_levels(signed + cfg.offset_level, cfg).unsqueeze(0)  # (1, S, *batch, in, out)
    n_batch = w.dim() - 2
    per_device = per_device.permute(*range(2, 2 + n_batch), 0, 1, -2, -1)  # (*batch, devices, S, in, out)
    g = cfg.g_min + per_device * (cfg.g_range / cfg.cell_levels)
    return MappedMatrix(g, scale)


def conductance_to_levels(g: torch.Tensor, cfg: CrossbarConfig) -> torch.Tensor:
    """Signed integer-valued levels in crossbar orientation ``(*batch, in, out)`` from conductances.

    Recombines the slices with their significance and the devices with their sign (or removes the offset);
    non-integer results mean noise.
    """
    digits = (g - cfg.g_min) * (cfg.cell_levels / cfg.g_range)  # (*batch, devices, S, in, out)
    if cfg.signed_mapping == "differential":
        per_slice = digits[..., 0, :, :, :] - digits[..., 1, :, :, :]
    else:
        per_slice = digits[..., 0, :, :, :]
    sig = torch.tensor(cfg.slice_significance(), dtype=g.dtype, device=g.device)
    levels = torch.einsum("s,...sio->...io", sig, per_slice)
    return levels - cfg.offset_level


def conductances_to_values(g: torch.Tensor, scale: torch.Tensor, cfg: CrossbarConfig) -> torch.Tensor:
    """Inverse of :func:`map_to_conductances`: the value matrix ``(*batch, out, in)`` the cells hold."""
    levels = conductance_to_levels(g, cfg)
    return (levels * (scale / cfg.weight_levels)).transpose(-1, -2)


# --------------------------------------------------------------------------------------------------------
# Device non-idealities
# --------------------------------------------------------------------------------------------------------


def _require_generator(gen: torch.Generator | None, what: str) -> torch.Generator:
    if gen is None:
        raise ValueError(f"{what} is random: pass an explicit torch.Generator (gen=...) for reproducibility")
    return gen


def _normal_like(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(t.shape, generator=gen, dtype=t.dtype, device=t.device)


def write_noise(g: torch.Tensor, cfg: CrossbarConfig, gen: torch.Generator | None) -> torch.Tensor:
    """Write noise on every dynamic write (docs/methods/clipformer.md), clamped to [g_min, g_max].

    G' = G + gamma * sqrt((G - g_min)(g_max - g_min)) * N(0, sigma^2).
    """
    if cfg.gamma == 0 or cfg.sigma == 0:
        return g
    gen = _require_generator(gen, "write noise")
    std = (cfg.gamma * cfg.sigma) * torch.sqrt(torch.clamp(g - cfg.g_min, min=0.0) * cfg.g_range)
    return torch.clamp(g + std * _normal_like(g, gen), min=cfg.g_min, max=cfg.g_max)


def program_noise(g: torch.Tensor, cfg: CrossbarConfig, gen: torch.Generator | None) -> torch.Tensor:
    """Static programming noise: G + program_noise * (g_max - g_min) * N(0, 1), clamped at 0 from below."""
    if cfg.program_noise == 0:
        return g
    gen = _require_generator(gen, "programming noise")
    return torch.clamp(g + (cfg.program_noise * cfg.g_range) * _normal_like(g, gen), min=0.0)


class StuckMap(NamedTuple):
    """Which cells are stuck (``stuck``) and, of those, which at g_max (``high``); same shape as g."""

    stuck: torch.Tensor
    high: torch.Tensor


def draw_stuck_map(shape: torch.Size | tuple[int, ...], cfg: CrossbarConfig, gen: torch.Generator | None) -> StuckMap:
    """Draw a stuck-at fault map; reuse it across writes to model a fixed physical array."""
    gen = _require_generator(gen, "stuck-at faults")
    stuck = torch.rand(shape, generator=gen) < cfg.stuck_at_rate
    high = torch.rand(shape, generator=gen) < cfg.stuck_at_high_fraction
    return StuckMap(stuck, high)


def apply_stuck_at(
    g: torch.Tensor, cfg: CrossbarConfig, gen: torch.Generator | None = None, stuck_map: StuckMap | None = None
) -> tuple[torch.Tensor, StuckMap]:
    """Force stuck cells to g_min or g_max; draws a fault map from ``gen`` unless one is given."""
    if stuck_map is None:
        stuck_map = draw_stuck_map(g.shape, cfg, gen)
    if stuck_map.stuck.shape != g.shape:
        raise ValueError(f"stuck map shape {tuple(stuck_map.stuck.shape)} does not match conductances {tuple(g.shape)}")
    stuck_value = torch.where(stuck_map.high.to(g.device), cfg.g_max, cfg.g_min).to(g.dtype)
    return torch.where(stuck_map.stuck.to(g.device), stuck_value, g), stuck_map


# --------------------------------------------------------------------------------------------------------
# Noise expressed in weight units (to compare with other tools)
# --------------------------------------------------------------------------------------------------------


def weight_noise_std(cfg: CrossbarConfig, kind: str = "program") -> float:
    """Nominal std of the effective weight error, in units of max|W|, for state-independent noise.

    ``kind="program"``: static programming noise; ``kind="read"``: read noise of one MVM. Each of the
    ``devices * n_slices`` cells of a value contributes ``noise * cell_levels * significance`` levels.
    Nominal means before clamping (clamping at 0 only matters when the std approaches g_min).
    """
    noise = {"program": cfg.program_noise, "read": cfg.read_noise}.get(kind)
    if noise is None:
        raise ValueError(f"kind must be 'program' or 'read', got {kind!r}")
    sum_sig2 = sum(s * s for s in cfg.slice_significance())
    return noise * cfg.cell_levels * math.sqrt(cfg.devices_per_value * sum_sig2) / cfg.weight_levels


def write_noise_weight_std(w: torch.Tensor, cfg: CrossbarConfig, clip: ClipFormer | None = None) -> torch.Tensor:
    """Nominal per-element std of the write-noise error, in units of max|W| (before clamping).

    Write noise depends on each cell's conductance, so it is a tensor shaped like ``w``: the sum over the
    value's slices of ``(gamma * sigma * cell_levels * sqrt(digit / cell_levels) * significance)**2``.
    """
    mapped = map_to_conductances(w, cfg, clip)
    u = torch.clamp((mapped.g - cfg.g_min) / cfg.g_range, min=0.0)  # (*batch, devices, S, in, out)
    sig = torch.tensor(cfg.slice_significance(), dtype=w.dtype, device=w.device)
    per_cell = (cfg.gamma * cfg.sigma * cfg.cell_levels) ** 2 * u * (sig**2).view(-1, 1, 1)
    var = per_cell.sum(dim=(-4, -3))
    return (torch.sqrt(var) / cfg.weight_levels).transpose(-1, -2)


# --------------------------------------------------------------------------------------------------------
# Tiles: program / write / mvm
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrossbarTiles:
    """A matrix held in crossbar tiles, ready for MVMs (made by :func:`program` or :func:`write`).

    ``w_eff_t``: the noisy, sliced and recombined weight in level units, crossbar orientation
    ``(*batch, in, out_padded)``; the fast mode's single matmul operand. ``fast_adc_step``/``_inv_step``:
    the fast mode's variance-matched ADC step per output column for static ADC ranges.
    ``slice_levels_tiled``: per-slice device-differential levels, ``(*batch, row_tiles, tile_rows,
    n_slices * out_padded)`` (exact mode only).
    ``adc_full_scale``: per ``(*batch, row_tiles, n_slices, col_tiles)`` ADC full-scale in level units for
    the static policies ("max", "calibrated"); None for "dynamic" or an uncalibrated state.
    ``adc_kappa``: fast-mode dynamic-ADC step factor per column tile ``(*batch, col_tiles)``, already
    divided by the ADC code count. ``conductances`` and ``stuck_map`` are kept only when asked for (they
    take devices x slices times the weight's memory).
    """

    cfg: CrossbarConfig
    in_features: int
    out_features: int
    batch_shape: tuple[int, ...]
    scale: torch.Tensor
    w_eff_t: torch.Tensor
    slice_levels_tiled: torch.Tensor | None
    adc_kappa: torch.Tensor
    adc_full_scale: torch.Tensor | None
    fast_adc_step: torch.Tensor | None
    fast_adc_inv_step: torch.Tensor | None
    out_factor: float | torch.Tensor
    read_noise_factor: float
    read_noise_pool: torch.Tensor | None = None
    conductances: torch.Tensor | None = None
    stuck_map: StuckMap | None = None

    @property
    def row_tiles(self) -> int:
        return math.ceil(self.in_features / self.cfg.tile_rows)

    @property
    def col_tiles(self) -> int:
        return math.ceil(self.out_features / self.cfg.tile_cols)

    @property
    def n_tiles(self) -> int:
        """Physical tile positions per matrix (each holds devices x slices arrays side by side)."""
        return self.row_tiles * self.col_tiles

    def effective_weight(self) -> torch.Tensor:
        """The value matrix ``(*batch, out, in)`` the noisy tiles realise (quantised, with static noise)."""
        levels = self.w_eff_t[..., : self.out_features]
        return (levels * (self.scale / self.cfg.weight_levels)).transpose(-1, -2)


def _pad_last(t: torch.Tensor, size: int) -> torch.Tensor:
    extra = size - t.shape[-1]
    return t if extra == 0 else torch.nn.functional.pad(t, (0, extra))


def _rows_per_tile(n_in: int, cfg: CrossbarConfig) -> list[int]:
    return [min(cfg.tile_rows, n_in - start) for start in range(0, n_in, cfg.tile_rows)]


def _slice_currents(levels: torch.Tensor, slice_tiles: torch.Tensor, cfg: CrossbarConfig) -> torch.Tensor:
    """Noise-free column currents ``(*batch, row_tiles, M, S, out_pad)`` for input levels ``(*batch, M, in)``.

    ``slice_tiles`` is ``(*batch, row_tiles, tile_rows, S * out_pad)``: one matmul per row tile covers all
    slices and column tiles.
    """
    row_tiles = slice_tiles.shape[-3]
    padded = torch.nn.functional.pad(levels, (0, row_tiles * cfg.tile_rows - levels.shape[-1]))
    x_tiles = padded.view(*padded.shape[:-1], row_tiles, cfg.tile_rows).movedim(-2, -3)  # (*b, T_r, M, R)
    currents = x_tiles @ slice_tiles  # (*b, T_r, M, S * out_pad)
    return currents.view(*currents.shape[:-1], cfg.n_slices, -1)


def _build_tiles(
    g: torch.Tensor,
    scale: torch.Tensor,
    cfg: CrossbarConfig,
    gen: torch.Generator | None,
    keep_conductances: bool,
    stuck_map: StuckMap | None,
    adc_calibration: torch.Tensor | None,
    adc_full_scale: torch.Tensor | None = None,
) -> CrossbarTiles:
    """Precompute what MVMs need from (noisy) conductances ``(*batch, devices, S, in, out)``."""
    *batch, _, n_slices, n_in, n_out = g.shape
    row_tiles, col_tiles = math.ceil(n_in / cfg.tile_rows), math.ceil(n_out / cfg.tile_cols)
    in_pad, out_pad = row_tiles * cfg.tile_rows, col_tiles * cfg.tile_cols

    digits = (g - cfg.g_min) * (cfg.cell_levels / cfg.g_range)
    if cfg.signed_mapping == "differential":
        per_slice = digits[..., 0, :, :, :] - digits[..., 1, :, :, :]
    else:
        per_slice = digits[..., 0, :, :, :]
    per_slice = _pad_last(per_slice, out_pad)  # (*batch, S, in, out_pad)
    sig = torch.tensor(cfg.slice_significance(), dtype=g.dtype, device=g.device)
    w_eff_t = torch.einsum("s,...sio->...io", sig, per_slice)
    if cfg.offset_level:
        offset = torch.zeros(out_pad, dtype=g.dtype, device=g.device)
        offset[:n_out] = cfg.offset_level
        w_eff_t = w_eff_t - offset
    w_eff_t = w_eff_t.contiguous()
    rows_padded = torch.nn.functional.pad(per_slice, (0, 0, 0, in_pad - n_in))
    tiled = rows_padded.reshape(*batch, n_slices, row_tiles, cfg.tile_rows, out_pad)

    def slice_tiles() -> torch.Tensor:  # the exact mode's and the calibration's layout: a copy, made only for them
        return tiled.movedim(-4, -2).reshape(*batch, row_tiles, cfg.tile_rows, n_slices * out_pad)

    # Fast-mode dynamic ADC: per column tile, the ratio of the variance-weighted per-(tile, slice) norms
    # to ||W_eff||, i.e. each (tile, slice)'s expected share of max|y| under isotropic inputs.
    per_tile_slice = tiled.reshape(*batch, n_slices, row_tiles, cfg.tile_rows, col_tiles, cfg.tile_cols)
    slice_energy = (per_tile_slice**2).sum(dim=(-3, -1))  # (*batch, S, row_tiles, col_tiles)
    weighted = torch.einsum("s,...stc->...c", sig**2, slice_energy)
    w_energy = (w_eff_t.reshape(*batch, n_in, col_tiles, cfg.tile_cols) ** 2).sum(dim=(-3, -1))
    kappa = torch.where(w_energy > 0, torch.sqrt(weighted / w_energy.clamp(min=_TINY)), torch.ones_like(w_energy))
    kappa = kappa / (cfg.adc_code_max or 1)

    # Static ADC ranges ("max", "calibrated") and the fast mode's variance-matched step per column tile.
    full_scale = None
    if cfg.adc_range == "max":
        rows = torch.tensor(_rows_per_tile(n_in, cfg), dtype=g.dtype, device=g.device)
        full_scale = (
            (rows * (cfg.cell_levels * cfg.input_levels))
            .view(row_tiles, 1, 1)
            .expand(*batch, row_tiles, n_slices, col_tiles)
        )
    elif cfg.adc_range == "calibrated" and adc_full_scale is not None:
        full_scale = adc_full_scale.to(g.dtype).expand(*batch, row_tiles, n_slices, col_tiles)
    elif cfg.adc_range == "calibrated" and adc_calibration is not None:
        if adc_calibration.shape[-1] != n_in:
            raise ValueError(f"ADC calibration inputs have {adc_calibration.shape[-1]} features, expected {n_in}")
        cal = adc_calibration if batch else adc_calibration.reshape(-1, n_in)
        cal_levels, _ = _quantise_inputs(cal.to(g.dtype), cfg)
        currents = _slice_currents(cal_levels, slice_tiles(), cfg)  # (*b, T_r, M, S, out_pad)
        by_tile = currents.view(*currents.shape[:-1], col_tiles, cfg.tile_cols)
        full_scale = by_tile.abs().amax(dim=(-4, -1))  # (*b, T_r, S, T_c)
    fast_step = fast_inv_step = None
    if full_scale is not None and cfg.adc_code_max is not None:
        step = full_scale / cfg.adc_code_max
        fast_step = torch.sqrt(torch.einsum("s,...tsc->...c", sig**2, step**2))  # (*b, T_c)
        fast_step = fast_step.repeat_interleave(cfg.tile_cols, dim=-1)  # (*b, out_pad)
        if batch:
            fast_step = fast_step.unsqueeze(-2)  # (*b, 1, out_pad) to broadcast over input rows
        # A zero range (a column tile that saw no current in calibration) reads as 0, like a saturated ADC.
        fast_inv_step = torch.where(fast_step > 0, 1.0 / fast_step.clamp(min=_TINY), torch.zeros_like(fast_step))

    # Per-call constants: level units -> values (times each input row's max|x|); read-noise std per ||x||.
    out_factor = scale / (cfg.weight_levels * cfg.input_levels)
    if not batch:
        out_factor = float(out_factor)  # type: ignore[assignment]  # a plain float multiplies faster
    sum_sig2 = sum(s * s for s in cfg.slice_significance())
    read_noise_factor = cfg.read_noise * cfg.cell_levels * math.sqrt(cfg.devices_per_value * sum_sig2)

    pool = None
    if cfg.read_noise > 0 and cfg.read_noise_pool > 0:
        pool = torch.randn(cfg.read_noise_pool, generator=_require_generator(gen, "read-noise pool"), dtype=g.dtype)

    return CrossbarTiles(
        cfg=cfg,
        in_features=n_in,
        out_features=n_out,
        batch_shape=tuple(batch),
        scale=scale,
        w_eff_t=w_eff_t,
        slice_levels_tiled=slice_tiles().contiguous() if cfg.mode == "exact" else None,
        adc_kappa=kappa,
        adc_full_scale=full_scale,
        fast_adc_step=fast_step,
        fast_adc_inv_step=fast_inv_step,
        out_factor=out_factor,
        read_noise_factor=read_noise_factor,
        read_noise_pool=pool,
        conductances=g if keep_conductances else None,
        stuck_map=stuck_map if keep_conductances else None,
    )


def zero_tiles(weight: torch.Tensor, tile_rows: int, tile_cols: int) -> torch.Tensor:
    """Which tiles of a matrix ``(out, in)`` hold only zeros: a bool ``(row_tiles, col_tiles)`` in crossbar
    orientation (tile ``(r, c)`` holds inputs ``r·tile_rows …`` and outputs ``c·tile_cols …``; edge tiles
    are padded with zeros)."""
    if weight.dim() != 2:
        raise ValueError(f"expected a matrix (out, in), got shape {tuple(weight.shape)}")
    n_out, n_in = weight.shape
    row_tiles, col_tiles = math.ceil(n_in / tile_rows), math.ceil(n_out / tile_cols)
    nonzero = torch.nn.functional.pad(weight.detach().transpose(0, 1) != 0, (0, col_tiles * tile_cols - n_out,
                                                                              0, row_tiles * tile_rows - n_in))
    return ~nonzero.view(row_tiles, tile_rows, col_tiles, tile_cols).any(dim=3).any(dim=1)


@torch.no_grad()
def program(
    weight: torch.Tensor,
    cfg: CrossbarConfig,
    gen: torch.Generator | None = None,
    *,
    adc_calibration: torch.Tensor | None = None,
    keep_conductances: bool = False,
    skip_tiles: torch.Tensor | None = None,
    adc_full_scale: torch.Tensor | None = None,
) -> CrossbarTiles:
    """Program a static matrix ``(*batch, out, in)`` once: mapping, programming noise, stuck-at cells.

    ``adc_calibration``: sample inputs ``(..., in)`` that set the ADC full-scale per (tile, slice, column
    tile) when ``cfg.adc_range == "calibrated"`` (max |noise-free current| over the sample); or
    ``adc_full_scale``: that full-scale itself, ``(row_tiles, n_slices, col_tiles)`` in level units, found
    beforehand (see :attr:`CrossbarTiles.adc_full_scale`).
    ``skip_tiles``: a bool ``(row_tiles, col_tiles)`` (see :func:`zero_tiles`) of all-zero tiles that are not
    programmed: no array holds them, so they contribute exactly zero (no programming noise, no stuck cells).
    Random draws, in order: programming noise, stuck-at map, read-noise pool (each only if enabled); they are
    drawn for every cell whether or not its tile is skipped, so the tiles that are programmed get the same
    noise with and without skipping.
    """
    mapped = map_to_conductances(weight, cfg)
    g = program_noise(mapped.g, cfg, gen)
    stuck_map = None
    if cfg.stuck_at_rate > 0:
        g, stuck_map = apply_stuck_at(g, cfg, gen)
    if skip_tiles is not None and bool(skip_tiles.any()):
        n_in, n_out = g.shape[-2:]
        expected = (math.ceil(n_in / cfg.tile_rows), math.ceil(n_out / cfg.tile_cols))
        if tuple(skip_tiles.shape) != expected:
            raise ValueError(f"skip_tiles has shape {tuple(skip_tiles.shape)}, the matrix has {expected} tiles")
        cells = skip_tiles.repeat_interleave(cfg.tile_rows, 0).repeat_interleave(cfg.tile_cols, 1)[:n_in, :n_out]
        g = torch.where(cells.to(g.device), mapped.g, g)  # the ideal zero: nothing is stored there
    return _build_tiles(g, mapped.scale, cfg, gen, keep_conductances, stuck_map, adc_calibration, adc_full_scale)


@torch.no_grad()
def write(
    matrix: torch.Tensor,
    cfg: CrossbarConfig,
    gen: torch.Generator | None = None,
    *,
    clip: ClipFormer | None = None,
    stuck_map: StuckMap | None = None,
    adc_calibration: torch.Tensor | None = None,
    keep_conductances: bool = False,
    scale: torch.Tensor | None = None,
    adc_full_scale: torch.Tensor | None = None,
) -> CrossbarTiles:
    """Write a dynamic operand (K or V, each inference): mapping, optional ClipFormer, write noise.

    ``scale``: a fixed mapping scale instead of the matrix's own max (see :func:`map_to_conductances`).
    ``adc_full_scale``: a calibrated ADC's fixed full-scale (as for :func:`program`), shared by the batch.

    The stored matrix follows the ``(out, in)`` convention: K ``(..., seq, head_dim)`` as is for ``Q @ K.T``;
    for ``P @ V`` write ``V.transpose(-1, -2)`` (``(..., head_dim, seq)``).

    Stuck-at cells: ``stuck_map`` if given (a fixed physical array), else drawn from ``gen`` when
    ``stuck_at_rate > 0``. Random draws, in order: write noise, stuck-at map, read-noise pool.
    """
    mapped = map_to_conductances(matrix, cfg, clip, scale)
    g = write_noise(mapped.g, cfg, gen)
    if stuck_map is not None or cfg.stuck_at_rate > 0:
        g, stuck_map = apply_stuck_at(g, cfg, gen, stuck_map)
    return _build_tiles(g, mapped.scale, cfg, gen, keep_conductances, stuck_map, adc_calibration, adc_full_scale)


def _quantise_inputs(x: torch.Tensor, cfg: CrossbarConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """DAC: per-vector max scaling to +-input_levels, rounded when input_bits is set. Returns (levels, max|x|)."""
    x_max = x.abs().amax(dim=-1, keepdim=True).clamp_(min=_TINY)
    levels = x * (cfg.input_levels / x_max)
    if cfg.input_bits is not None:
        levels = levels.round_()
    return levels, x_max


def _read_noise(shape: torch.Size, state: CrossbarTiles, gen: torch.Generator | None, dtype: torch.dtype) -> torch.Tensor:
    """Standard normals for read noise: fresh, or a window of the state's pool at a random offset."""
    pool = state.read_noise_pool
    n = math.prod(shape)
    if pool is None or pool.numel() < n:
        return torch.randn(shape, generator=gen, dtype=dtype)
    start = int(torch.randint(0, pool.numel() - n + 1, (1,), generator=gen))
    return pool[start : start + n].view(shape)


def mvm(
    state: CrossbarTiles,
    x: torch.Tensor,
    gen: torch.Generator | None = None,
    *,
    mode: str | None = None,
) -> torch.Tensor:
    """Crossbar matrix-vector product ``y = x @ W.T`` (nn.linear convention, no bias).

    ``x``: ``(..., in)`` for a single matrix, or ``(*batch, M, in)`` matching a batched state.
    ``mode`` overrides ``state.cfg.mode`` (``"exact"`` needs a state made with mode="exact").
    ``gen`` is needed when read noise is on. Inference only: no gradients flow through.
    """
    cfg = state.cfg
    mode = mode or cfg.mode
    if mode not in MVM_MODES:
        raise ValueError(f"mode must be one of {MVM_MODES}, got {mode!r}")
    if x.shape[-1] != state.in_features:
        raise ValueError(f"input has {x.shape[-1]} features, the crossbar holds {state.in_features} rows")
    if cfg.read_noise > 0:
        gen = _require_generator(gen, "read noise")
    if cfg.adc_bits is not None and cfg.adc_range == "calibrated" and state.adc_full_scale is None:
        raise ValueError("adc_range='calibrated' needs program(..., adc_calibration=sample_inputs)")
    if state.batch_shape:
        if x.dim() < 2 or tuple(x.shape[:-2]) != state.batch_shape:
            raise ValueError(
                f"batched crossbar {state.batch_shape} needs inputs (*{state.batch_shape}, M, in), got {tuple(x.shape)}"
            )
        rows = x
    else:
        rows = x.reshape(-1, state.in_features)
    rows = rows.detach().to(state.w_eff_t.dtype)
    y = _mvm_fast(state, rows, gen) if mode == "fast" else _mvm_exact(state, rows, gen)
    return y if x.dim() == 2 and not state.batch_shape else y.reshape(*x.shape[:-1], state.out_features)


def _mvm_fast(state: CrossbarTiles, rows: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """One matmul with the precomputed effective weight, then read noise and a variance-matched ADC.

    Written with few, mostly in-place torch calls: at 512x512 the per-call overhead of each extra
    elementwise op is a visible fraction of the matmul.
    """
    cfg = state.cfg
    if cfg.input_bits is None and cfg.adc_bits is None and cfg.read_noise == 0:
        # Nothing depends on the per-vector DAC scaling: it cancels, one matmul and one scale remain.
        y = (rows @ state.w_eff_t).mul_(state.out_factor)
        return y if y.shape[-1] == state.out_features else y[..., : state.out_features]
    levels, x_max = _quantise_inputs(rows, cfg)
    y = levels @ state.w_eff_t  # (*batch, M, out_pad), level units
    if cfg.read_noise > 0:
        std = torch.linalg.vector_norm(levels, dim=-1, keepdim=True).mul_(state.read_noise_factor)
        y.addcmul_(std, _read_noise(y.shape, state, gen, y.dtype))
    out_scale = x_max.mul_(state.out_factor)  # (*batch, M, 1)
    if cfg.adc_code_max is None:
        y.mul_(out_scale)
    elif state.fast_adc_step is not None and state.fast_adc_inv_step is not None:  # static range: per-column step
        y.mul_(state.fast_adc_inv_step).round_().mul_(state.fast_adc_step).mul_(out_scale)
    else:  # dynamic range: per column tile, from this call's max|y|
        by_tile = y.view(*y.shape[:-1], state.col_tiles, cfg.tile_cols)
        full_scale = by_tile.abs().amax(dim=(-3, -1), keepdim=True)  # (*batch, 1, col_tiles, 1)
        step = full_scale.mul_(state.adc_kappa.unsqueeze(-2).unsqueeze(-1)).clamp_(min=_TINY)
        by_tile.div_(step).round_().mul_(step * out_scale.unsqueeze(-1))
    return y if y.shape[-1] == state.out_features else y[..., : state.out_features]


def _mvm_exact(state: CrossbarTiles, rows: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Per tile and slice: column currents, read noise, ADC; then digital shift-and-add and rescale."""
    cfg = state.cfg
    if state.slice_levels_tiled is None:
        raise ValueError("exact mode needs a state programmed/written with CrossbarConfig(mode='exact')")
    levels, x_max = _quantise_inputs(rows, cfg)
    currents = _slice_currents(levels, state.slice_levels_tiled, cfg)  # (*b, T_r, M, S, out_pad)
    if cfg.read_noise > 0:
        row_tiles = state.row_tiles
        padded = torch.nn.functional.pad(levels, (0, row_tiles * cfg.tile_rows - state.in_features))
        tile_norm = torch.linalg.vector_norm(padded.view(*padded.shape[:-1], row_tiles, cfg.tile_rows), dim=-1)
        std = (cfg.read_noise * cfg.cell_levels * math.sqrt(cfg.devices_per_value)) * tile_norm.movedim(-1, -2)
        noise = torch.randn(currents.shape, generator=gen, dtype=currents.dtype)
        currents.addcmul_(std.unsqueeze(-1).unsqueeze(-1), noise)  # std per (tile, input row)
    sig = torch.tensor(cfg.slice_significance(), dtype=currents.dtype).view(-1, 1)  # (S, 1) over (S, out)
    if cfg.adc_code_max is not None:
        by_tile = currents.view(*currents.shape[:-1], state.col_tiles, cfg.tile_cols)  # (*b,T_r,M,S,T_c,C)
        if state.adc_full_scale is None:  # dynamic: this call's max |current| per (tile, slice)
            full_scale = by_tile.abs().amax(dim=(-4, -1), keepdim=True)
        else:
            full_scale = state.adc_full_scale.unsqueeze(-3).unsqueeze(-1)  # (*b, T_r, 1, S, T_c, 1)
        step = (full_scale / cfg.adc_code_max).clamp_(min=_TINY)
        codes = (by_tile / step).round_().clamp_(-cfg.adc_code_max, cfg.adc_code_max)  # saturates (calibrated)
        currents = codes.mul_(step * sig.unsqueeze(-1)).view(currents.shape)
    else:
        currents = currents * sig
    y = currents.sum(dim=-2).sum(dim=-3)  # shift-and-add over slices, then sum the row tiles
    if cfg.offset_level:
        y = y - cfg.offset_level * levels.sum(dim=-1, keepdim=True)
    return (y * (x_max * state.out_factor))[..., : state.out_features]
