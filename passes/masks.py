"""What an attention mask means, read from the IR: keep-masks, their ``and`` terms, constants, the causal triangle.

Shared by ``attn-raise`` (a constant causal triangle becomes ``causal = true``) and ``attn-cosine`` (a mask
must split into key padding and, at most, the causal triangle). The importer folds masks built only from
positions into ``nn.constant``, so the causal part of a Hugging Face mask is a constant here, and what depends
on the inputs (``attention_mask``) is a separate ``and`` term.
"""

from __future__ import annotations

import math

from xdsl.dialects.builtin import DenseIntOrFPElementsAttr
from xdsl.ir import SSAValue

from dialects import nn
from dialects.shapes import element_type, is_bool, tensor_shape
from passes.matchers import defining_op, scalar_constant

# A fill value at or below this counts as "masked out" when a masked_fill/where is read as a keep-mask.
MASKED_OUT_BELOW = -1.0e4


def keep_mask_of(mask: SSAValue) -> SSAValue | None:
    """The boolean keep-mask an attention mask encodes: an i1 mask itself, or ``c`` of ``where(c, 0, -big)``.

    None when the mask is an arbitrary additive bias.
    """
    if is_bool(element_type(mask)):
        return mask
    producer = defining_op(mask)
    if isinstance(producer, nn.WhereOp) and is_bool(element_type(producer.condition)):
        keep_value, drop_value = scalar_constant(producer.lhs), scalar_constant(producer.rhs)
        if keep_value == 0.0 and drop_value is not None and drop_value <= MASKED_OUT_BELOW:
            return producer.condition
    return None


def and_terms(keep: SSAValue) -> list[SSAValue]:
    """The operands of a tree of ``nn.logical_and`` (a single term when ``keep`` is not an ``and``)."""
    producer = defining_op(keep)
    if isinstance(producer, nn.LogicalAndOp):
        return [*and_terms(producer.lhs), *and_terms(producer.rhs)]
    return [keep]


def constant_bools(value: SSAValue) -> tuple[tuple[int, ...], list[bool]] | None:
    """Shape and row-major values of an i1 ``nn.constant``/``nn.full`` (None for anything else)."""
    if not is_bool(element_type(value)):
        return None
    producer = defining_op(value)
    shape = tensor_shape(value)
    count = math.prod(shape)
    if isinstance(producer, nn.FullOp):
        return shape, [bool(producer.value.value.data)] * count
    if isinstance(producer, nn.ConstantOp) and isinstance(producer.value, DenseIntOrFPElementsAttr):
        values = [bool(v) for v in producer.value.get_values()]
        return shape, values * count if len(values) == 1 and count != 1 else values
    return None


def is_all_true(value: SSAValue) -> bool:
    constant = constant_bools(value)
    return constant is not None and all(constant[1])


def is_causal_triangle(value: SSAValue) -> bool:
    """True when ``value`` is a constant i1 mask whose every (queries, keys) slice is the lower triangle.

    Square slices only: that is where PyTorch's top-left ``is_causal`` and a decoder's own triangle agree.
    """
    constant = constant_bools(value)
    if constant is None:
        return False
    shape, values = constant
    if len(shape) < 2 or shape[-1] != shape[-2] or shape[-1] < 1:
        return False
    length = shape[-1]
    triangle = [key <= query for query in range(length) for key in range(length)]
    block = length * length
    return all(values[start : start + block] == triangle for start in range(0, len(values), block))


def is_key_padding(term: SSAValue) -> bool:
    """A keep term that varies along keys only: rank ≥ 2 with size 1 on the query dimension."""
    shape = tensor_shape(term)
    return len(shape) >= 2 and shape[-2] == 1
