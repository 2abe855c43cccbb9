"""The TinyCL model's runtime: ``tinycl`` ops on int64 code tensors (targets/tinycl/fixed_point.py).

One instance is one run of the accelerator: stochastic rounding draws from one generator seeded with
``--seed``, in op order, so a seed and inputs give bit-identical outputs.
"""

from __future__ import annotations

import torch
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls

from dialects import tinycl
from dialects.shapes import element_type
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
        return (fp.softmax(args[0], format_of(op.input), op.scale.value.data, bool(op.causal.value.data), keep),)

    @impl(tinycl.LayerNormOp)
    def run_layer_norm(self, interpreter: Interpreter, op: tinycl.LayerNormOp, args):
        x, gamma, beta = args
        fmt = format_of(op.input)
        return (fp.layer_norm(x, gamma, beta, fmt, op.eps.value.data, op.rounding.data, op.overflow.data, self.generator),)

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
        return (fp.lut(args[0], op.function.data, format_of(op.input)),)
