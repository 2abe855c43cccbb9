"""Small IR matchers shared by the rewrite patterns: constants, transposes, single-use values."""

from __future__ import annotations

from xdsl.ir import Operation, SSAValue

from dialects import nn
from dialects.shapes import tensor_shape


def defining_op(value: SSAValue) -> Operation | None:
    """The op that produces ``value`` (None for block arguments)."""
    return value.owner if isinstance(value.owner, Operation) else None


def scalar_constant(value: SSAValue) -> float | None:
    """The number a value holds when it is a splat ``nn.constant`` or ``nn.full``, else None."""
    op = defining_op(value)
    if isinstance(op, nn.ConstantOp):
        splat = op.splat_value()
        return float(splat) if splat is not None else None
    if isinstance(op, nn.FullOp):
        return float(op.value.value.data)
    return None


def has_single_use(value: SSAValue) -> bool:
    return value.has_one_use()


def untransposed_last_two(value: SSAValue) -> SSAValue | None:
    """If ``value`` is ``x`` with its last two dimensions swapped, return ``x``; else None."""
    op = defining_op(value)
    rank = len(tensor_shape(value))
    if isinstance(op, nn.TransposeOp) and op.swapped_dims() == (rank - 2, rank - 1):
        return op.input
    if isinstance(op, nn.PermuteOp):
        dims = [d % rank for d in nn.int_list(op.dims)]
        if dims == [*range(rank - 2), rank - 1, rank - 2]:
            return op.input
    return None
