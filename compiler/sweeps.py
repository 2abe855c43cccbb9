"""A sweep engine: independent work items run by a runner, in this process or on Ray.

A *runner* is any class whose instances have ``run(items: list) -> list`` (one result per item, in order);
it is built once per worker from keyword arguments, so its expensive set-up (loading an artifact, building
an executor) is paid once per process. Items go to the runners in chunks.

``workers=1`` without an address runs in this process. Otherwise the items run on Ray actors: a local Ray
instance with ``workers`` processes by default, or an existing cluster given by ``address`` (``ray start
--head`` on one node; its nodes need attnc installed and the runner's inputs readable). Each actor uses one
torch thread: the processes are the parallelism. Results come back in item order whatever the engine, so a
sweep whose items are pure functions of their arguments gives the same results on any number of workers.

Used by the fault campaign (``attnc faults``) and the ClipFormer sweeps (bench/clipformer_sweeps.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_CHUNK = 16


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """``items`` cut into consecutive lists of at most ``size``."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


class _Worker:
    """One Ray actor: a single torch thread and one runner built from its keyword arguments."""

    def __init__(self, runner: type, kwargs: dict[str, Any]):
        import torch

        torch.set_num_threads(1)
        self.runner = runner(**kwargs)

    def run(self, numbered: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        indices = [index for index, _ in numbered]
        return list(zip(indices, self.runner.run([item for _, item in numbered])))


def run_items(
    runner: type,
    kwargs: dict[str, Any],
    items: Sequence[Any],
    workers: int = 1,
    address: str | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[list[Any], str]:
    """Runs ``runner(**kwargs).run`` over ``items``; returns the results in item order and the engine used.

    ``progress`` is called with the number of items each finished chunk held.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers == 1 and not address:
        local = runner(**kwargs)
        results: list[Any] = []
        for part in chunks(items, chunk):
            done = local.run(part)
            if len(done) != len(part):
                raise ValueError(f"{runner.__name__}.run returned {len(done)} results for {len(part)} items")
            results.extend(done)
            if progress:
                progress(len(part))
        return results, "in-process"
    import ray
    from ray.util import ActorPool

    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # Ray starts local workers 15 nice levels below the driver by default: on a shared machine they then
            # get a fraction of the CPU an in-process run gets. Same priority as the driver, unless set otherwise.
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        actor = ray.remote(num_cpus=1)(_Worker)
        pool = ActorPool([actor.remote(runner, kwargs) for _ in range(workers)])
        by_index: dict[int, Any] = {}
        numbered = list(enumerate(items))
        for done in pool.map_unordered(lambda a, part: a.run.remote(part), chunks(numbered, chunk)):
            by_index.update(done)
            if progress:
                progress(len(done))
    finally:
        if started:
            ray.shutdown()
    engine = f"ray ({address})" if address else f"ray (local, {workers} workers)"
    return [by_index[index] for index in range(len(items))], engine


def progress_bar(total: int, label: str) -> Callable[[int], None]:
    """A progress bar on stderr (gone when finished); returns the function that advances it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(label, total=total)
    bar.start()
    if total == 0:
        bar.stop()

    def advance(count: int) -> None:
        bar.advance(task, count)
        if bar.finished:
            bar.stop()

    return advance
