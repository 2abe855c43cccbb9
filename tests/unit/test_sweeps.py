"""The sweep engine (compiler/sweeps.py): chunking, item order, in process and on local Ray workers."""

from __future__ import annotations

import os

import pytest

from compiler import sweeps


class Squares:
    """A runner: squares its items, and says which process ran each one."""

    def __init__(self, offset: int = 0):
        self.offset = offset

    def run(self, items: list[int]) -> list[tuple[int, int]]:
        return [(item * item + self.offset, os.getpid()) for item in items]


class Broken:
    def __init__(self) -> None:
        pass

    def run(self, items: list[int]) -> list[int]:
        return items[1:]


def test_chunks_cover_items_in_order():
    assert sweeps.chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert sweeps.chunks([], 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        sweeps.chunks([1], 0)


def test_in_process_runs_every_item_in_order_and_reports_progress():
    seen: list[int] = []
    results, engine = sweeps.run_items(Squares, {"offset": 1}, list(range(10)), progress=seen.append, chunk=4)
    assert engine == "in-process"
    assert [value for value, _ in results] == [i * i + 1 for i in range(10)]
    assert {pid for _, pid in results} == {os.getpid()}
    assert seen == [4, 4, 2]


def test_a_runner_that_drops_results_is_an_error():
    with pytest.raises(ValueError, match="returned 1 results for 2 items"):
        sweeps.run_items(Broken, {}, [1, 2], chunk=2)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        sweeps.run_items(Squares, {}, [1], workers=0)


def test_ray_workers_give_the_in_process_results_in_item_order():
    items = list(range(23))
    seen: list[int] = []
    local, _ = sweeps.run_items(Squares, {"offset": 3}, items)
    distributed, engine = sweeps.run_items(Squares, {"offset": 3}, items, workers=2, progress=seen.append, chunk=5)
    assert engine == "ray (local, 2 workers)"
    assert [value for value, _ in distributed] == [value for value, _ in local]
    assert os.getpid() not in {pid for _, pid in distributed}  # the items ran in worker processes
    assert sum(seen) == len(items)
