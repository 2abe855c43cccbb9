"""The fitting layer: one loop fits whatever the IR marks trainable, through any executor."""

from __future__ import annotations

import torch
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls
from xdsl.ir import Block, Region

from dialects import nn
from fitting.loop import fit, trainable_parameters
from runtime.executor import Executor


def scale_program() -> ModuleOp:
    """``@main(x) = gelu(x * s)`` with ``s`` a parameter marked trainable in group "toy"."""
    typ = TensorType(f32, [8])
    block = Block(arg_types=[typ])
    scale = nn.ParamOp("s", typ, init=0.3, trainable="toy")
    product = nn.MulOp(block.args[0], scale.result, typ)
    gelu = nn.GeluOp(product.result, typ)
    block.add_ops([scale, product, gelu, ReturnOp(gelu.results[0])])
    return ModuleOp([FuncOp("main", ([typ], [typ]), Region(block))])


@register_impls
class ShiftedGelu(InterpreterFunctions):
    """A 'target' whose GELU is off by a constant: the fit must find the scale for this executor."""

    @impl(nn.GeluOp)
    def run_gelu(self, interpreter: Interpreter, op: nn.GeluOp, args):
        return (torch.nn.functional.gelu(args[0]) + 0.1,)


def test_fit_a_toy_parameter_through_a_non_reference_executor():
    module = scale_program()
    assert trainable_parameters(module) == ["s"] and trainable_parameters(module, "cosine") == []
    weights = {"s": torch.full((8,), 0.3)}
    x = torch.linspace(0.5, 2.0, 8)
    target = torch.nn.functional.gelu(x * 1.5) + 0.1  # reachable only through the shifted executor

    def target_executor(module, weights):
        return Executor(module, weights, extra_functions=[ShiftedGelu()])

    def objective(outputs, index):
        return ((outputs[0] - target) ** 2).mean()

    result = fit(module, weights, [(x,)], objective, [(["s"], 0.05)], target_executor, steps=300)
    assert result.losses[-1] < 1e-3 * result.losses[0]
    assert torch.allclose(result.fitted["s"], torch.full((8,), 1.5), atol=2e-2)
    assert torch.equal(weights["s"], torch.full((8,), 0.3))  # the caller's weights are not modified
