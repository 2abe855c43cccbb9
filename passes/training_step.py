"""``training-step``: turns a forward program into one SGD training step (forward, backward, update) as IR.

``@main(inputs...) -> (logits, ...)`` becomes ``@main(inputs..., labels) -> (loss, p'_1, ..., p'_n, v'_1, ...)``:
the mean cross-entropy of the first result against the new ``labels`` argument, its reverse-mode gradient
on every float ``nn.param`` the loss depends on, and one ``grad.sgd`` per parameter. With ``momentum`` > 0
each parameter gets a velocity, an ``nn.param @<name>.momentum`` created at zero (``init = 0.0``), and the
step returns it updated. The module attribute ``attnc.updates`` names, in result order after the loss,
the weight each result replaces, so a driver writes them back and runs the next step.

The backward program uses ``nn`` ops where one exists (a linear's input and weight gradients are two
``nn.matmul``s, a broadcast's backward an ``nn.reduce_sum``) and ``grad`` ops for the rest (softmax,
layer norm, GELU/ReLU, embedding, cosine attention, the loss). ``attn.sdpa`` is differentiated through its
parts: the probabilities are recomputed with ``attn.softmax`` and the four GEMMs are ``nn.matmul``s.
Every GEMM the pass writes carries ``phase`` (``forward`` for a recomputation, ``input-gradient`` for the
gradient of an activation, ``weight-gradient`` for ``dW = dyᵀ x``): a target with a reconfigurable MAC array
(``lower-to-tinycl``) runs each in its mode.

Options: ``lr`` (> 0, default 0.05), ``momentum`` (in [0, 1), default 0), ``frozen`` (a regular expression:
parameters whose whole name matches are constants, e.g. a model's buffers). An op with no backward rule on
the path from a parameter to the loss is a pass failure naming the op and its module path.

```mlir
// before
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x3xf32> {
  %w = nn.param @fc.weight : tensor<3x8xf32>
  %y = nn.linear %x, %w : (tensor<4x8xf32>, tensor<3x8xf32>) -> tensor<4x3xf32>
  func.return %y : tensor<4x3xf32>
}
// after (training-step{lr=0.1})
func.func @main(%x: tensor<4x8xf32>, %labels: tensor<4xi64>) -> (tensor<f32>, tensor<3x8xf32>) {
  ...
  %loss = grad.cross_entropy %y, %labels : (tensor<4x3xf32>, tensor<4xi64>) -> tensor<f32>
  %dy = grad.cross_entropy_backward %y, %labels : (tensor<4x3xf32>, tensor<4xi64>) -> tensor<4x3xf32>
  %dyt = nn.transpose %dy {dim0 = 0 : i64, dim1 = 1 : i64} : (tensor<4x3xf32>) -> tensor<3x4xf32>
  %dw = nn.matmul %dyt, %x : (tensor<3x4xf32>, tensor<4x8xf32>) -> tensor<3x8xf32>
  %w1 = grad.sgd %w, %dw {lr = 0.1 : f64, momentum = 0.0 : f64} : (...) -> tensor<3x8xf32>
  func.return %loss, %w1 : tensor<f32>, tensor<3x8xf32>
}
```
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, FunctionType, ModuleOp, StringAttr, TensorType, i64
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass

from dialects import attn, grad, nn
from dialects.diagnostics import pass_failure
from dialects.shapes import element_type, int_list, is_float, normalize_dim, tensor_shape

UPDATES_ATTRIBUTE = "attnc.updates"
MOMENTUM_SUFFIX = ".momentum"
LABELS_NAME = "labels"
PASS_NAME = "training-step"
PHASE_ATTRIBUTE = "phase"  # on each GEMM of the backward program: which phase of the MAC array computes it
FORWARD, INPUT_GRADIENT, WEIGHT_GRADIENT = "forward", "input-gradient", "weight-gradient"


def _tensor(shape: Sequence[int], element: Attribute) -> TensorType:
    return TensorType(element, list(shape))


class Backward:
    """Emits the backward program of one function before its return, one vector-Jacobian product per op."""

    def __init__(self, function: func.FuncOp, anchor: Operation):
        self.function = function
        self.anchor = anchor
        self.grads: dict[SSAValue, SSAValue] = {}

    # -- emission helpers ---------------------------------------------------------------------------------

    def emit(self, op: Operation, like: Operation | None = None) -> Operation:
        """Inserts ``op`` before the return, at the location (module path) of the forward op it differentiates."""
        if like is not None:
            op.location = like.location
        assert self.anchor.parent is not None
        self.anchor.parent.insert_op_before(op, self.anchor)
        return op

    def value(self, op: Operation, like: Operation | None) -> SSAValue:
        return self.emit(op, like).results[0]

    def scalar(self, value: float, element: Attribute, like: Operation | None) -> SSAValue:
        return self.value(nn.FullOp(value, _tensor([], element)), like)

    def accumulate(self, target: SSAValue, gradient: SSAValue, like: Operation | None) -> None:
        """Adds ``gradient`` (already of ``target``'s shape) to what ``target`` has gathered so far."""
        if target in self.grads:
            gradient = self.value(nn.AddOp(self.grads[target], gradient, target.type), like)
        self.grads[target] = gradient

    def reduce_to(self, gradient: SSAValue, shape: Sequence[int], like: Operation | None) -> SSAValue:
        """Sums a broadcast gradient back to ``shape`` (NumPy broadcasting, reversed)."""
        have = tensor_shape(gradient)
        if have == tuple(shape):
            return gradient
        lead = len(have) - len(shape)
        dims = [*range(lead), *(lead + i for i, s in enumerate(shape) if s == 1 and have[lead + i] != 1)]
        kept = [1 if i in dims else s for i, s in enumerate(have)]
        summed = self.value(nn.ReduceSumOp(gradient, dims, True, _tensor(kept, element_type(gradient))), like)
        if tuple(kept) == tuple(shape):
            return summed
        return self.value(nn.ReshapeOp(summed, _tensor(shape, element_type(gradient))), like)

    def transpose_last(self, value: SSAValue, like: Operation | None) -> SSAValue:
        rank = len(tensor_shape(value))
        return self.value(nn.TransposeOp(value, rank - 2, rank - 1), like)

    def matmul(self, lhs: SSAValue, rhs: SSAValue, like: Operation | None, phase: str = INPUT_GRADIENT) -> SSAValue:
        """A GEMM of the step, marked with its phase (``forward``, ``input-gradient``, ``weight-gradient``)."""
        a, b = tensor_shape(lhs), tensor_shape(rhs)
        batch = _broadcast(a[:-2], b[:-2])
        gemm = nn.MatmulOp(lhs, rhs, _tensor([*batch, a[-2], b[-1]], element_type(lhs)))
        gemm.attributes[PHASE_ATTRIBUTE] = StringAttr(phase)
        return self.value(gemm, like)

    def flatten_rows(self, value: SSAValue, like: Operation | None) -> SSAValue:
        shape = tensor_shape(value)
        rows = 1
        for s in shape[:-1]:
            rows *= s
        if len(shape) == 2:
            return value
        return self.value(nn.ReshapeOp(value, _tensor([rows, shape[-1]], element_type(value))), like)

    def binary(self, cls: type[nn.BinaryOp], lhs: SSAValue, rhs: SSAValue, like: Operation | None) -> SSAValue:
        shape = _broadcast(tensor_shape(lhs), tensor_shape(rhs))
        return self.value(cls(lhs, rhs, _tensor(shape, element_type(lhs))), like)

    # -- the rules ----------------------------------------------------------------------------------------

    def differentiate(self, op: Operation, needs: set[SSAValue]) -> None:
        """Adds the gradients of ``op``'s operands that need one, from the gradient of its result."""
        if not op.results or op.results[0] not in self.grads:
            return
        wanted = [operand in needs for operand in op.operands]
        if not any(wanted):
            return
        rule = RULES.get(type(op))
        if rule is None:
            raise pass_failure(PASS_NAME, f"{op.name} has no backward rule: it cannot be on the path to the loss", op)
        rule(self, op, self.grads[op.results[0]], wanted)


def _broadcast(lhs: Sequence[int], rhs: Sequence[int]) -> tuple[int, ...]:
    rank = max(len(lhs), len(rhs))
    a, b = [1] * (rank - len(lhs)) + list(lhs), [1] * (rank - len(rhs)) + list(rhs)
    return tuple(max(x, y) for x, y in zip(a, b))


Rule = Callable[[Backward, Operation, SSAValue, list[bool]], None]


def _linear(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.LinearOp)
    if wanted[0]:
        b.accumulate(op.input, b.matmul(dy, op.weight, op), op)  # dx = dy W (input gradient)
    if wanted[1]:
        rows_dy, rows_x = b.flatten_rows(dy, op), b.flatten_rows(op.input, op)
        dw = b.matmul(b.transpose_last(rows_dy, op), rows_x, op, WEIGHT_GRADIENT)  # dW = dyᵀ x
        b.accumulate(op.weight, dw, op)
    if len(wanted) > 2 and wanted[2]:
        assert op.bias is not None
        b.accumulate(op.bias, b.reduce_to(dy, tensor_shape(op.bias), op), op)


def _matmul(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.MatmulOp)
    lhs, rhs = op.lhs, op.rhs
    if len(tensor_shape(lhs)) < 2 or len(tensor_shape(rhs)) < 2:
        raise pass_failure(PASS_NAME, "nn.matmul with a rank-1 operand has no backward rule", op)
    if wanted[0]:
        b.accumulate(lhs, b.reduce_to(b.matmul(dy, b.transpose_last(rhs, op), op), tensor_shape(lhs), op), op)
    if wanted[1]:
        b.accumulate(rhs, b.reduce_to(b.matmul(b.transpose_last(lhs, op), dy, op), tensor_shape(rhs), op), op)


def _add_sub(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    for index, operand in enumerate(op.operands):
        if wanted[index]:
            gradient = dy
            if index == 1 and isinstance(op, nn.SubOp):
                gradient = b.value(nn.NegOp(dy), op)
            b.accumulate(operand, b.reduce_to(gradient, tensor_shape(operand), op), op)


def _mul(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    lhs, rhs = op.operands
    if wanted[0]:
        b.accumulate(lhs, b.reduce_to(b.binary(nn.MulOp, dy, rhs, op), tensor_shape(lhs), op), op)
    if wanted[1]:
        b.accumulate(rhs, b.reduce_to(b.binary(nn.MulOp, dy, lhs, op), tensor_shape(rhs), op), op)


def _div(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    lhs, rhs = op.operands
    quotient = b.binary(nn.DivOp, dy, rhs, op)
    if wanted[0]:
        b.accumulate(lhs, b.reduce_to(quotient, tensor_shape(lhs), op), op)
    if wanted[1]:  # d(a/b)/db = -(a/b)/b
        ratio = b.binary(nn.DivOp, op.results[0], rhs, op)
        product = b.binary(nn.MulOp, dy, ratio, op)
        b.accumulate(rhs, b.reduce_to(b.value(nn.NegOp(product), op), tensor_shape(rhs), op), op)


def _neg(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    b.accumulate(op.operands[0], b.value(nn.NegOp(dy), op), op)


def _identity(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    b.accumulate(op.operands[0], dy, op)


def _exp(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    b.accumulate(op.operands[0], b.binary(nn.MulOp, dy, op.results[0], op), op)


def _tanh(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    y = op.results[0]
    one = b.scalar(1.0, element_type(y), op)
    slope = b.binary(nn.SubOp, one, b.binary(nn.MulOp, y, y, op), op)
    b.accumulate(op.operands[0], b.binary(nn.MulOp, dy, slope, op), op)


def _sigmoid(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    y = op.results[0]
    one = b.scalar(1.0, element_type(y), op)
    slope = b.binary(nn.MulOp, y, b.binary(nn.SubOp, one, y, op), op)
    b.accumulate(op.operands[0], b.binary(nn.MulOp, dy, slope, op), op)


def _pow(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    x, exponent = op.operands
    if wanted[1]:
        raise pass_failure(PASS_NAME, "nn.pow with a trained exponent has no backward rule", op)
    one = b.scalar(1.0, element_type(exponent), op)
    power = b.binary(nn.PowOp, x, b.binary(nn.SubOp, exponent, one, op), op)
    slope = b.binary(nn.MulOp, power, exponent, op)
    b.accumulate(x, b.reduce_to(b.binary(nn.MulOp, dy, slope, op), tensor_shape(x), op), op)


def _rsqrt(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    y = op.results[0]  # d/dx x^-1/2 = -y³/2
    cube = b.binary(nn.MulOp, b.binary(nn.MulOp, y, y, op), y, op)
    slope = b.binary(nn.MulOp, cube, b.scalar(-0.5, element_type(y), op), op)
    b.accumulate(op.operands[0], b.binary(nn.MulOp, dy, slope, op), op)


def _sqrt(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    y = op.results[0]  # d/dx √x = 1/(2y)
    half = b.binary(nn.MulOp, dy, b.scalar(0.5, element_type(y), op), op)
    b.accumulate(op.operands[0], b.binary(nn.DivOp, half, y, op), op)


def _log(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    b.accumulate(op.operands[0], b.binary(nn.DivOp, dy, op.operands[0], op), op)


def _silu(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    x = op.operands[0]  # d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x)))
    s = b.value(nn.SigmoidOp(x), op)
    one = b.scalar(1.0, element_type(x), op)
    inner = b.binary(nn.AddOp, one, b.binary(nn.MulOp, x, b.binary(nn.SubOp, one, s, op), op), op)
    b.accumulate(x, b.binary(nn.MulOp, dy, b.binary(nn.MulOp, s, inner, op), op), op)


def _cast(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    source = op.operands[0]
    assert isinstance(source.type, TensorType)
    b.accumulate(source, b.value(nn.CastOp(dy, source.type), op), op)


def _where(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    condition = op.operands[0]
    zeros = b.value(nn.FullOp(0.0, _tensor(tensor_shape(dy), element_type(dy))), op)
    for index, chosen in ((1, (dy, zeros)), (2, (zeros, dy))):
        if wanted[index]:
            picked = b.value(nn.WhereOp(condition, *chosen, dy.type), op)
            b.accumulate(op.operands[index], b.reduce_to(picked, tensor_shape(op.operands[index]), op), op)


def _gelu(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.GeluOp)
    b.accumulate(op.input, b.value(grad.GeluBackwardOp(op.input, dy, op.approximate.data), op), op)


def _relu(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    b.accumulate(op.operands[0], b.value(grad.ReluBackwardOp(op.operands[0], dy), op), op)


def _softmax(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.SoftmaxOp)
    b.accumulate(op.input, b.value(grad.SoftmaxBackwardOp(op.result, dy, op.dim.value.data), op), op)


def _layer_norm(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.LayerNormOp)
    shape, eps = int_list(op.normalized_shape), op.eps.value.data
    if wanted[0]:
        b.accumulate(op.input, b.value(grad.LayerNormBackwardOp(op.input, dy, op.weight, shape, eps), op), op)
    if op.weight is not None and op.bias is not None:
        if wanted[1]:
            normalized = b.value(nn.LayerNormOp(op.input, None, None, shape, eps), op)
            b.accumulate(op.weight, b.reduce_to(b.binary(nn.MulOp, dy, normalized, op), shape, op), op)
        if wanted[2]:
            b.accumulate(op.bias, b.reduce_to(dy, shape, op), op)


def _reshape(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    b.accumulate(op.operands[0], b.value(nn.ReshapeOp(dy, op.operands[0].type), op), op)


def _transpose(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.TransposeOp)
    b.accumulate(op.input, b.value(nn.TransposeOp(dy, op.dim0.value.data, op.dim1.value.data, op.input.type), op), op)


def _permute(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.PermuteOp)
    dims = int_list(op.dims)
    inverse = [0] * len(dims)
    for position, dim in enumerate(dims):
        inverse[normalize_dim(dim, len(dims), "permute dim")] = position
    b.accumulate(op.input, b.value(nn.PermuteOp(dy, inverse, op.input.type), op), op)


def _broadcast_to(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    b.accumulate(op.operands[0], b.reduce_to(dy, tensor_shape(op.operands[0]), op), op)


def _pad_back(b: Backward, op: Operation, dy: SSAValue, source: SSAValue, dim: int, before: int) -> SSAValue:
    """``dy`` zero-padded along ``dim`` back to ``source``'s shape (``before`` elements in front)."""
    shape, have = tensor_shape(source), tensor_shape(dy)
    rank = len(shape)
    pads: list[int] = []
    for d in reversed(range(dim, rank)):  # F.pad order: last dim first, (before, after) pairs
        pads += [before, shape[d] - have[d] - before] if d == dim else [0, 0]
    return b.value(nn.PadOp(dy, pads, 0.0, source.type), op)


def _slice(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.SliceOp)
    shape = tensor_shape(op.input)
    dim = normalize_dim(op.dim.value.data, len(shape), "slice dim")
    if op.step.value.data != 1:
        raise pass_failure(PASS_NAME, "nn.slice with a step other than 1 has no backward rule", op)
    start = op.start.value.data
    start = max(0, start + shape[dim] if start < 0 else start)
    b.accumulate(op.input, _pad_back(b, op, dy, op.input, dim, min(start, shape[dim])), op)


def _select(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.SelectOp)
    shape = tensor_shape(op.input)
    dim = normalize_dim(op.dim.value.data, len(shape), "select dim")
    index = op.index.value.data % shape[dim]
    kept = [*shape[:dim], 1, *shape[dim + 1 :]]
    expanded = b.value(nn.ReshapeOp(dy, _tensor(kept, element_type(dy))), op)
    b.accumulate(op.input, _pad_back(b, op, expanded, op.input, dim, index), op)


def _concat(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.ConcatOp)
    dim = normalize_dim(op.dim.value.data, len(tensor_shape(dy)), "concat dim")
    start = 0
    for operand, want in zip(op.operands, wanted):
        size = tensor_shape(operand)[dim]
        if want:
            b.accumulate(operand, b.value(nn.SliceOp(dy, dim, start, start + size, 1, operand.type), op), op)
        start += size


def _reduce(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.ReduceSumOp | nn.ReduceMeanOp)
    shape = tensor_shape(op.input)
    dims = op.reduced_dims()
    kept = [1 if i in dims else s for i, s in enumerate(shape)]
    gradient = b.value(nn.ReshapeOp(dy, _tensor(kept, element_type(dy))), op)
    if isinstance(op, nn.ReduceMeanOp):
        count = 1
        for d in dims:
            count *= shape[d]
        gradient = b.binary(nn.MulOp, gradient, b.scalar(1.0 / count, element_type(dy), op), op)
    b.accumulate(op.input, b.value(nn.BroadcastToOp(gradient, op.input.type), op), op)


def _embedding(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, nn.EmbeddingOp)
    if wanted[0]:
        b.accumulate(op.weight, b.value(grad.EmbeddingBackwardOp(dy, op.indices, op.weight.type), op), op)


def _sdpa(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    """Recomputes P = softmax(scale·QKᵀ + mask); dV = Pᵀ dO, dP = dO Vᵀ, dS = scale·softmax'(dP), dQ = dS K, dK = dSᵀ Q."""
    assert isinstance(op, attn.SdpaOp)
    if op.softcap is not None:
        raise pass_failure(PASS_NAME, "attn.sdpa with a softcap has no backward rule", op)
    q, k, v, mask = op.attention_operands()
    if mask is not None and wanted[3]:
        raise pass_failure(PASS_NAME, "the mask of an attn.sdpa cannot be trained", op)
    scale = op.scale.value.data
    scores = b.matmul(q, b.transpose_last(k, op), op, FORWARD)
    probs = b.value(attn.SoftmaxOp(scores, mask, scale, op.is_causal), op)
    if wanted[2]:
        b.accumulate(v, b.reduce_to(b.matmul(b.transpose_last(probs, op), dy, op), tensor_shape(v), op), op)
    if wanted[0] or wanted[1]:
        dprobs = b.matmul(dy, b.transpose_last(v, op), op)
        dscores = b.value(grad.SoftmaxBackwardOp(probs, dprobs, -1), op)
        dscores = b.binary(nn.MulOp, dscores, b.scalar(scale, element_type(dscores), op), op)
        if wanted[0]:
            b.accumulate(q, b.reduce_to(b.matmul(dscores, k, op), tensor_shape(q), op), op)
        if wanted[1]:
            b.accumulate(k, b.reduce_to(b.matmul(b.transpose_last(dscores, op), q, op), tensor_shape(k), op), op)


def _cosine(b: Backward, op: Operation, dy: SSAValue, wanted: list[bool]) -> None:
    assert isinstance(op, attn.CosineOp)
    q, k, v, mask = op.attention_operands()
    backward = b.emit(grad.CosineBackwardOp(q, k, v, op.m, dy, mask, op.is_causal, op.form.data), op)
    for operand, gradient, want in zip((q, k, v, op.m), backward.results, wanted):
        if want:
            b.accumulate(operand, gradient, op)


RULES: dict[type, Rule] = {
    nn.LinearOp: _linear,
    nn.MatmulOp: _matmul,
    nn.AddOp: _add_sub,
    nn.SubOp: _add_sub,
    nn.MulOp: _mul,
    nn.DivOp: _div,
    nn.NegOp: _neg,
    nn.ExpOp: _exp,
    nn.TanhOp: _tanh,
    nn.SigmoidOp: _sigmoid,
    nn.GeluOp: _gelu,
    nn.PowOp: _pow,
    nn.RsqrtOp: _rsqrt,
    nn.SqrtOp: _sqrt,
    nn.LogOp: _log,
    nn.SiluOp: _silu,
    nn.CastOp: _cast,
    nn.WhereOp: _where,
    nn.ReluOp: _relu,
    nn.DropoutOp: _identity,
    nn.SoftmaxOp: _softmax,
    nn.LayerNormOp: _layer_norm,
    nn.ReshapeOp: _reshape,
    nn.TransposeOp: _transpose,
    nn.PermuteOp: _permute,
    nn.BroadcastToOp: _broadcast_to,
    nn.SliceOp: _slice,
    nn.SelectOp: _select,
    nn.ConcatOp: _concat,
    nn.ReduceSumOp: _reduce,
    nn.ReduceMeanOp: _reduce,
    nn.EmbeddingOp: _embedding,
    attn.SdpaOp: _sdpa,
    attn.CosineOp: _cosine,
}


def _needs_gradient(block: Block, frozen: str) -> set[SSAValue]:
    """Values that depend on a trained parameter (a float ``nn.param`` not matched by ``frozen``)."""
    needs: set[SSAValue] = set()
    for op in block.ops:
        if isinstance(op, nn.ParamOp):
            if is_float(element_type(op.result)) and not (frozen and re.fullmatch(frozen, op.key)):
                needs.add(op.result)
        elif any(operand in needs for operand in op.operands):
            needs.update(r for r in op.results if isinstance(r.type, TensorType) and is_float(element_type(r)))
    return needs


@dataclass(frozen=True)
class TrainingStepPass(ModulePass):
    """Forward program → one training step: mean cross-entropy, reverse-mode gradients, SGD with momentum."""

    name = "training-step"

    lr: float = 0.05
    momentum: float = 0.0
    frozen: str = ""  # a regular expression: parameters whose full name matches are held constant (buffers)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not self.lr > 0:
            raise pass_failure(PASS_NAME, f"lr must be positive, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise pass_failure(PASS_NAME, f"momentum must be in [0, 1), got {self.momentum}")
        if UPDATES_ATTRIBUTE in op.attributes:
            raise pass_failure(PASS_NAME, "the module is already a training step")
        function = next((f for f in op.ops if isinstance(f, func.FuncOp) and f.sym_name.data == "main"), None)
        if function is None:
            raise pass_failure(PASS_NAME, "the module has no function @main")
        block = function.body.block
        ret = block.last_op
        assert isinstance(ret, func.ReturnOp)
        if not ret.arguments or not is_float(element_type(ret.arguments[0])) or not tensor_shape(ret.arguments[0]):
            raise pass_failure(PASS_NAME, "the first result of @main must be float logits (..., classes)", ret)
        logits = ret.arguments[0]
        labels = block.insert_arg(_tensor(tensor_shape(logits)[:-1], i64), len(block.args))
        labels.name_hint = LABELS_NAME

        try:
            re.compile(self.frozen)
        except re.error as error:
            raise pass_failure(PASS_NAME, f"frozen is not a regular expression: {error}") from None
        needs = _needs_gradient(block, self.frozen)
        backward = Backward(function, ret)
        loss = backward.value(grad.CrossEntropyOp(logits, labels), None)
        backward.grads[logits] = backward.value(grad.CrossEntropyBackwardOp(logits, labels), None)
        forward_ops = [o for o in block.ops if o is not ret]
        forward_ops = forward_ops[: forward_ops.index(loss.owner)]
        for forward in reversed(forward_ops):
            backward.differentiate(forward, needs)

        parameters: dict[str, list[nn.ParamOp]] = {}
        for forward in forward_ops:
            if isinstance(forward, nn.ParamOp) and forward.result in backward.grads:
                parameters.setdefault(forward.key, []).append(forward)
        if not parameters:
            raise pass_failure(PASS_NAME, "no float parameter reaches the loss: nothing to train")

        new_params: list[SSAValue] = []
        new_velocities: list[SSAValue] = []
        for key, uses in parameters.items():
            gradient = backward.grads[uses[0].result]
            for extra in uses[1:]:
                gradient = backward.value(nn.AddOp(gradient, backward.grads[extra.result], gradient.type), extra)
            velocity = None
            if self.momentum > 0:
                velocity = backward.value(nn.ParamOp(key + MOMENTUM_SUFFIX, uses[0].result.type, init=0.0), uses[0])
            step = backward.emit(grad.SgdOp(uses[0].result, gradient, velocity, self.lr, self.momentum), uses[0])
            new_params.append(step.results[0])
            if velocity is not None:
                new_velocities.append(step.results[1])

        results = [loss, *new_params, *new_velocities]
        new_ret = func.ReturnOp(*results)
        block.insert_op_before(new_ret, ret)
        block.erase_op(ret)
        function.function_type = FunctionType.from_lists([a.type for a in block.args], [r.type for r in results])
        keys = list(parameters) + [key + MOMENTUM_SUFFIX for key in parameters if self.momentum > 0]
        op.attributes[UPDATES_ATTRIBUTE] = ArrayAttr([StringAttr(key) for key in keys])
