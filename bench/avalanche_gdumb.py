"""Anchor for bench/tinycl_cl.py: Avalanche's own GDumb and Naive strategies on the same split, model and data.

Avalanche (avalanche-lib) needs a newer torch and torchvision than attnc pins, so this runs in a separate,
bench-only virtual environment, never in attnc's:

    python -m venv /tmp/aval && /tmp/aval/bin/pip install avalanche-lib "xdsl==0.74.*"
    OMP_NUM_THREADS=1 /tmp/aval/bin/python bench/avalanche_gdumb.py --seeds 0 --memories 500

It imports attnc's data loader and model from this checkout (same Fashion-MNIST subset, same untrained
``vit-cl`` architecture, same SGD settings), trains with Avalanche's strategies, and measures the accuracy over the
classes seen after each task as compiler/continual.py does. Results go to bench/results/tinycl_cl/avalanche/,
which bench/tinycl_cl.py's report reads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.datasets import load_dataset  # noqa: E402
from compiler.models import cl_vit_model  # noqa: E402

OUT = ROOT / "bench" / "results" / "tinycl_cl" / "avalanche"


class LabelledTensors(torch.utils.data.TensorDataset):
    """Images and labels with the ``targets`` attribute Avalanche's generators read."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        super().__init__(x, y)
        self.targets = y.tolist()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x[i : i + 256]).argmax(-1) for i in range(0, len(x), 256)])
    return (predicted == y).float().mean().item()


def run(strategy_name: str, memory: int, seed: int, args) -> dict:
    from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.supervised import GDumb, Naive

    data = load_dataset("fashion-mnist", args.train_per_class, args.test_per_class, seed=seed)
    benchmark = nc_benchmark(LabelledTensors(data.x_train, data.y_train), LabelledTensors(data.x_test, data.y_test),
                             n_experiences=5, task_labels=False, fixed_class_order=list(range(10)), seed=seed)
    torch.manual_seed(seed)
    model = cl_vit_model("softmax", 28)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    common = dict(criterion=torch.nn.CrossEntropyLoss(),
                  train_mb_size=args.batch_size, train_epochs=args.epochs, eval_mb_size=256, device="cpu",
                  evaluator=EvaluationPlugin(loggers=[]))
    if strategy_name == "gdumb":
        strategy = GDumb(model=model, optimizer=optimizer, mem_size=memory, **common)
    else:
        strategy = Naive(model=model, optimizer=optimizer, **common)
    tasks = [tuple(range(2 * t, 2 * t + 2)) for t in range(5)]
    average, per_task = [], []
    start = time.time()
    for index, experience in enumerate(benchmark.train_stream):
        strategy.train(experience)
        seen = torch.isin(data.y_test, torch.tensor([c for task in tasks[: index + 1] for c in task]))
        average.append(accuracy(strategy.model, data.x_test[seen], data.y_test[seen]))
        per_task.append([accuracy(strategy.model, data.x_test[torch.isin(data.y_test, torch.tensor(task))],
                                  data.y_test[torch.isin(data.y_test, torch.tensor(task))]) for task in tasks[: index + 1]])
    last = len(per_task) - 1  # forgetting as compiler/continual.py measures it (not imported: it needs the compiler)
    lost = [max(per_task[t][j] for t in range(j, last)) - per_task[last][j] for j in range(last)]
    return {"strategy": strategy_name, "memory": memory if strategy_name == "gdumb" else 0, "seed": seed,
            "epochs": args.epochs, "train": len(data.y_train), "test": len(data.y_test), "average_accuracy": average,
            "task_accuracy": per_task, "final_forgetting": sum(lost) / len(lost), "wall_seconds": time.time() - start,
            "avalanche": __import__("avalanche").__version__, "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=["naive", "gdumb"])
    parser.add_argument("--memories", nargs="+", type=int, default=[500])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for strategy in args.strategies:
            for memory in (args.memories if strategy == "gdumb" else [0]):
                path = OUT / f"{strategy}_m{memory}_s{seed}_e{args.epochs}_n{args.train_per_class}.json"
                if path.exists():
                    continue
                results = run(strategy, memory, seed, args)
                path.write_text(json.dumps(results, indent=1))
                print(path.name, [round(a, 3) for a in results["average_accuracy"]], flush=True)


if __name__ == "__main__":
    main()
