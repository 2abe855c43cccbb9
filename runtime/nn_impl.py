"""Torch implementations of the ``nn`` dialect for the reference executor.

Every implementation is a plain torch call on torch tensors, so autograd flows through a whole program.
Dropout runs as the identity: the executor models inference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls

from dialects import nn
from dialects.shapes import int_list, tensor_shape
from runtime.dtypes import torch_dtype

_UNARY: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    nn.NegOp: torch.neg,
    nn.ExpOp: torch.exp,
    nn.SqrtOp: torch.sqrt,
    nn.RsqrtOp: torch.rsqrt,
    nn.TanhOp: torch.tanh,
    nn.SigmoidOp: torch.sigmoid,
    nn.ReluOp: torch.relu,
    nn.SiluOp: F.silu,
    nn.CosOp: torch.cos,
    nn.SinOp: torch.sin,
    nn.LogicalNotOp: torch.logical_not,
    nn.AbsOp: torch.abs,
    nn.SignOp: torch.sign,
    nn.LogOp: torch.log,
    nn.CeilOp: torch.ceil,
    nn.FloorOp: torch.floor,
    nn.ErfOp: torch.erf,
}

_BINARY: dict[type, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    nn.AddOp: torch.add,
    nn.SubOp: torch.sub,
    nn.MulOp: torch.mul,
    nn.DivOp: torch.div,
    nn.PowOp: torch.pow,
    nn.MaximumOp: torch.maximum,
    nn.MinimumOp: torch.minimum,
    nn.LogicalAndOp: torch.logical_and,
    nn.EqOp: torch.eq,
    nn.NeOp: torch.ne,
    nn.GeOp: torch.ge,
    nn.GtOp: torch.gt,
    nn.LeOp: torch.le,
    nn.LtOp: torch.lt,
}


def _as_result(op, value: torch.Tensor) -> torch.Tensor:
    """Casts a result to the op's declared element type when torch's promotion picked another."""
    dtype = torch_dtype(op.results[0].type)
    return value if value.dtype == dtype else value.to(dtype)


@register_impls
class NnFunctions(InterpreterFunctions):
    """``nn`` op implementations; parameters are looked up by name in ``weights``."""

    def __init__(self, weights: dict[str, torch.Tensor]):
        self.weights = weights

    @impl(nn.ParamOp)
    def run_param(self, interpreter: Interpreter, op: nn.ParamOp, args):
        try:
            return (self.weights[op.key],)
        except KeyError:
            raise KeyError(f"parameter '{op.key}' is not in the weights file") from None

    @impl(nn.ConstantOp)
    def run_constant(self, interpreter: Interpreter, op: nn.ConstantOp, args):
        dtype = torch_dtype(op.result.type)
        return (torch.tensor(op.value.get_values(), dtype=dtype).reshape(tensor_shape(op.result)),)

    @impl(nn.FullOp)
    def run_full(self, interpreter: Interpreter, op: nn.FullOp, args):
        return (torch.full(tensor_shape(op.result), op.value.value.data, dtype=torch_dtype(op.result.type)),)

    @impl(nn.ArangeOp)
    def run_arange(self, interpreter: Interpreter, op: nn.ArangeOp, args):
        start, end, step = (a.value.data for a in (op.start, op.end, op.step))
        dtype = torch_dtype(op.result.type)
        if not dtype.is_floating_point:
            start, end, step = int(start), int(end), int(step)
        return (torch.arange(start, end, step, dtype=dtype),)

    # Element-wise ops: one method each (so an op's implementation can be found by its name).
    @impl(nn.NegOp)
    def run_neg(self, interpreter: Interpreter, op: nn.NegOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.ExpOp)
    def run_exp(self, interpreter: Interpreter, op: nn.ExpOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.SqrtOp)
    def run_sqrt(self, interpreter: Interpreter, op: nn.SqrtOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.RsqrtOp)
    def run_rsqrt(self, interpreter: Interpreter, op: nn.RsqrtOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.TanhOp)
    def run_tanh(self, interpreter: Interpreter, op: nn.TanhOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.SigmoidOp)
    def run_sigmoid(self, interpreter: Interpreter, op: nn.SigmoidOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.ReluOp)
    def run_relu(self, interpreter: Interpreter, op: nn.ReluOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.SiluOp)
    def run_silu(self, interpreter: Interpreter, op: nn.SiluOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.CosOp)
    def run_cos(self, interpreter: Interpreter, op: nn.CosOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.SinOp)
    def run_sin(self, interpreter: Interpreter, op: nn.SinOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.LogicalNotOp)
    def run_logical_not(self, interpreter: Interpreter, op: nn.LogicalNotOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.AddOp)
    def run_add(self, interpreter: Interpreter, op: nn.AddOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.SubOp)
    def run_sub(self, interpreter: Interpreter, op: nn.SubOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.MulOp)
    def run_mul(self, interpreter: Interpreter, op: nn.MulOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.DivOp)
    def run_div(self, interpreter: Interpreter, op: nn.DivOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.PowOp)
    def run_pow(self, interpreter: Interpreter, op: nn.PowOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.MaximumOp)
    def run_maximum(self, interpreter: Interpreter, op: nn.MaximumOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.MinimumOp)
    def run_minimum(self, interpreter: Interpreter, op: nn.MinimumOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.LogicalAndOp)
    def run_logical_and(self, interpreter: Interpreter, op: nn.LogicalAndOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.EqOp)
    def run_eq(self, interpreter: Interpreter, op: nn.EqOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.NeOp)
    def run_ne(self, interpreter: Interpreter, op: nn.NeOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.GeOp)
    def run_ge(self, interpreter: Interpreter, op: nn.GeOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.GtOp)
    def run_gt(self, interpreter: Interpreter, op: nn.GtOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.LeOp)
    def run_le(self, interpreter: Interpreter, op: nn.LeOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.LtOp)
    def run_lt(self, interpreter: Interpreter, op: nn.LtOp, args):
        return (_as_result(op, _BINARY[type(op)](args[0], args[1])),)

    @impl(nn.GeluOp)
    def run_gelu(self, interpreter: Interpreter, op: nn.GeluOp, args):
        return (F.gelu(args[0], approximate=op.approximate.data),)

    @impl(nn.DropoutOp)
    def run_dropout(self, interpreter: Interpreter, op: nn.DropoutOp, args):
        return (args[0],)

    @impl(nn.ClampOp)
    def run_clamp(self, interpreter: Interpreter, op: nn.ClampOp, args):
        low = op.min.value.data if op.min is not None else None
        high = op.max.value.data if op.max is not None else None
        if not args[0].is_floating_point():  # float bounds would promote an integer tensor to float
            low, high = (None if b is None else int(b) for b in (low, high))
        return (torch.clamp(args[0], low, high),)

    @impl(nn.CastOp)
    def run_cast(self, interpreter: Interpreter, op: nn.CastOp, args):
        return (args[0].to(torch_dtype(op.result.type)),)

    @impl(nn.WhereOp)
    def run_where(self, interpreter: Interpreter, op: nn.WhereOp, args):
        return (_as_result(op, torch.where(args[0], args[1], args[2])),)

    @impl(nn.MatmulOp)
    def run_matmul(self, interpreter: Interpreter, op: nn.MatmulOp, args):
        return (torch.matmul(args[0], args[1]),)

    @impl(nn.LinearOp)
    def run_linear(self, interpreter: Interpreter, op: nn.LinearOp, args):
        return (F.linear(args[0], args[1], args[2] if len(args) > 2 else None),)

    @impl(nn.EmbeddingOp)
    def run_embedding(self, interpreter: Interpreter, op: nn.EmbeddingOp, args):
        return (F.embedding(args[1], args[0]),)

    @impl(nn.SoftmaxOp)
    def run_softmax(self, interpreter: Interpreter, op: nn.SoftmaxOp, args):
        return (torch.softmax(args[0], dim=op.dim.value.data),)

    @impl(nn.LayerNormOp)
    def run_layer_norm(self, interpreter: Interpreter, op: nn.LayerNormOp, args):
        weight, bias = (args[1], args[2]) if len(args) == 3 else (None, None)
        return (F.layer_norm(args[0], int_list(op.normalized_shape), weight, bias, op.eps.value.data),)

    @impl(nn.SdpaOp)
    def run_sdpa(self, interpreter: Interpreter, op: nn.SdpaOp, args):
        mask = args[3] if len(args) > 3 else None
        scale = op.scale.value.data if op.scale is not None else None
        q, k, v = args[:3]
        return (
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=bool(op.causal.value.data), scale=scale),
        )

    @impl(nn.ReshapeOp)
    def run_reshape(self, interpreter: Interpreter, op: nn.ReshapeOp, args):
        return (args[0].reshape(tensor_shape(op.result)),)

    @impl(nn.TransposeOp)
    def run_transpose(self, interpreter: Interpreter, op: nn.TransposeOp, args):
        return (args[0].transpose(op.dim0.value.data, op.dim1.value.data),)

    @impl(nn.PermuteOp)
    def run_permute(self, interpreter: Interpreter, op: nn.PermuteOp, args):
        return (args[0].permute(int_list(op.dims)),)

    @impl(nn.BroadcastToOp)
    def run_broadcast_to(self, interpreter: Interpreter, op: nn.BroadcastToOp, args):
        return (args[0].expand(tensor_shape(op.result)),)

    @impl(nn.SliceOp)
    def run_slice(self, interpreter: Interpreter, op: nn.SliceOp, args):
        dim = op.dim.value.data
        index = [slice(None)] * args[0].dim()
        index[dim] = slice(op.start.value.data, op.end.value.data, op.step.value.data)
        return (args[0][tuple(index)],)

    @impl(nn.SelectOp)
    def run_select(self, interpreter: Interpreter, op: nn.SelectOp, args):
        return (args[0].select(op.dim.value.data, op.index.value.data),)

    @impl(nn.ConcatOp)
    def run_concat(self, interpreter: Interpreter, op: nn.ConcatOp, args):
        return (torch.cat(list(args), dim=op.dim.value.data),)

    @impl(nn.GatherOp)
    def run_gather(self, interpreter: Interpreter, op: nn.GatherOp, args):
        return (torch.gather(args[0], op.dim.value.data, args[1]),)

    @impl(nn.IndexOp)
    def run_index(self, interpreter: Interpreter, op: nn.IndexOp, args):
        index: list = [None] * (max(int_list(op.dims)) + 1)
        for dim, tensor in zip(int_list(op.dims), args[1:]):
            index[dim] = tensor
        return (torch.ops.aten.index.Tensor(args[0], index),)

    @impl(nn.ReduceSumOp)
    def run_reduce_sum(self, interpreter: Interpreter, op: nn.ReduceSumOp, args):
        return (_as_result(op, torch.sum(args[0], dim=op.reduced_dims(), keepdim=bool(op.keepdim.value.data))),)

    @impl(nn.ReduceMeanOp)
    def run_reduce_mean(self, interpreter: Interpreter, op: nn.ReduceMeanOp, args):
        return (torch.mean(args[0], dim=op.reduced_dims(), keepdim=bool(op.keepdim.value.data)),)

    @impl(nn.VectorNormOp)
    def run_vector_norm(self, interpreter: Interpreter, op: nn.VectorNormOp, args):
        return (
            torch.linalg.vector_norm(args[0], op.ord.value.data, dim=op.reduced_dims(), keepdim=bool(op.keepdim.value.data)),
        )

    @impl(nn.CumsumOp)
    def run_cumsum(self, interpreter: Interpreter, op: nn.CumsumOp, args):
        return (_as_result(op, torch.cumsum(args[0], dim=op.dim.value.data)),)

    # -- model-zoo ops ------------------------------------------------------------------------------------

    @impl(nn.AbsOp)
    def run_abs(self, interpreter: Interpreter, op: nn.AbsOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.SignOp)
    def run_sign(self, interpreter: Interpreter, op: nn.SignOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.LogOp)
    def run_log(self, interpreter: Interpreter, op: nn.LogOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.CeilOp)
    def run_ceil(self, interpreter: Interpreter, op: nn.CeilOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.FloorOp)
    def run_floor(self, interpreter: Interpreter, op: nn.FloorOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.ErfOp)
    def run_erf(self, interpreter: Interpreter, op: nn.ErfOp, args):
        return (_UNARY[type(op)](args[0]),)

    @impl(nn.ConvOp)
    def run_conv(self, interpreter: Interpreter, op: nn.ConvOp, args):
        conv = (F.conv1d, F.conv2d, F.conv3d)[op.spatial_rank - 1]
        bias = args[2] if len(args) > 2 else None
        return (
            conv(
                args[0], args[1], bias,
                stride=int_list(op.stride), padding=int_list(op.padding), dilation=int_list(op.dilation),
                groups=op.groups.value.data,
            ),
        )

    @impl(nn.PadOp)
    def run_pad(self, interpreter: Interpreter, op: nn.PadOp, args):
        return (F.pad(args[0], int_list(op.pads), value=op.value.value.data),)

    @impl(nn.RepeatOp)
    def run_repeat(self, interpreter: Interpreter, op: nn.RepeatOp, args):
        return (args[0].repeat(int_list(op.repeats)),)

    @impl(nn.RepeatInterleaveOp)
    def run_repeat_interleave(self, interpreter: Interpreter, op: nn.RepeatInterleaveOp, args):
        return (torch.repeat_interleave(args[0], op.repeats.value.data, dim=op.dim.value.data),)

