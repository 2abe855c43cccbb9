"""Plain float PyTorch training with SGD: the ``torch`` baseline for class-incremental runs.

Eager PyTorch on the host, not a compiled target: it shows what the strategies reach without the compiler,
and lets their logic be tested quickly. Same protocol as the compiled trainers; it has no cost model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class TorchTrainer:
    """Trains ``factory()``'s model with SGD on cross-entropy; ``reset(seed)`` builds it afresh under that seed."""

    def __init__(self, factory: Callable[[], nn.Module], *, lr: float = 0.05, momentum: float = 0.0):
        self.factory = factory
        self.lr = lr
        self.momentum = momentum
        self.reset(0)

    def reset(self, seed: int) -> None:
        torch.manual_seed(seed)
        self.model = self.factory()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=self.momentum)

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, seed: int,
                    progress: Callable[[int, int], None] | None = None) -> float:
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        batches = [order[i : i + batch_size] for i in range(0, len(y), batch_size)]
        self.model.train()
        total = 0.0
        for done, batch in enumerate(batches, start=1):
            self.optimizer.zero_grad()
            loss = nn.functional.cross_entropy(self.model(x[batch]), y[batch])
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(batch)
            if progress is not None:
                progress(done, len(batches))
        self.model.eval()
        return total / len(y)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        self.model.eval()
        return torch.cat([self.model(x[i : i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)])

    def epoch_cost(self) -> dict[str, float] | None:
        return None
