"""Shape and element-type helpers shared by the verifiers of every attnc dialect (nn, attn, xbar)."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import AnyFloat, DenseArrayBase, IntegerType, TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import IRDLOperation
from xdsl.utils.exceptions import VerifyException


def tensor_shape(value: SSAValue | Attribute) -> tuple[int, ...]:
    """The static shape of a tensor-typed value or type."""
    typ = value.type if isinstance(value, SSAValue) else value
    assert isinstance(typ, TensorType)
    return tuple(typ.get_shape())


def element_type(value: SSAValue | Attribute) -> Attribute:
    typ = value.type if isinstance(value, SSAValue) else value
    assert isinstance(typ, TensorType)
    return typ.get_element_type()


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def broadcast_shapes(lhs: Sequence[int], rhs: Sequence[int]) -> tuple[int, ...] | None:
    """NumPy/PyTorch broadcasting of two static shapes, or None when they do not broadcast."""
    out: list[int] = []
    for i in range(1, max(len(lhs), len(rhs)) + 1):
        a = lhs[-i] if i <= len(lhs) else 1
        b = rhs[-i] if i <= len(rhs) else 1
        if a != b and 1 not in (a, b):
            return None
        out.append(b if a == 1 else a)
    return tuple(reversed(out))


def normalize_dim(dim: int, rank: int, what: str, scalar_ok: bool = True) -> int:
    """Turns a possibly negative dimension into an index in [0, rank), or raises a verifier error.

    Like PyTorch, a rank-0 tensor accepts dim 0 and -1 unless ``scalar_ok`` is False (ops that index a
    dimension, such as slice, select and concat, need one)."""
    bound = max(rank, 1) if scalar_ok else rank
    if not -bound <= dim < bound:
        raise VerifyException(f"{what} {dim} is out of range for a rank-{rank} tensor")
    return dim % bound


def is_bool(typ: Attribute) -> bool:
    return isinstance(typ, IntegerType) and typ.width.data == 1


def is_float(typ: Attribute) -> bool:
    return isinstance(typ, AnyFloat)


def is_integer(typ: Attribute) -> bool:
    return isinstance(typ, IntegerType) and typ.width.data > 1


def int_list(attr: DenseArrayBase[IntegerType]) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())


def expect_result_shape(op: IRDLOperation, expected: Sequence[int], why: str = "") -> None:
    got = tensor_shape(op.results[0])
    if tuple(got) != tuple(expected):
        suffix = f" ({why})" if why else ""
        raise VerifyException(
            f"result shape {fmt_shape(got)} does not match the expected {fmt_shape(expected)}{suffix}"
        )


def expect_same_element_type(op: IRDLOperation, *values: SSAValue) -> None:
    result_type = element_type(op.results[0])
    for value in values:
        if element_type(value) != result_type:
            raise VerifyException(
                f"element type {element_type(value)} of an operand does not match the result's {result_type}"
            )


def matmul_shape(lhs: Sequence[int], rhs: Sequence[int]) -> tuple[int, ...]:
    """Result shape of ``torch.matmul`` for operands of rank >= 2, or a verifier error."""
    if len(lhs) < 2 or len(rhs) < 2:
        raise VerifyException(f"matmul operands must have rank >= 2, got {fmt_shape(lhs)} and {fmt_shape(rhs)}")
    if lhs[-1] != rhs[-2]:
        raise VerifyException(
            f"matmul contraction mismatch: {fmt_shape(lhs)} has inner size {lhs[-1]}, "
            f"{fmt_shape(rhs)} has {rhs[-2]}"
        )
    batch = broadcast_shapes(lhs[:-2], rhs[:-2])
    if batch is None:
        raise VerifyException(f"matmul batch dimensions of {fmt_shape(lhs)} and {fmt_shape(rhs)} do not broadcast")
    return (*batch, lhs[-2], rhs[-1])
