"""Per-tensor fixed-point formats chosen from calibration data (``lower-to-tinycl{formats=calibrated}``).

A deployed fixed-point accelerator does not give every tensor one format: each quantisation point gets the
fractional bits its values need. The rule here: at ``total`` bits, a point whose calibrated largest magnitude
is ``m`` gets the most fractional bits ``f`` such that ``m · headroom`` is still representable, i.e.
``(2^(total−1) − 1) · 2^−f >= m · headroom``, with ``0 <= f <= cap`` (``cap`` is ``total − 1``, or ``total − 2``
where 1.0 must be representable: unit vectors). Parameters (a linear's weight, a layer norm's γ and β) are
known exactly at compile time, so they get no headroom.

The calibration step (fitting/tinycl_formats.py) runs the float program on the calibration inputs and records
``m`` for every point on the op it belongs to, as the ``tinycl.max_abs`` dictionary; the lowering reads it.
"""

from __future__ import annotations

from xdsl.dialects.builtin import DictionaryAttr, FloatAttr
from xdsl.ir import Operation

from dialects import attn, nn

MAX_ABS_ATTRIBUTE = "tinycl.max_abs"  # on an nn/attn op: quantisation point → calibrated max |x|
PENDING_ATTRIBUTE = "tinycl.pending_formats"  # on the module: the lowering waits for calibration (its options)
FORMAT_MODES = ("uniform", "calibrated")
DEFAULT_HEADROOM = 1.25
PARAMETER_POINTS = ("weight", "bias")  # exact at compile time: no headroom

# The quantisation points of each lowered op. Operands and the result are recorded as the float program
# computes them; "scores" is Q·Kᵀ (before the softmax scale), "state" is N(K)ᵀ·V and "out" is N(Q)·(N(K)ᵀV)
# before cosine attention's head scale.
POINTS: dict[type[Operation], tuple[str, ...]] = {
    nn.LinearOp: ("input", "weight", "result"),
    nn.MatmulOp: ("lhs", "rhs", "result"),
    attn.SdpaOp: ("query", "key", "value", "scores", "result"),
    attn.CosineOp: ("query", "key", "value", "state", "out"),
    nn.LayerNormOp: ("input", "weight", "bias", "result"),
    nn.GeluOp: ("input", "result"),
    nn.ReluOp: ("input", "result"),
}


def calibrated_frac(max_abs: float, total: int, headroom: float, cap: int) -> int:
    """The most fractional bits (at most ``cap``) at which ``max_abs · headroom`` fits ``total`` bits; 0 when
    even the integer format cannot hold it (the values then saturate)."""
    largest = (1 << (total - 1)) - 1
    needed = max_abs * headroom
    frac = cap
    while frac > 0 and largest * 2.0**-frac < needed:
        frac -= 1
    return frac


def recorded_ranges(op: Operation) -> dict[str, float] | None:
    """The calibrated max |x| of each point of ``op``, or None when it has none (or not all of them)."""
    ranges = op.attributes.get(MAX_ABS_ATTRIBUTE)
    if not isinstance(ranges, DictionaryAttr):
        return None
    values = {k: float(v.value.data) for k, v in ranges.data.items() if isinstance(v, FloatAttr)}
    points = POINTS.get(type(op), ())
    return values if all(point in values for point in points if _present(op, point)) else None


def _present(op: Operation, point: str) -> bool:
    """Whether ``op`` has this point (a linear without bias has no bias)."""
    return point not in PARAMETER_POINTS or getattr(op, point, None) is not None


def ranges_attribute(ranges: dict[str, float]) -> DictionaryAttr:
    return DictionaryAttr({name: FloatAttr(value, 64) for name, value in sorted(ranges.items())})
