"""Mapping between IR element types and torch dtypes, shared by the frontend and the runtime."""

from __future__ import annotations

import torch
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    TensorType,
    bf16,
    f16,
    f32,
    f64,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute

_TORCH_TO_IR: dict[torch.dtype, Attribute] = {
    torch.float32: f32,
    torch.float64: f64,
    torch.float16: f16,
    torch.bfloat16: bf16,
    torch.int64: i64,
    torch.int32: i32,
    torch.bool: i1,
}


def ir_element_type(dtype: torch.dtype) -> Attribute:
    """The IR element type for a torch dtype; raises ValueError for dtypes the IR does not model."""
    try:
        return _TORCH_TO_IR[dtype]
    except KeyError:
        raise ValueError(f"dtype {dtype} is not supported (supported: {', '.join(map(str, _TORCH_TO_IR))})")


def torch_dtype(element_type: Attribute) -> torch.dtype:
    """The torch dtype for an IR element type (or a tensor type)."""
    if isinstance(element_type, TensorType):
        element_type = element_type.get_element_type()
    if isinstance(element_type, Float32Type):
        return torch.float32
    if isinstance(element_type, Float64Type):
        return torch.float64
    if isinstance(element_type, Float16Type):
        return torch.float16
    if isinstance(element_type, BFloat16Type):
        return torch.bfloat16
    if isinstance(element_type, IntegerType):
        return {1: torch.bool, 32: torch.int32, 64: torch.int64}[element_type.width.data]
    raise ValueError(f"element type {element_type} has no torch dtype")


def tensor_type(shape, dtype: torch.dtype) -> TensorType:
    """The IR tensor type for a static shape and a torch dtype."""
    return TensorType(ir_element_type(dtype), [int(d) for d in shape])
