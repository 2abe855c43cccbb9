"""The numerics of one ``lower-to-tinycl`` run (formats per tensor class, rounding, overflow) and the builder
that emits the fixed-point replacement of one op."""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter

from dialects import nn, tinycl
from dialects.shapes import element_type, tensor_shape


def default_grad_frac(total: int, frac: int) -> int:
    """Gradients' fractional bits unless ``grad-frac-bits`` says otherwise: 4 more than the data, at most total − 2."""
    return min(total - 2, frac + 4)


@dataclass(frozen=True)
class Numerics:
    """The data format and the rounding/overflow modes of one lowering."""

    total: int
    frac: int
    rounding: str
    overflow: str
    weight_frac: int
    grad_frac: int = -1  # -1: the default gradient format (see ``gradient``)
    prob_frac: int = -1  # -1: total − 2 (see ``probability``)
    score_frac: int = -1  # -1: the data format's (see ``scores``)
    loss_scale: int = 16  # a training step's loss gradient is the mean times this (targets/tinycl/training_lowering.py)

    @property
    def data(self) -> tinycl.FixedType:
        return tinycl.FixedType(self.total, self.frac)

    @property
    def gradient(self) -> tinycl.FixedType:
        """The format of gradients: ``grad-frac-bits`` or, by default, 4 more fractional bits than the data
        (at most total − 2): gradients are small, their range is not."""
        return tinycl.FixedType(self.total, self.grad_frac if self.grad_frac >= 0 else default_grad_frac(self.total, self.frac))

    @property
    def probability(self) -> tinycl.FixedType:
        """The format of softmax outputs: ``prob-frac-bits`` or, by default, ``total − 2`` fractional bits (values
        in [0, 1] need no more integer bits)."""
        return tinycl.FixedType(self.total, self.prob_frac if self.prob_frac >= 0 else self.total - 2)

    @property
    def scores(self) -> tinycl.FixedType:
        """The format of attention scores Q·Kᵀ before the softmax: ``score-frac-bits`` or the data format. Scores
        are sums of d products, so they need more integer bits than the activations they come from."""
        return tinycl.FixedType(self.total, self.score_frac if self.score_frac >= 0 else self.frac)

    def constant(self, value: float) -> tinycl.FixedType:
        """The format of a compile-time constant (a scale, the learning rate, the momentum): ``total`` significant
        bits (one sign bit, one spare), so a small constant such as η/batch gets more bits, not fewer."""
        if value == 0:
            return tinycl.FixedType(self.total, self.total - 2)
        magnitude = math.floor(math.log2(abs(value)))  # 2^magnitude <= |value| < 2^(magnitude + 1)
        if magnitude >= 0:
            return tinycl.FixedType(self.total, max(0, self.total - 3 - magnitude))
        return tinycl.FixedType(min(tinycl.MAX_BITS, self.total - 1 - magnitude), self.total - 2 - magnitude)

    def wide_accumulator(self, depth: int, lhs: tinycl.FixedType, rhs: tinycl.FixedType) -> tinycl.FixedType:
        """An accumulator over ``depth`` products of ``lhs`` and ``rhs`` codes that cannot overflow."""
        width = lhs.total.data + rhs.total.data + math.ceil(math.log2(depth + 1)) + 1
        return tinycl.FixedType(min(tinycl.MAX_BITS, width), lhs.frac.data + rhs.frac.data)

    @property
    def weight(self) -> tinycl.FixedType:
        return tinycl.FixedType(self.total, self.weight_frac)

    def accumulator(self, depth: int, rhs: tinycl.FixedType | None = None) -> tinycl.FixedType:
        """A forward MAC's accumulator over ``depth`` products: wide enough that the sum cannot overflow."""
        width = 2 * self.total + math.ceil(math.log2(depth + 1)) + 1
        return tinycl.FixedType(min(tinycl.MAX_BITS, width), self.frac + (rhs or self.data).frac.data)


def fixed_tensor(value: SSAValue, fmt: tinycl.FixedType) -> TensorType:
    return TensorType(fmt, tensor_shape(value))


PASS_THROUGH = (nn.ReshapeOp, nn.TransposeOp, nn.PermuteOp, nn.BroadcastToOp, nn.SliceOp, nn.SelectOp)


class Builder:
    """Emits the replacement ops of one op, each with its location and a readable name."""

    def __init__(self, op: Operation, numerics: Numerics):
        self.op, self.numerics = op, numerics
        self.ops: list[Operation] = []
        self.prefix = (op.results[0].name_hint if op.results else None) or "t"

    def add(self, new: Operation, suffix: str) -> SSAValue:
        new.location = self.op.location
        new.results[0].name_hint = f"{self.prefix}_{suffix}"
        self.ops.append(new)
        return new.results[0]

    def quantize(self, value: SSAValue, suffix: str, fmt: tinycl.FixedType | None = None) -> SSAValue:
        fmt = fmt or self.numerics.data
        source = value.owner
        if isinstance(source, tinycl.DequantizeOp) and element_type(source.input) == fmt:
            return source.input  # fixed → float → fixed in one format: nothing to do
        n = self.numerics
        return self.add(tinycl.QuantizeOp(value, fixed_tensor(value, fmt), n.rounding, n.overflow), suffix)

    def operand(self, value: SSAValue, suffix: str, default: tinycl.FixedType) -> SSAValue:
        """``value`` as codes: in the format of the fixed-point value it was dequantized from (through data
        movement), a constant's own format, a parameter's weight format, or ``default``."""
        source = value.owner
        while isinstance(source, PASS_THROUGH) or (isinstance(source, nn.PadOp) and source.value.value.data == 0.0):
            source = source.operands[0].owner
        if isinstance(source, tinycl.DequantizeOp):
            fmt = element_type(source.input)
            assert isinstance(fmt, tinycl.FixedType)
        elif isinstance(source, nn.FullOp):
            fmt = self.numerics.constant(source.value.value.data)
        elif isinstance(source, nn.ParamOp):
            fmt = self.numerics.weight
        else:
            fmt = default
        return self.quantize(value, suffix, fmt)

    def requant(self, value: SSAValue, suffix: str, fmt: tinycl.FixedType | None = None) -> SSAValue:
        n = self.numerics
        return self.add(tinycl.RequantOp(value, fixed_tensor(value, fmt or n.data), n.rounding, n.overflow), suffix)

    def mac(self, lhs: SSAValue, rhs: SSAValue, bias: SSAValue | None, depth: int, suffix: str) -> SSAValue:
        shape = tinycl.mac_result_shape("forward", tensor_shape(lhs), tensor_shape(rhs))
        lhs_format, rhs_format = element_type(lhs), element_type(rhs)
        assert isinstance(lhs_format, tinycl.FixedType) and isinstance(rhs_format, tinycl.FixedType)
        result = TensorType(self.numerics.wide_accumulator(depth, lhs_format, rhs_format), shape)
        return self.add(tinycl.MacOp("forward", lhs, rhs, bias, result), suffix)

    def transpose(self, value: SSAValue, suffix: str) -> SSAValue:
        rank = len(tensor_shape(value))
        return self.add(nn.TransposeOp(value, rank - 2, rank - 1), suffix)

    def finish(self, rewriter: PatternRewriter, fixed: SSAValue, *more: SSAValue) -> None:
        """Replace the op by the ops built, its results (in order) by the dequantized ``fixed, *more``."""
        outs = []
        for result, value in zip(self.op.results, (fixed, *more)):
            out = tinycl.DequantizeOp(value, result.type)
            out.location = self.op.location
            outs.append(out)
        self.ops.extend(outs)
        rewriter.replace(self.op, self.ops, [out.result for out in outs])
        for out, result in zip(outs, self.op.results):
            out.result.name_hint = result.name_hint or self.prefix
