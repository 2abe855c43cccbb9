"""The reference executor: runs an ``nn``/``attn`` module on xDSL's interpreter with torch tensors as values.

Targets add their own op implementations (``extra_functions``); everything else runs the reference torch
kernels. Gradients flow through a run when the weights or inputs require grad.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import torch
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.interpreter import Interpreter, InterpreterFunctions
from xdsl.interpreters.func import FuncFunctions
from xdsl.ir import Block, Operation, SSAValue

from dialects import nn
from dialects.diagnostics import AttncError
from dialects.locations import module_path_of
from runtime.abft_impl import AbftFunctions, FaultDetected
from runtime.attn_impl import AttnFunctions
from runtime.dtypes import torch_dtype
from runtime.grad_impl import GradFunctions
from runtime.nn_impl import NnFunctions


class ExecutionError(AttncError):
    """A compiled program could not be run on the given inputs."""


def entry_function(module: ModuleOp, name: str = "main") -> func.FuncOp:
    """The function the executor calls."""
    for op in module.ops:
        if isinstance(op, func.FuncOp) and op.sym_name.data == name:
            return op
    raise ExecutionError(f"the module has no function @{name}")


def initial_parameters(module: ModuleOp, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensors for the parameters a pass created with an ``init`` value that ``weights`` does not hold yet."""
    created: dict[str, torch.Tensor] = {}
    for op in module.walk():
        if isinstance(op, nn.ParamOp) and op.init is not None and op.key not in weights:
            created[op.key] = torch.full(
                tuple(op.result.type.get_shape()), op.init.value.data, dtype=torch_dtype(op.result.type)
            )
    return created


class _CurrentOp(Interpreter.Listener):
    """Remembers the op being interpreted, so a failure can name it and its module path."""

    op = None

    def will_interpret_op(self, op, args) -> None:
        self.op = op


class FiniteCheck(Interpreter.Listener):
    """Stops a run at the first op whose result holds NaN or Inf, naming the op and its module path."""

    def did_interpret_op(self, op, results) -> None:
        for index, value in enumerate(results):
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                where = f" at '{module_path_of(op)}'" if module_path_of(op) else ""
                raise NonFiniteError(f"{op.name}{where} produced NaN or Inf (result {index})")


class _ReleaseDeadValues(Interpreter.Listener):
    """Drops each value from the interpreter's scope once the last op of its block that uses it has run.

    xDSL's interpreter keeps every value of a function until the function returns, so a run would hold all
    of its intermediates at once. Released, a tensor goes back to the allocator as soon as it is dead, which
    bounds a run's memory by its live values and lets later ops reuse memory already mapped (fewer page
    faults on a new process's first run). Only single-block function bodies are tracked."""

    def __init__(self, module: ModuleOp) -> None:
        self.interpreter: Interpreter | None = None
        self.dead_after: dict[Operation, list[SSAValue]] = {}
        for function in module.ops:
            if isinstance(function, func.FuncOp) and len(function.body.blocks) == 1:
                self._plan(function.body.blocks[0])

    def _plan(self, block: Block) -> None:
        ops = list(block.ops)
        position = {op: index for index, op in enumerate(ops)}
        defined = [(arg, -1) for arg in block.args] + [(r, i) for i, op in enumerate(ops) for r in op.results]
        for value, defined_at in defined:
            # Results are bound after the op's listeners run, so an unused value goes after the next op.
            last = defined_at + 1
            for use in value.uses:
                user: Operation | None = use.operation
                while user is not None and user.parent_block() is not block:
                    user = user.parent_op()
                if user is None:  # used outside this block: kept
                    break
                last = max(last, position[user])
            else:
                if last < len(ops):
                    self.dead_after.setdefault(ops[last], []).append(value)

    def did_interpret_op(self, op, results) -> None:
        dead = self.dead_after.get(op)
        if dead and self.interpreter is not None:
            scope = self.interpreter._ctx._local_scope  # the running function's scope: its block's values
            for value in dead:
                scope.pop(value, None)


class NonFiniteError(ExecutionError):
    """A run with ``check_finite`` met a non-finite value."""


class Executor:
    """Runs ``@main`` of a module; ``weights`` maps every ``nn.param`` name to its tensor."""

    def __init__(
        self,
        module: ModuleOp,
        weights: Mapping[str, torch.Tensor],
        extra_functions: Iterable[InterpreterFunctions] = (),
        listeners: Sequence[Interpreter.Listener] = (),
        check_finite: bool = False,
    ):
        """``check_finite``: stop at the first op producing NaN or Inf (costs one check per op result)."""
        self.module = module
        self.weights = dict(weights)
        self.weights.update(initial_parameters(module, self.weights))
        self.function = entry_function(module)
        self._current = _CurrentOp()
        checks = (FiniteCheck(),) if check_finite else ()
        release = _ReleaseDeadValues(module)
        self.interpreter = Interpreter(module, listeners=(self._current, *checks, *listeners, release))
        release.interpreter = self.interpreter
        self.interpreter.register_implementations(FuncFunctions())
        self.interpreter.register_implementations(NnFunctions(self.weights))
        self.interpreter.register_implementations(AttnFunctions())
        self.interpreter.register_implementations(GradFunctions())
        self.abft = AbftFunctions()  # checked ops; its ``detections`` log what they found
        self.interpreter.register_implementations(self.abft)
        for functions in extra_functions:
            self.interpreter.register_implementations(functions, override=True)
            if isinstance(functions, AbftFunctions):
                self.abft = functions

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        expected = self.function.function_type.inputs.data
        if len(inputs) != len(expected):
            raise ExecutionError(f"@main takes {len(expected)} inputs, got {len(inputs)}")
        for index, (value, typ) in enumerate(zip(inputs, expected)):
            shape = tuple(cast(TensorType, typ).get_shape())
            if tuple(value.shape) != shape:
                raise ExecutionError(
                    f"input {index} has shape {tuple(value.shape)}, the program was compiled for {shape}"
                )
        try:
            return tuple(self.interpreter.call_op(self.function, tuple(inputs)))
        except NonFiniteError:
            raise
        except Exception as error:
            op = self._current.op
            where = f" at '{module_path_of(op)}'" if op is not None and module_path_of(op) else ""
            cause = error.__cause__ or error
            if isinstance(cause, FaultDetected):  # already names the op's module path and the invariant
                raise cause from None
            raise ExecutionError(
                f"{op.name if op is not None else '<entry>'}{where} failed: {type(cause).__name__}: {cause}"
            ) from error


def flat_tensors(outputs: Any) -> list[torch.Tensor]:
    """The tensors of a (nested) model output, in pytree order."""
    if hasattr(outputs, "to_tuple"):
        outputs = outputs.to_tuple()
    return [t for t in torch.utils._pytree.tree_leaves(outputs) if isinstance(t, torch.Tensor)]
