"""Calibration activations: the operands of chosen ops, recorded while the executor runs calibration inputs.

This is the one way a compile step sees activations: it names ``(op, operand index)`` pairs of the module,
and :func:`capture_operands` runs the module's own executor on each calibration batch and keeps those
operands (detached). Nothing re-implements the model, and nothing is kept in global state: the captures are
returned to the caller. Pruning asks for the inputs of the q/k projections; calibrated ADC ranges or
fixed-point formats would ask for the operands of the ops they quantise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import Interpreter
from xdsl.ir import Operation

from dialects.diagnostics import AttncError
from runtime.executor import Executor

Capture = dict[tuple[Operation, int], torch.Tensor]


class _OperandRecorder(Interpreter.Listener):
    """Keeps the wanted operands of each op as the interpreter reaches it."""

    def __init__(self, wanted: dict[Operation, list[int]]):
        self.wanted = wanted
        self.current: Capture = {}

    def will_interpret_op(self, op: Operation, args) -> None:
        for index in self.wanted.get(op, ()):
            value = args[index]
            self.current[(op, index)] = value.detach() if isinstance(value, torch.Tensor) else value


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
    recorder = _OperandRecorder(by_op)
    executor = executor_factory(module, weights, listeners=(recorder,))
    captures: list[Capture] = []
    with torch.no_grad():
        for batch in batches:
            recorder.current = {}
            executor(*batch)
            captures.append(recorder.current)
    return captures
