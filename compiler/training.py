"""Training a PyTorch model with its compiled training step, on a target.

```python
from compiler.training import compiled_trainer
trainer = compiled_trainer(model, example, "reference", lr=0.05, momentum=0.9)
trainer.reset(seed=0)                                   # fresh parameters from the model's own initialiser
loss = trainer.train_epoch(x, y, batch_size=32, seed=0)  # one compiled step (forward, backward, SGD) per batch
labels = trainer.predict(x_test)                        # forward only, same target and numerics
```

The step itself is IR: the forward program through ``attn-raise`` and ``training-step`` (passes/training_step.py),
then the target's lowering. Programs have static shapes, so one step is compiled per batch size met (the last,
shorter batch of an epoch gets its own) and kept.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from xdsl.dialects.builtin import ArrayAttr, ModuleOp
from xdsl.passes import ModulePass

from compiler.api import ModelSpec, apply_passes, compile_model, parse_pipeline, target_functions
from compiler.errors import AttncError
from dialects.diagnostics import Remark, collect_remarks
from passes.training_step import UPDATES_ATTRIBUTE, TrainingStepPass
from runtime.executor import Executor
from targets.registry import all_targets

FORWARD_PIPELINE = "attn-raise"


class Trainer(Protocol):
    """What a training driver (plain training, continual learning) needs from a compiled model."""

    def reset(self, seed: int) -> None: ...

    def train_epoch(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        seed: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> float: ...

    def predict(self, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor: ...

    def epoch_cost(self) -> dict[str, float] | None: ...


def fresh_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The model's parameters and buffers re-drawn by its own initialisers under ``torch.manual_seed(seed)``.

    Every module that owns parameters must define ``reset_parameters`` (or torch's ``_reset_parameters``,
    as ``nn.MultiheadAttention``): a parameter nobody re-draws would keep its trained value.
    """
    fresh = copy.deepcopy(model)
    torch.manual_seed(seed)
    for name, module in fresh.named_modules():
        owns = any(True for _ in module.parameters(recurse=False))
        reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
        if callable(reset):
            reset()
        elif owns and not _reset_by_parent(fresh, name):
            raise AttncError(
                f"cannot re-initialise '{name or type(module).__name__}' ({type(module).__name__}): it owns parameters "
                "and has no reset_parameters()"
            )
    return {key: value.detach().clone() for key, value in fresh.state_dict().items()}


def _reset_by_parent(root: torch.nn.Module, name: str) -> bool:
    """True when a parent's ``_reset_parameters`` covers this module (``nn.MultiheadAttention``'s out_proj)."""
    parent_name = name.rpartition(".")[0]
    parent = root.get_submodule(parent_name) if name else None
    return parent is not None and callable(getattr(parent, "_reset_parameters", None))


def batch_of(example: torch.Tensor, size: int) -> torch.Tensor:
    """An example input of ``size`` rows (the example's rows repeated): what a step of that size is traced with."""
    repeats = -(-size // example.shape[0])
    return example.repeat(repeats, *([1] * (example.dim() - 1)))[:size].contiguous()


@dataclass
class CompiledTrainer:
    """A ``Trainer`` running the compiled step of ``model`` on ``target`` (see ``compiled_trainer``)."""

    model: torch.nn.Module
    example: torch.Tensor
    target: str
    lr: float
    momentum: float
    target_options: dict[str, str]
    batch_size: int
    pipeline: str = FORWARD_PIPELINE  # the forward passes before training-step (e.g. "attn-raise,attn-cosine")
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    _steps: dict[int, tuple[Executor, list[str]]] = field(default_factory=dict)
    _forwards: dict[int, Executor] = field(default_factory=dict)
    _last_cost: dict[str, float] | None = None
    remarks: list[Remark] = field(default_factory=list)  # the lowering's remarks, once each
    _seed: int = 0

    def __post_init__(self) -> None:
        self.model = self.model.eval()  # dropout off: the compiled step has no dropout
        self.frozen = "|".join(re.escape(name) for name, _ in self.model.named_buffers())
        self.reset(0)

    # -- the contract ----------------------------------------------------------------------------------------

    def reset(self, seed: int) -> None:
        """Fresh parameters from the model's initialisers under ``torch.manual_seed(seed)``; momentum zeroed."""
        self._seed = seed
        self.weights = fresh_state(self.model, seed)
        self._last_cost = None

    def train_epoch(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        seed: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> float:
        """One pass over (x, y) in a seed-shuffled order, one compiled step per batch; the mean loss."""
        if len(x) != len(y) or len(x) == 0:
            raise AttncError(f"train_epoch needs as many labels as inputs (got {len(x)} inputs, {len(y)} labels)")
        if batch_size < 1:
            raise AttncError(f"batch_size must be at least 1, got {batch_size}")
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        batches = [order[start : start + batch_size] for start in range(0, len(x), batch_size)]
        total_loss, seen = 0.0, 0
        for done, rows in enumerate(batches, start=1):
            executor, keys = self._step(len(rows))
            executor.weights.update(self.weights)
            with torch.no_grad():
                loss, *updated = executor(x[rows].contiguous(), y[rows].contiguous())
            self.weights.update(zip(keys, updated))
            total_loss += float(loss) * len(rows)
            seen += len(rows)
            if progress is not None:
                progress(done, len(batches))
        self._last_cost = self._cost_of(len(x), batch_size)
        return total_loss / seen

    def predict(self, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """Class indices (int64) of the first output's last dim, forward only on the same target.

        On a device target the rows go through in chunks of at most the trainer's ``batch_size`` (the batch its
        on-chip memory was planned for)."""
        if self.target != "reference":
            batch_size = min(batch_size, self.batch_size)
        predictions = []
        for start in range(0, len(x), batch_size):
            rows = x[start : start + batch_size].contiguous()
            executor = self._forward(len(rows))
            executor.weights.update(self.weights)
            with torch.no_grad():
                logits = executor(rows)[0]
            predictions.append(logits.argmax(dim=-1).to(torch.int64))
        return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.int64)

    def epoch_cost(self) -> dict[str, float] | None:
        """The target's cost-model figures of the last ``train_epoch`` (None on the reference target)."""
        return self._last_cost

    # -- compilation -----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The trained parameters and buffers under the model's own names (no momentum)."""
        names = set(self.model.state_dict())
        return {key: value for key, value in self.weights.items() if key in names}

    def _compile(self, rows: int, passes: list[ModulePass]) -> tuple[ModuleOp, Executor]:
        spec = ModelSpec(type(self.model).__name__, self.model, (batch_of(self.example, rows),))
        compiled = compile_model(spec, self.pipeline)
        with collect_remarks() as remarks:  # what stays on the host: kept, not printed once per compiled size
            apply_passes(compiled.module, [*passes, *self._lowering()])
        self.remarks = [*dict.fromkeys([*self.remarks, *remarks])]
        weights = {**compiled.weights, **self.weights}
        return compiled.module, Executor(compiled.module, weights, extra_functions=target_functions(compiled.module, self._seed))

    def _step(self, rows: int) -> tuple[Executor, list[str]]:
        if rows not in self._steps:
            step = TrainingStepPass(lr=self.lr, momentum=self.momentum, frozen=self.frozen)
            module, executor = self._compile(rows, [step])
            updates = module.attributes[UPDATES_ATTRIBUTE]
            assert isinstance(updates, ArrayAttr)
            self._steps[rows] = (executor, [key.data for key in updates.data])
            # velocities start at zero (their nn.param init); a reset must zero them again
        executor, keys = self._steps[rows]
        for key in keys:
            if key not in self.weights:
                self.weights[key] = torch.zeros_like(executor.weights[key])
        return executor, keys

    def _forward(self, rows: int) -> Executor:
        if rows not in self._forwards:
            self._forwards[rows] = self._compile(rows, [])[1]
        return self._forwards[rows]

    def _lowering(self) -> list[ModulePass]:
        """The target's lowering of a forward program or a training step (none on the reference target)."""
        if self.target == "reference":
            return []
        lowering = all_targets()[self.target].lowering_pass
        options = " ".join(f"{key}={value}" for key, value in self.target_options.items())
        return list(parse_pipeline(f"{lowering}{{{options}}}" if options else lowering))

    def modelled_epoch_cost(self, samples: int, batch_size: int) -> dict[str, float] | None:
        """What ``epoch_cost`` would return after an epoch of ``samples`` in batches of ``batch_size``, from the
        cost model alone (the steps are compiled, not run)."""
        for rows in {batch_size, samples % batch_size} - {0}:
            self._step(rows)
        return self._cost_of(samples, batch_size)

    def _cost_of(self, samples: int, batch_size: int) -> dict[str, float] | None:
        """The cost model's figures of one epoch: each compiled step's, times the batches of its size."""
        if self.target == "reference":
            return None
        from targets.registry import target_of

        sizes = [batch_size] * (samples // batch_size) + ([samples % batch_size] if samples % batch_size else [])
        epoch: dict[str, float] = {"steps": float(len(sizes))}
        for rows in set(sizes):
            module = self._steps[rows][0].module
            count = sizes.count(rows)
            target = target_of(module)
            assert target is not None
            for key, value in target.cost_report(module).items():
                if key.startswith("peak"):
                    epoch[key] = max(epoch.get(key, 0.0), value)
                elif key != "utilisation":
                    epoch[key] = epoch.get(key, 0.0) + count * value
            for phase, figures in (target.phase_costs(module) or {}).items():
                for key in ("cycles", "macs", "energy_pj", "off_chip"):
                    label = f"{phase} {key.replace('_pj', ' uJ').replace('_', '-')}"
                    scale = 1e-6 if key == "energy_pj" else 1.0
                    epoch[label] = epoch.get(label, 0.0) + count * figures[key] * scale
        return epoch


# Models attnc train knows, all on scikit-learn's digits (8×8 images, 10 classes, the vit-digits split).
DATASETS = ("vit-digits", "vit-tiny", "patch-digits")


def training_data(spec: str) -> tuple[torch.nn.Module, torch.Tensor, tuple[torch.Tensor, ...]]:
    """(model, example input, (train images, train labels, held-out images, held-out labels)) of a known SPEC."""
    from compiler.models import BUNDLED, digits_split, patch_digits

    if spec not in DATASETS:
        raise AttncError(f"no data set for '{spec}': attnc train knows {', '.join(DATASETS)}")
    model, (example,) = patch_digits() if spec == "patch-digits" else BUNDLED[spec]()
    return model, example, digits_split()


def training_targets() -> tuple[str, ...]:
    """"reference" and every registered target whose lowering takes a training step."""
    return ("reference", *(name for name, target in all_targets().items() if target.trains))


def compiled_trainer(
    model: torch.nn.Module,
    example: torch.Tensor,
    target: str = "reference",
    *,
    lr: float = 0.05,
    momentum: float = 0.0,
    target_options: dict[str, str] | None = None,
    batch_size: int = 32,
    pipeline: str = FORWARD_PIPELINE,
) -> Trainer:
    """A trainer for ``model`` (inputs shaped like ``example``, any number of rows) on ``target``.

    ``target``: "reference" (the float32 executor) or "tinycl" (``target_options`` as ``lower-to-tinycl``'s,
    e.g. ``{"total-bits": "16", "frac-bits": "8"}``). ``pipeline``: the forward passes the step is built from
    (``attn-raise`` by default; ``attn-raise,attn-cosine`` trains cosine attention). Parameters start from ``reset(0)``.
    """
    targets = training_targets()
    if target not in targets:
        raise AttncError(f"unknown training target '{target}': expected one of {', '.join(targets)}")
    if target == "reference" and target_options:
        raise AttncError(f"the reference target takes no options, got {', '.join(target_options)}")
    if not lr > 0:
        raise AttncError(f"lr must be positive, got {lr}")
    if not 0 <= momentum < 1:
        raise AttncError(f"momentum must be in [0, 1), got {momentum}")
    if batch_size < 1:
        raise AttncError(f"batch_size must be at least 1, got {batch_size}")
    return CompiledTrainer(model, example, target, lr, momentum, dict(target_options or {}), batch_size, pipeline)
