"""Calibration activations: the operands of chosen ops, recorded while the executor runs calibration inputs.

This is the one way a compile step sees activations: it names ``(op, operand index)`` pairs of the module,
and :func:`capture_operands` runs the module's own executor on each calibration batch and keeps those
operands (detached). Nothing re-implements the model, and nothing is kept in global state: the captures are
returned to the caller. Pruning asks for the inputs of the q/k projections. :func:`observing_executor` is the
mechanism underneath, for a step that wants less than whole tensors (TinyCL's calibrated formats keep only the
largest |x| of each operand and result).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import torch
from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import Interpreter
from xdsl.ir import Operation

from dialects.diagnostics import AttncError
from runtime.executor import Executor

Capture = dict[tuple[Operation, int], torch.Tensor]
OpObserver = Callable[[Operation, tuple, tuple], None]


class _OpObserver(Interpreter.Listener):
    """Calls ``observe(op, operands, results)`` each time the interpreter has run one of the chosen ops."""

    def __init__(self, ops: Collection[Operation], observe: OpObserver):
        self.ops = set(ops)
        self.observe = observe
        self.operands: dict[Operation, tuple] = {}

    def will_interpret_op(self, op: Operation, args) -> None:
        if op in self.ops:
            self.operands[op] = tuple(args)

    def did_interpret_op(self, op: Operation, results) -> None:
        if op in self.ops:
            self.observe(op, self.operands.pop(op), tuple(results))


def observing_executor(
    module: ModuleOp,
    weights: dict[str, torch.Tensor],
    ops: Collection[Operation],
    observe: OpObserver,
    executor_factory: Callable[..., Executor] = Executor,
) -> Executor:
    """The module's own executor, calling ``observe(op, operands, results)`` after each of ``ops`` runs."""
    return executor_factory(module, weights, listeners=(_OpObserver(ops, observe),))


def capture_operands(
    module: ModuleOp,
    weights: dict[str, torch.Tensor],
    batches: Sequence[tuple[torch.Tensor, ...]],
    wanted: Sequence[tuple[Operation, int]],
    executor_factory: Callable[..., Executor] = Executor,
) -> list[Capture]:
    """For each batch, the operands named by ``wanted`` as the executor saw them (one dict per batch)."""
    if not batches:
        raise AttncError("calibration needs at least one batch of inputs")
    by_op: dict[Operation, list[int]] = {}
    for op, index in wanted:
        by_op.setdefault(op, []).append(index)
    captures: list[Capture] = []

    def keep(op: Operation, operands: tuple, results: tuple) -> None:
        for index in by_op[op]:
            value = operands[index]
            captures[-1][(op, index)] = value.detach() if isinstance(value, torch.Tensor) else value

    executor = observing_executor(module, weights, by_op, keep, executor_factory)
    with torch.no_grad():
        for batch in batches:
            captures.append({})
            executor(*batch)
    return captures
