"""Class-incremental learning: tasks of new classes arrive one after another; the model must keep the old ones.

Two strategies, over any trainer with ``reset``/``train_epoch``/``predict``/``epoch_cost`` (the compiled training
step on a target, or the plain PyTorch baseline):

* ``naive``: fine-tune on each task's data in turn (forgets the earlier classes);
* ``gdumb`` (Prabhu et al., ECCV 2020): a class-balanced greedy memory of ``memory`` samples fills from the stream;
  after each task the model is re-initialised (``reset(seed)``) and trained on the memory alone, or, with
  ``finetune``, trained further from where it was.

After each task the run measures the accuracy on the test images of every task seen so far and over all their
classes; at the end the forgetting of each earlier task (its best accuracy before the last task minus its final
accuracy). Every epoch records its mean loss, CPU seconds and the target's cost-model figures.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

import torch
from rich.progress import TaskID

from compiler.datasets import ImageDataset, class_incremental_tasks
from compiler.errors import AttncError
from compiler.training import Trainer

STRATEGIES = ("naive", "gdumb")


class ClassBalancedMemory:
    """GDumb's greedy class-balanced sampler: a sample is stored while there is room; once full, a sample of a
    class holding fewer than capacity / (classes seen) items replaces a random item of the largest class.

    Never holds more than ``capacity`` samples; after a long enough stream every seen class holds
    ``capacity // classes`` or one more.
    """

    def __init__(self, capacity: int, seed: int = 0):
        if capacity < 1:
            raise AttncError(f"the memory must hold at least one sample, not {capacity}")
        self.capacity = capacity
        self.generator = torch.Generator().manual_seed(seed)
        self.items: dict[int, list[torch.Tensor]] = {}

    def __len__(self) -> int:
        return sum(len(samples) for samples in self.items.values())

    def counts(self) -> dict[int, int]:
        return {label: len(samples) for label, samples in sorted(self.items.items())}

    def add(self, x: torch.Tensor, label: int) -> bool:
        """Offers one sample; returns whether it was stored."""
        stored = self.items.setdefault(label, [])
        if len(self) < self.capacity:
            stored.append(x)
            return True
        if len(stored) >= self.capacity / len(self.items):
            return False
        largest = max(self.items, key=lambda c: (len(self.items[c]), -c))
        victims = self.items[largest]
        victims.pop(int(torch.randint(len(victims), (1,), generator=self.generator)))
        stored.append(x)
        return True

    def extend(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Offers a stream of samples in a random order (drawn from the memory's generator)."""
        for index in torch.randperm(len(y), generator=self.generator).tolist():
            self.add(x[index], int(y[index]))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored images and labels, grouped by class."""
        labels = [label for label, samples in sorted(self.items.items()) for _ in samples]
        images = [x for _, samples in sorted(self.items.items()) for x in samples]
        return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


class RunProgress(Protocol):
    """Where a run reports its progress (a progress bar per task and epoch, or nothing)."""

    def begin_task(self, task: int, tasks: int, epochs: int, samples: int) -> None: ...

    def batches(self, done: int, total: int) -> None: ...

    def end_epoch(self, epoch: int, loss: float) -> None: ...

    def end_task(self, average_accuracy: float) -> None: ...


class SilentProgress:
    def begin_task(self, task: int, tasks: int, epochs: int, samples: int) -> None:
        pass

    def batches(self, done: int, total: int) -> None:
        pass

    def end_epoch(self, epoch: int, loss: float) -> None:
        pass

    def end_task(self, average_accuracy: float) -> None:
        pass


class RichProgress:
    """Progress bars on stderr: one per task (its epochs, with the last loss), one for the batches of the epoch."""

    def __init__(self, label: str = ""):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=Console(stderr=True))
        self.label = label
        self.task_bar: TaskID | None = None
        self.epoch_bar: TaskID | None = None
        self.description = ""

    def begin_task(self, task: int, tasks: int, epochs: int, samples: int) -> None:
        if self.task_bar is None:
            self.bar.start()
        self.description = f"{self.label}task {task + 1}/{tasks} ({samples} images)"
        self.task_bar = self.bar.add_task(self.description, total=epochs)

    def batches(self, done: int, total: int) -> None:
        if self.epoch_bar is None:
            self.epoch_bar = self.bar.add_task("  batches", total=total)
        self.bar.update(self.epoch_bar, completed=done, total=total)

    def end_epoch(self, epoch: int, loss: float) -> None:
        if self.epoch_bar is not None:
            self.bar.remove_task(self.epoch_bar)
            self.epoch_bar = None
        if self.task_bar is not None:
            self.bar.update(self.task_bar, advance=1, description=f"{self.description}, loss {loss:.3f}")

    def end_task(self, average_accuracy: float) -> None:
        if self.task_bar is not None:
            self.bar.update(self.task_bar, description=f"{self.description}, accuracy {average_accuracy:.4f}")

    def close(self) -> None:
        self.bar.stop()


@dataclass(frozen=True)
class ContinualConfig:
    strategy: str = "gdumb"
    memory: int = 500
    tasks: int = 5
    classes_per_task: int = 2
    epochs: int = 1
    batch_size: int = 32
    seed: int = 0
    finetune: bool = False  # gdumb: keep training the current model on the memory instead of re-initialising it

    def check(self, num_classes: int) -> None:
        if self.strategy not in STRATEGIES:
            raise AttncError(f"unknown strategy '{self.strategy}' (known: {', '.join(STRATEGIES)})")
        if self.epochs < 1 or self.batch_size < 1:
            raise AttncError("epochs and batch size must be at least 1")
        class_incremental_tasks(num_classes, self.tasks, self.classes_per_task)


@dataclass
class EpochRecord:
    loss: float
    seconds: float
    cost: dict[str, float] | None


@dataclass
class TaskRecord:
    task: int
    classes: list[int]
    train_samples: int
    average_accuracy: float = 0.0
    task_accuracy: list[float] = field(default_factory=list)
    memory_counts: dict[int, int] | None = None
    epochs: list[EpochRecord] = field(default_factory=list)


def _in_classes(y: torch.Tensor, classes) -> torch.Tensor:
    return torch.isin(y, torch.tensor(list(classes), dtype=y.dtype))


def predict(trainer: Trainer, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Class predictions in batches of one size (the last padded with zero images): a compiled trainer builds one
    forward program per batch size, so test sets of any size cost one compilation (and the training batch size
    is known to fit the target's on-chip memory)."""
    padding = -len(x) % batch_size
    padded = torch.cat([x, x.new_zeros((padding, *x.shape[1:]))]) if padding else x
    return trainer.predict(padded, batch_size=batch_size)[: len(x)]


def forgetting(task_accuracy: list[list[float]]) -> list[float]:
    """Per earlier task j: its best accuracy after tasks j .. T-2 minus its accuracy after the last task T-1."""
    last = len(task_accuracy) - 1
    return [max(task_accuracy[t][j] for t in range(j, last)) - task_accuracy[last][j] for j in range(last)]


def cost_totals(epochs: list[EpochRecord]) -> dict[str, float] | None:
    """The sum of the epochs' cost-model figures (None without a cost model)."""
    costs = [epoch.cost for epoch in epochs if epoch.cost is not None]
    if not costs or len(costs) != len(epochs):
        return None
    return {key: sum(cost[key] for cost in costs) for key in costs[0]}


def run_continual(trainer: Trainer, data: ImageDataset, config: ContinualConfig,
                  progress: RunProgress | None = None) -> dict:
    """Runs the class-incremental sequence and returns the results (JSON-serialisable)."""
    config.check(data.num_classes)
    progress = progress or SilentProgress()
    tasks = class_incremental_tasks(data.num_classes, config.tasks, config.classes_per_task)
    memory = ClassBalancedMemory(config.memory, config.seed) if config.strategy == "gdumb" else None
    trainer.reset(config.seed)
    records: list[TaskRecord] = []
    for index, classes in enumerate(tasks):
        stream = _in_classes(data.y_train, classes)
        x_task, y_task = data.x_train[stream], data.y_train[stream]
        if memory is not None:
            memory.extend(x_task, y_task)
            x_fit, y_fit = memory.tensors()
            if not config.finetune:
                trainer.reset(config.seed)
        else:
            x_fit, y_fit = x_task, y_task
        record = TaskRecord(index, list(classes), len(y_fit), memory_counts=memory.counts() if memory else None)
        progress.begin_task(index, len(tasks), config.epochs, len(y_fit))
        for epoch in range(config.epochs):
            start = time.process_time()
            loss = trainer.train_epoch(x_fit, y_fit, batch_size=config.batch_size,
                                       seed=config.seed * 1_000_003 + 1000 * index + epoch, progress=progress.batches)
            record.epochs.append(EpochRecord(float(loss), time.process_time() - start, trainer.epoch_cost()))
            progress.end_epoch(epoch, float(loss))
        seen = _in_classes(data.y_test, [c for task in tasks[: index + 1] for c in task])
        y_seen = data.y_test[seen]
        correct = (predict(trainer, data.x_test[seen], config.batch_size) == y_seen).float()
        record.average_accuracy = correct.mean().item()
        record.task_accuracy = [correct[_in_classes(y_seen, earlier)].mean().item() for earlier in tasks[: index + 1]]
        records.append(record)
        progress.end_task(record.average_accuracy)
    per_task_forgetting = forgetting([record.task_accuracy for record in records])
    return {
        "data": {"name": data.name, "train": len(data.y_train), "test": len(data.y_test)},
        "config": asdict(config),
        "tasks": [list(classes) for classes in tasks],
        "average_accuracy": [record.average_accuracy for record in records],
        "task_accuracy": [record.task_accuracy for record in records],
        "final_average_accuracy": records[-1].average_accuracy,
        "forgetting": per_task_forgetting,
        "final_forgetting": sum(per_task_forgetting) / len(per_task_forgetting) if per_task_forgetting else 0.0,
        "after_task": [
            {**asdict(record), "cost": cost_totals(record.epochs),
             "seconds": sum(epoch.seconds for epoch in record.epochs)}
            for record in records
        ],
    }
