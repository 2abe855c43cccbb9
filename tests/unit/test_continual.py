"""Class-incremental learning: GDumb's memory, the task split, the metrics, and runs on digits."""

import gzip

import pytest
import torch

from compiler.continual import ClassBalancedMemory, ContinualConfig, forgetting, run_continual
from compiler.datasets import class_incremental_tasks, fashion_mnist_dir, load_dataset, read_idx
from compiler.errors import AttncError
from compiler.models import cl_vit_model
from compiler.torch_trainer import TorchTrainer


def offer(memory: ClassBalancedMemory, labels: list[int]) -> None:
    for label in labels:
        memory.add(torch.full((1,), float(label)), label)
        assert len(memory) <= memory.capacity


def test_memory_fills_then_stays_within_its_size_and_balanced():
    memory = ClassBalancedMemory(10, seed=0)
    offer(memory, [0] * 30 + [1] * 3)  # class 0 fills it; class 1 takes room from class 0
    assert memory.counts() == {0: 7, 1: 3}
    offer(memory, [1] * 30)
    assert memory.counts() == {0: 5, 1: 5}
    offer(memory, [2] * 30 + [3] * 30)  # each new class evicts from the largest one
    counts = memory.counts()
    assert len(memory) == 10 and set(counts) == {0, 1, 2, 3}
    assert max(counts.values()) - min(counts.values()) <= 1
    x, y = memory.tensors()
    assert torch.equal(x.flatten(), y.float()) and len(y) == 10  # each stored image kept its own label


def test_memory_keeps_every_sample_of_a_rare_class():
    memory = ClassBalancedMemory(12, seed=1)
    offer(memory, [0] * 50 + [1] * 2 + [2] * 50)
    # a new class grows to its share (12 / 3 classes = 4) by evicting from the largest; the rare one keeps both
    assert memory.counts() == {0: 6, 1: 2, 2: 4}


def test_memory_rejects_a_size_below_one():
    with pytest.raises(AttncError, match="at least one"):
        ClassBalancedMemory(0)


def test_tasks_split_classes_in_pairs():
    assert class_incremental_tasks(10, 5) == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert class_incremental_tasks(10, 2) == [(0, 1), (2, 3)]
    with pytest.raises(AttncError, match="6 tasks of 2 classes"):
        class_incremental_tasks(10, 6)


def test_forgetting_is_best_earlier_accuracy_minus_final():
    accuracy = [[0.9], [0.8, 0.95], [0.5, 0.6, 0.9]]
    assert forgetting(accuracy) == pytest.approx([0.4, 0.35])


def test_idx_reader_and_missing_fashion_mnist(tmp_path, monkeypatch):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (1).to_bytes(4, "big")
                                   + (3).to_bytes(4, "big") + bytes(range(6))))
    assert read_idx(path).tolist() == [[[0, 1, 2]], [[3, 4, 5]]]
    monkeypatch.setenv("ATTNC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(AttncError, match="Fashion-MNIST is not cached .* use --data digits"):
        fashion_mnist_dir()


def torch_trainer() -> TorchTrainer:
    return TorchTrainer(lambda: cl_vit_model(image_size=8), lr=0.05, momentum=0.9)


def test_gdumb_retraining_from_memory_is_reproducible_by_seed():
    data = load_dataset("digits", train_per_class=40, test_per_class=20)
    config = ContinualConfig(strategy="gdumb", memory=40, tasks=2, epochs=2, seed=3)
    first = run_continual(torch_trainer(), data, config)
    again = run_continual(torch_trainer(), data, config)
    assert first["task_accuracy"] == again["task_accuracy"]
    assert first["after_task"][1]["memory_counts"] == {0: 10, 1: 10, 2: 10, 3: 10}
    other = run_continual(torch_trainer(), data, ContinualConfig(strategy="gdumb", memory=40, tasks=2, epochs=2, seed=4))
    assert [r["epochs"][0]["loss"] for r in other["after_task"]] != [r["epochs"][0]["loss"] for r in first["after_task"]]
