"""The TinyCL model's runtime: ``tinycl`` ops on int64 code tensors (targets/tinycl/fixed_point.py).

One instance is one run of the accelerator: stochastic rounding draws from one generator seeded with
``--seed``, in op order, so a seed and inputs give bit-identical outputs.
"""

from __future__ import annotations

import torch
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls

from dialects import tinycl
from dialects.shapes import element_type, tensor_shape
from runtime.dtypes import torch_dtype
from targets.tinycl import fixed_point as fp


def format_of(value) -> fp.Format:
    typ = element_type(value)
    assert isinstance(typ, tinycl.FixedType)
    return typ.bits


@register_impls
class TinyclFunctions(InterpreterFunctions):
    """Implementations of the ``tinycl`` ops."""

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator().manual_seed(seed)

    @impl(tinycl.QuantizeOp)
    def run_quantize(self, interpreter: Interpreter, op: tinycl.QuantizeOp, args):
        return (fp.quantize(args[0], format_of(op.result), op.rounding.data, op.overflow.data, self.generator),)

    @impl(tinycl.RequantOp)
    def run_requant(self, interpreter: Interpreter, op: tinycl.RequantOp, args):
        source, target = format_of(op.input), format_of(op.result)
        return (fp.requantize(args[0], source, target, op.rounding.data, op.overflow.data, self.generator),)

    @impl(tinycl.DequantizeOp)
    def run_dequantize(self, interpreter: Interpreter, op: tinycl.DequantizeOp, args):
        return (fp.dequantize(args[0], format_of(op.input), torch_dtype(op.result.type)),)

    @impl(tinycl.MacOp)
    def run_mac(self, interpreter: Interpreter, op: tinycl.MacOp, args):
        mode = op.mode.data
        lhs, rhs = args[0], args[1]
        if mode == "update":
            lhs, rhs = fp.align_for_update(lhs, format_of(op.lhs)[1], rhs, format_of(op.rhs)[1])
        bias = args[2] if len(args) > 2 else None
        return (fp.mac(mode, lhs, rhs, bias, format_of(op.result)[0], "wrap"),)

    @impl(tinycl.SoftmaxOp)
    def run_softmax(self, interpreter: Interpreter, op: tinycl.SoftmaxOp, args):
        keep = args[1] if len(args) > 1 else None
        scale, causal = op.scale.value.data, bool(op.causal.value.data)
        return (fp.softmax(args[0], format_of(op.input), scale, causal, keep, format_of(op.result)),)

    @impl(tinycl.LayerNormOp)
    def run_layer_norm(self, interpreter: Interpreter, op: tinycl.LayerNormOp, args):
        x, gamma, beta = args
        fmt, gamma_frac, beta_frac = format_of(op.input), format_of(op.gamma)[1], format_of(op.beta)[1]
        eps, modes = op.eps.value.data, (op.rounding.data, op.overflow.data, self.generator)
        return (fp.layer_norm(x, gamma, beta, fmt, eps, *modes, gamma_frac, beta_frac, format_of(op.result)),)

    @impl(tinycl.L2NormalizeOp)
    def run_l2_normalize(self, interpreter: Interpreter, op: tinycl.L2NormalizeOp, args):
        return (fp.l2_normalize(args[0], format_of(op.input)),)

    @impl(tinycl.HeadScaleOp)
    def run_head_scale(self, interpreter: Interpreter, op: tinycl.HeadScaleOp, args):
        codes, m = args
        fmt = format_of(op.input)
        length = op.length.value.data
        return (fp.head_scale(codes, m, length, fmt, op.rounding.data, op.overflow.data, self.generator),)

    @impl(tinycl.LutOp)
    def run_lut(self, interpreter: Interpreter, op: tinycl.LutOp, args):
        return (fp.lut(args[0], op.function.data, format_of(op.input), format_of(op.result)),)

    def _modes(self, op) -> tuple[str, str, torch.Generator]:
        return op.rounding.data, op.overflow.data, self.generator

    @impl(tinycl.AddOp)
    def run_add(self, interpreter: Interpreter, op: tinycl.AddOp, args):
        lhs, rhs = format_of(op.lhs), format_of(op.rhs)
        return (fp.add(args[0], lhs[1], args[1], rhs[1], format_of(op.result), *self._modes(op)),)

    @impl(tinycl.MulOp)
    def run_mul(self, interpreter: Interpreter, op: tinycl.MulOp, args):
        lhs, rhs = format_of(op.lhs), format_of(op.rhs)
        return (fp.multiply(args[0], lhs[1], args[1], rhs[1], format_of(op.result), *self._modes(op)),)

    @impl(tinycl.ReduceSumOp)
    def run_reduce_sum(self, interpreter: Interpreter, op: tinycl.ReduceSumOp, args):
        dims, keep = list(op.dims.get_values()), bool(op.keepdim.value.data)
        return (fp.reduce_sum(args[0], format_of(op.input)[1], dims, keep, format_of(op.result), *self._modes(op)),)

    @impl(tinycl.SoftmaxBackwardOp)
    def run_softmax_backward(self, interpreter: Interpreter, op: tinycl.SoftmaxBackwardOp, args):
        y, dy = format_of(op.output), format_of(op.grad_output)
        return (fp.softmax_backward(args[0], y[1], args[1], dy[1], format_of(op.result), *self._modes(op)),)

    @impl(tinycl.LayerNormBackwardOp)
    def run_layer_norm_backward(self, interpreter: Interpreter, op: tinycl.LayerNormBackwardOp, args):
        x, dy, gamma = args
        formats = format_of(op.input), format_of(op.grad_output)[1], format_of(op.gamma)[1]
        return (
            fp.layer_norm_backward(
                x, formats[0], dy, formats[1], gamma, formats[2], op.eps.value.data, format_of(op.result), *self._modes(op)
            ),
        )

    @impl(tinycl.ActivationBackwardOp)
    def run_activation_backward(self, interpreter: Interpreter, op: tinycl.ActivationBackwardOp, args):
        x, dy = format_of(op.input), format_of(op.grad_output)[1]
        function = op.function.data
        return (fp.activation_backward(args[0], x, args[1], dy, function, format_of(op.result), *self._modes(op)),)

    @impl(tinycl.CrossEntropyBackwardOp)
    def run_cross_entropy_backward(self, interpreter: Interpreter, op: tinycl.CrossEntropyBackwardOp, args):
        logits = format_of(op.logits)
        scale, divisor = op.scale.value.data, op.divisor.value.data
        return (fp.cross_entropy_backward(args[0], logits, args[1], scale, divisor, format_of(op.result), *self._modes(op)),)

    @impl(tinycl.EmbeddingBackwardOp)
    def run_embedding_backward(self, interpreter: Interpreter, op: tinycl.EmbeddingBackwardOp, args):
        rows = tensor_shape(op.result)[0]
        frac = format_of(op.grad_output)[1]
        return (fp.embedding_backward(args[0], frac, args[1], rows, format_of(op.result), *self._modes(op)),)

    @impl(tinycl.L2NormalizeBackwardOp)
    def run_l2_normalize_backward(self, interpreter: Interpreter, op: tinycl.L2NormalizeBackwardOp, args):
        x, dn = format_of(op.input), format_of(op.grad_output)[1]
        return (fp.l2_normalize_backward(args[0], x, args[1], dn, format_of(op.result), *self._modes(op)),)

    @impl(tinycl.HeadScaleBackwardOp)
    def run_head_scale_backward(self, interpreter: Interpreter, op: tinycl.HeadScaleBackwardOp, args):
        lhs, rhs, m = args
        formats = format_of(op.lhs)[1], format_of(op.rhs)[1]
        length = op.length.value.data
        return (fp.head_scale_backward(lhs, formats[0], rhs, formats[1], m, length, format_of(op.result), *self._modes(op)),)
