"""Torch implementations of the ``grad`` dialect for the reference executor.

The backward ops are written out as formulas (not autograd), so the generated training step is checked
against ``torch.autograd`` by an independent computation. The one exception is ``grad.cosine_backward``:
it is the vector-Jacobian product of the same cosine kernel the forward runs (``torch.func.vjp``), since
the cosine kernels pick their association order and chunking at run time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls

from dialects import grad
from dialects.shapes import int_list
from runtime.attn_impl import key_padding
from runtime.cosine_kernels import cosine_attention_causal, cosine_attention_parallel


def cross_entropy_backward(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(softmax(logits) - onehot(labels)) / count`` over the last dim; count = number of labels."""
    probs = torch.softmax(logits, dim=-1)
    onehot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return (probs - onehot) / labels.numel()


def layer_norm_backward(
    x: torch.Tensor, dy: torch.Tensor, weight: torch.Tensor | None, normalized_rank: int, eps: float
) -> torch.Tensor:
    """``dx = (g − mean(g) − x̂ · mean(g · x̂)) / σ`` with ``g = dy · weight`` over the normalised dims."""
    dims = tuple(range(-normalized_rank, 0))
    mean = x.mean(dim=dims, keepdim=True)
    rstd = torch.rsqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
    xhat = (x - mean) * rstd
    g = dy * weight if weight is not None else dy
    return rstd * (g - g.mean(dim=dims, keepdim=True) - xhat * (g * xhat).mean(dim=dims, keepdim=True))


def gelu_backward(x: torch.Tensor, dy: torch.Tensor, approximate: str) -> torch.Tensor:
    """GELU's derivative times ``dy`` (exact erf form, or the tanh approximation)."""
    if approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        inner = c * (x + 0.044715 * x**3)
        t = torch.tanh(inner)
        derivative = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    else:
        cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2.0)))
        pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        derivative = cdf + x * pdf
    return dy * derivative


def sgd_step(param: torch.Tensor, gradient: torch.Tensor, velocity: torch.Tensor | None, lr: float, momentum: float):
    """``torch.optim.SGD``'s update: ``v' = momentum·v + g; p' = p − lr·v'`` (or ``p − lr·g`` without momentum)."""
    if velocity is None:
        return (param - lr * gradient,)
    velocity = momentum * velocity + gradient
    return param - lr * velocity, velocity


@register_impls
class GradFunctions(InterpreterFunctions):
    """Reference semantics of the loss, backward and update ops."""

    @impl(grad.CrossEntropyOp)
    def run_cross_entropy(self, interpreter: Interpreter, op: grad.CrossEntropyOp, args):
        logits, labels = args
        return (F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)),)

    @impl(grad.CrossEntropyBackwardOp)
    def run_cross_entropy_backward(self, interpreter: Interpreter, op: grad.CrossEntropyBackwardOp, args):
        return (cross_entropy_backward(args[0], args[1]),)

    @impl(grad.SoftmaxBackwardOp)
    def run_softmax_backward(self, interpreter: Interpreter, op: grad.SoftmaxBackwardOp, args):
        y, dy = args
        dim = op.dim.value.data
        return (y * (dy - (dy * y).sum(dim=dim, keepdim=True)),)

    @impl(grad.LayerNormBackwardOp)
    def run_layer_norm_backward(self, interpreter: Interpreter, op: grad.LayerNormBackwardOp, args):
        weight = args[2] if len(args) > 2 else None
        return (layer_norm_backward(args[0], args[1], weight, len(int_list(op.normalized_shape)), op.eps.value.data),)

    @impl(grad.GeluBackwardOp)
    def run_gelu_backward(self, interpreter: Interpreter, op: grad.GeluBackwardOp, args):
        return (gelu_backward(args[0], args[1], op.approximate.data),)

    @impl(grad.ReluBackwardOp)
    def run_relu_backward(self, interpreter: Interpreter, op: grad.ReluBackwardOp, args):
        x, dy = args
        return (torch.where(x > 0, dy, torch.zeros_like(dy)),)

    @impl(grad.EmbeddingBackwardOp)
    def run_embedding_backward(self, interpreter: Interpreter, op: grad.EmbeddingBackwardOp, args):
        dy, indices = args[0], args[1]
        rows, width = (int(n) for n in op.result.type.get_shape())
        table = torch.zeros(rows, width, dtype=dy.dtype)
        return (table.index_add(0, indices.reshape(-1), dy.reshape(-1, width)),)

    @impl(grad.CosineBackwardOp)
    def run_cosine_backward(self, interpreter: Interpreter, op: grad.CosineBackwardOp, args):
        q, k, v, m, dy = args[:5]
        causal = bool(op.causal.value.data)
        valid = key_padding(args[5], q.shape, k.shape[2], causal) if len(args) > 5 else None

        def forward(q, k, v, m):
            kernel = cosine_attention_causal if causal else cosine_attention_parallel
            return kernel(q, k, v, m, valid=valid)

        with torch.enable_grad():
            vjp = torch.func.vjp(forward, q, k, v, m)[1]
            return tuple(g.detach() for g in vjp(dy))

    @impl(grad.SgdOp)
    def run_sgd(self, interpreter: Interpreter, op: grad.SgdOp, args):
        velocity = args[2] if len(args) > 2 else None
        return sgd_step(args[0], args[1], velocity, op.lr.value.data, op.momentum.value.data)
