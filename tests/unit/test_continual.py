"""Class-incremental learning: GDumb's memory, the task split, the metrics, and runs on digits."""

import gzip
import json

import pytest
import torch

from compiler.cli.main import main
from compiler.continual import ClassBalancedMemory, ContinualConfig, forgetting, run_continual
from compiler.continual_run import RunChoices, make_trainer
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


def test_gdumb_retraining_from_memory_is_reproducible_by_seed():
    """GDumb re-initialises from the seed after each task and retrains on the memory: the same seed gives the
    same run on the compiled training step (one trainer, so one compilation), another seed another run."""
    data = load_dataset("digits", train_per_class=30, test_per_class=10)
    trainer = make_trainer(RunChoices(spec="vit-cl", target="reference", data="digits"), data, batch_size=20)

    def run(seed: int) -> dict:
        return run_continual(trainer, data, ContinualConfig(strategy="gdumb", memory=40, tasks=2, epochs=3,
                                                            batch_size=20, seed=seed))

    first, again, other = run(3), run(3), run(4)
    assert first["after_task"][1]["memory_counts"] == {0: 10, 1: 10, 2: 10, 3: 10}
    assert first["task_accuracy"] == again["task_accuracy"]
    assert [t["epochs"] for t in first["after_task"]] != [t["epochs"] for t in other["after_task"]]
    assert [t["epochs"][0]["loss"] for t in first["after_task"]] == [t["epochs"][0]["loss"] for t in again["after_task"]]


def test_torch_baseline_learns_the_first_task():
    data = load_dataset("digits", train_per_class=30, test_per_class=10)
    trainer = TorchTrainer(lambda: cl_vit_model(image_size=8), lr=0.05, momentum=0.9)
    results = run_continual(trainer, data, ContinualConfig(strategy="naive", tasks=1, epochs=10, batch_size=20))
    assert results["average_accuracy"][0] >= 0.9


def train_cli(out, strategy: str) -> dict:
    code = main(["train", "vit-cl", "--target", "tinycl", "--strategy", strategy, "--data", "digits", "--tasks", "2",
                 "--memory", "40", "--epochs", "20", "--batch-size", "20", "--lr", "0.05", "--momentum", "0.9",
                 "--train-per-class", "30", "--test-per-class", "10", "-o", str(out)])
    assert code == 0
    return json.loads((out / "results.json").read_text())


def test_gdumb_beats_naive_on_two_digit_tasks_on_tinycl(tmp_path):
    """attnc train --strategy on the TinyCL target (16/8 fixed point): naive fine-tuning forgets the first task,
    GDumb keeps it and ends ahead over the four classes seen."""
    naive = train_cli(tmp_path / "naive", "naive")
    gdumb = train_cli(tmp_path / "gdumb", "gdumb")
    for results in (naive, gdumb):
        assert results["target"] == "tinycl" and results["tasks"] == [[0, 1], [2, 3]]
        assert [len(task["epochs"]) for task in results["after_task"]] == [20, 20]
    assert gdumb["after_task"][1]["train_samples"] == 40  # retrained from the memory alone
    assert naive["task_accuracy"][1][0] <= 0.1  # the first task is forgotten
    assert gdumb["task_accuracy"][1][0] >= 0.5
    assert gdumb["final_average_accuracy"] > naive["final_average_accuracy"]
    assert gdumb["final_forgetting"] < naive["final_forgetting"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["vit-digits", "--strategy", "naive"], "class-incremental runs take the models vit-cl, vit-cl-cosine"),
        (["vit-cl", "--strategy", "gdumb", "--data", "cifar"], "unknown data set 'cifar'"),
        (["vit-cl", "--strategy", "gdumb", "--data", "digits", "--tasks", "6"], "6 tasks of 2 classes"),
        (["vit-cl", "--strategy", "gdumb", "--data", "digits", "--memory", "0"], "at least one sample"),
    ],
)
def test_train_strategy_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main(["train", *argv, "-o", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("attnc: error: ") and message in error[-1]
    assert not (tmp_path / "out").exists()
