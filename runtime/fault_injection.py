"""Fault injection at named sites of the checked kernels, reproducible by seed.

A site is a point where a checked kernel hands a tensor to its hook (runtime/abft_kernels.py): ``q``, ``k``,
``v`` (attention operands after their checksums were taken), ``s`` (a block of scores), ``p`` (a block of
exponentials), ``l`` (the normaliser ℓ after a block), ``acc`` (the P·V output accumulator after a block),
``o`` (the attention output), ``checksum`` (the running output checksum), ``weight`` (a linear layer's
weight after its checksum was taken) and ``output`` (a linear layer's output).

A fault model says how one element is corrupted: a single bit flip in the sign, exponent or mantissa field
(bit chosen uniformly in the field), a random value (uniform in ±2·max|x| of the tensor), a bit stuck at 0
or 1 (bit chosen uniformly among all bits; often masked), NaN, or ±Inf.

A :class:`SiteProfile` (one clean run with a recording hook) lists every call of every site with its number
of elements; :func:`sample_fault` then picks one element uniformly over all elements the run exposes at a
site, so each value computed there is equally likely to be hit. A :class:`FaultInjector` corrupts exactly
that element, once (the fault is transient: a re-execution computes correctly).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import torch

SITES = ("q", "k", "v", "s", "p", "l", "acc", "o", "checksum", "weight", "output")
SITE_DESCRIPTIONS = {
    "q": "Q operand of attention",
    "k": "K operand of attention",
    "v": "V operand of attention",
    "s": "scores Q·Kᵀ",
    "p": "exponentials exp/P",
    "l": "softmax normaliser ℓ",
    "acc": "P·V output accumulator",
    "o": "attention output O",
    "checksum": "output checksum itself",
    "weight": "linear weights",
    "output": "linear outputs",
}
FAULT_MODELS = ("bitflip-sign", "bitflip-exponent", "bitflip-mantissa", "random", "stuck-at-0", "stuck-at-1", "nan", "inf")
BIT_FLIPS = ("bitflip-sign", "bitflip-exponent", "bitflip-mantissa")

# (sign bit, exponent bits, mantissa bits) per float type, and the integer view of the same width
_LAYOUT = {
    torch.float32: (31, range(23, 31), range(0, 23), torch.int32),
    torch.float64: (63, range(52, 63), range(0, 52), torch.int64),
    torch.float16: (15, range(10, 15), range(0, 10), torch.int16),
}


@dataclass(frozen=True)
class Fault:
    """One transient fault: the ``call``-th visit of ``site`` in a run, element ``element`` (flat index)."""

    site: str
    call: int
    element: int
    model: str
    bit: int = 0
    draw: float = 0.0  # uniform in [-1, 1): the random value (times 2·max|x|) or the sign of an Inf

    def describe(self) -> str:
        what = f"{self.model}" + (f" bit {self.bit}" if self.model in BIT_FLIPS or self.model.startswith("stuck") else "")
        return f"{what} at {self.site}[call {self.call}, element {self.element}]"


def _pick_bit(model: str, dtype: torch.dtype, rng: random.Random) -> int:
    sign, exponent, mantissa, _ = _LAYOUT[dtype]
    if model == "bitflip-sign":
        return sign
    if model == "bitflip-exponent":
        return rng.choice(list(exponent))
    if model == "bitflip-mantissa":
        return rng.choice(list(mantissa))
    return rng.randrange(sign + 1)


def corrupt_value(value: torch.Tensor, fault: Fault, magnitude: float) -> torch.Tensor:
    """The corrupted version of a 0-d float tensor ``value`` under ``fault`` (``magnitude``: max|x| of its tensor)."""
    if fault.model == "nan":
        return torch.full_like(value, float("nan"))
    if fault.model == "inf":
        return torch.full_like(value, math.copysign(float("inf"), fault.draw or 1.0))
    if fault.model == "random":
        return torch.full_like(value, 2.0 * magnitude * fault.draw)
    integer = _LAYOUT[value.dtype][3]
    bits = value.reshape(1).view(integer).clone()
    width = bits.element_size() * 8
    mask = torch.tensor(1 << fault.bit if fault.bit < width - 1 else -(1 << (width - 1)), dtype=integer)
    if fault.model in BIT_FLIPS:
        bits = bits ^ mask
    elif fault.model == "stuck-at-0":
        bits = bits & ~mask
    elif fault.model == "stuck-at-1":
        bits = bits | mask
    else:
        raise ValueError(f"unknown fault model {fault.model!r}")
    return bits.view(value.dtype).reshape(())


@dataclass
class SiteProfile:
    """Every visit of every site in one run: ``calls[site]`` lists (location, number of elements, dtype)."""

    calls: dict[str, list[tuple[str, int, torch.dtype]]] = field(default_factory=dict)

    def visit(self, site: str, tensor: torch.Tensor, location: str) -> torch.Tensor:
        self.calls.setdefault(site, []).append((location, tensor.numel(), tensor.dtype))
        return tensor

    def elements(self, site: str) -> int:
        return sum(n for _, n, _ in self.calls.get(site, ()))

    def sites(self) -> list[str]:
        return [site for site in SITES if self.elements(site)]


def sample_fault(profile: SiteProfile, site: str, model: str, rng: random.Random) -> Fault:
    """A fault at ``site`` under ``model``, uniform over the elements the profiled run computes there."""
    calls = profile.calls.get(site)
    if not calls:
        raise ValueError(f"the program computes nothing at site {site!r}")
    target = rng.randrange(profile.elements(site))
    for index, (_, count, dtype) in enumerate(calls):
        if target < count:
            bit = _pick_bit(model, dtype, rng) if dtype in _LAYOUT else 0
            return Fault(site, index, target, model, bit, rng.uniform(-1.0, 1.0))
        target -= count
    raise AssertionError("unreachable")


@dataclass
class FaultInjector:
    """Corrupts one element at the fault's site and call, once; records where and what it did."""

    fault: Fault
    calls: dict[str, int] = field(default_factory=dict)
    location: str | None = None  # module path of the op it struck (None until it fires)
    before: float | None = None
    after: float | None = None

    @property
    def fired(self) -> bool:
        return self.location is not None

    def visit(self, site: str, tensor: torch.Tensor, location: str) -> torch.Tensor:
        call = self.calls.get(site, 0)
        self.calls[site] = call + 1
        if site != self.fault.site or call != self.fault.call or self.fired:
            return tensor
        corrupted = tensor.detach().contiguous().clone()
        flat = corrupted.view(-1)
        index = self.fault.element % flat.numel()
        magnitude = float(flat.abs().max()) if flat.numel() else 0.0
        self.before = float(flat[index])
        flat[index] = corrupt_value(flat[index], self.fault, magnitude)
        self.after = float(flat[index])
        self.location = location
        return corrupted


def fault_stream(seed: int, sites: list[str], models: tuple[str, ...], profile: SiteProfile, trials: int):
    """``trials`` faults per site, reproducible from ``seed``: trial t of site s depends on (seed, s, t) only."""
    for site in sites:
        for trial in range(trials):
            rng = random.Random(f"{seed}/{site}/{trial}")
            yield trial, sample_fault(profile, site, rng.choice(models), rng)
