"""The one fitting loop: adjust named parameters of a program so an objective falls, through any executor.

``fit`` knows nothing of what is fitted or why: the caller names the parameters (usually those an IR pass
marked ``trainable``, see :func:`trainable_parameters`), gives an objective over the program's outputs,
and an ``executor_factory`` that builds the executor to differentiate through (the reference executor, or a
target's), so cosine attention's m, pruning masks or calibrated ranges are fitted the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from xdsl.dialects.builtin import ModuleOp

from dialects import nn as nn_dialect
from dialects.diagnostics import AttncError
from dialects.locations import module_path_of
from runtime.executor import Executor

ExecutorFactory = Callable[[ModuleOp, dict[str, torch.Tensor]], Callable[..., tuple[torch.Tensor, ...]]]
Objective = Callable[[tuple[torch.Tensor, ...], int], torch.Tensor]


def trainable_parameters(module: ModuleOp, group: str | None = None) -> list[str]:
    """Names of the ``nn.param`` ops marked ``trainable`` (in ``group``, when given), sorted."""
    return sorted(
        op.key
        for op in module.walk()
        if isinstance(op, nn_dialect.ParamOp)
        and op.trainable is not None
        and (group is None or op.trainable.data == group)
    )


def parameter_paths(module: ModuleOp, names: Sequence[str]) -> dict[str, str]:
    """The module path (location) of each named ``nn.param``."""
    wanted = set(names)
    return {op.key: module_path_of(op) for op in module.walk() if isinstance(op, nn_dialect.ParamOp) and op.key in wanted}


def reference_executor(module: ModuleOp, weights: dict[str, torch.Tensor]) -> Executor:
    return Executor(module, weights)


@dataclass
class FitResult:
    """What ``fit`` did: the fitted tensors (detached), the loss of every step, and the time it took."""

    fitted: dict[str, torch.Tensor]
    losses: list[float]
    seconds: float


def fit(
    module: ModuleOp,
    weights: Mapping[str, torch.Tensor],
    batches: Sequence[tuple[torch.Tensor, ...]],
    objective: Objective,
    parameters: Sequence[tuple[Sequence[str], float]],
    executor_factory: ExecutorFactory = reference_executor,
    steps: int = 1000,
    progress: bool = False,
    label: str = "fit",
) -> FitResult:
    """Adam over ``parameters`` (groups of names with their learning rate), one batch per step, cycling
    through ``batches``, with a cosine-annealed rate; ``objective(outputs, batch_index)`` is the loss."""
    if not batches:
        raise AttncError("fitting needs at least one batch")
    names = [name for group, _ in parameters for name in group]
    missing = [name for name in names if name not in weights]
    if missing:
        raise AttncError(f"cannot fit parameters that have no tensor: {', '.join(missing[:5])}")
    trainable = {name: weights[name].detach().clone().requires_grad_(True) for name in names}
    executor = executor_factory(module, {**weights, **trainable})
    groups = [{"params": [trainable[n] for n in group], "lr": lr} for group, lr in parameters if group]
    optimizer = torch.optim.Adam(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
    )
    losses: list[float] = []
    start = time.perf_counter()
    with _progress(progress, steps, label) as advance:
        for step in range(steps):
            index = step % len(batches)
            optimizer.zero_grad(set_to_none=True)
            loss = objective(executor(*batches[index]), index)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            advance(loss.item())
    return FitResult({n: t.detach().clone() for n, t in trainable.items()}, losses, time.perf_counter() - start)


class _progress:
    """A rich progress bar (on stderr) showing the step and the current loss; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int, label: str = "fit"):
        self.enabled, self.total, self.label = enabled, total, label

    def __enter__(self):
        if not self.enabled or self.total == 0:
            return lambda loss: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn(self.label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.__enter__()
        task = self.bar.add_task("fit", total=self.total, loss="-")
        return lambda loss: self.bar.update(task, advance=1, loss=f"{loss:.5f}")

    def __exit__(self, *exc):
        if getattr(self, "bar", None) is not None:
            self.bar.__exit__(*exc)
        return False
