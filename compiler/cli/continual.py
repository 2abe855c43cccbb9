"""``attnc train ... --strategy naive|gdumb``: the class-incremental options of ``attnc train`` and their command."""

from __future__ import annotations

import argparse
from pathlib import Path


def _add(parser: argparse.ArgumentParser, *names: str, **options) -> None:
    """Adds an option unless ``attnc train`` already has it (then the two share it)."""
    if not any(name in parser._option_string_actions for name in names):
        parser.add_argument(*names, **options)


def add_continual_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("class-incremental learning (with --strategy)")
    group.add_argument("--strategy", choices=("naive", "gdumb"), default=None,
                       help="class-incremental run: naive fine-tuning task by task, or GDumb (memory + retraining)")
    group.add_argument("--memory", type=int, default=500, help="GDumb: samples in the class-balanced memory")
    group.add_argument("--tasks", type=int, default=5, help="tasks of 2 classes each (5 covers the 10 classes)")
    group.add_argument("--data", default="fashion-mnist", help="fashion-mnist (cached on first use) or digits")
    group.add_argument("--finetune", action="store_true",
                       help="GDumb: keep training the model on the memory instead of re-initialising it each task")
    group.add_argument("--train-per-class", type=int, default=None, help="use this many training images per class")
    group.add_argument("--test-per-class", type=int, default=None, help="use this many test images per class")
    _add(parser, "--seed", type=int, default=0, help="initialisation, shuffling and memory seed")
    _add(parser, "--batch-size", type=int, default=32)


def cmd_continual(args, target_options: dict[str, str]) -> int:
    """Runs the class-incremental sequence, prints the accuracy after each task, writes OUT/results.json."""
    from compiler.continual import ContinualConfig
    from compiler.continual_run import RunChoices, run_and_write

    choices = RunChoices(spec=args.spec, target=args.target, target_options=target_options, data=args.data,
                         train_per_class=args.train_per_class, test_per_class=args.test_per_class, lr=args.lr,
                         momentum=args.momentum)
    config = ContinualConfig(strategy=args.strategy, memory=args.memory, tasks=args.tasks, epochs=args.epochs,
                             batch_size=args.batch_size, seed=args.seed, finetune=args.finetune)
    out = Path(args.output)
    results = run_and_write(choices, config, out)
    accuracies = " ".join(f"{a:.4f}" for a in results["average_accuracy"])
    print(f"{args.strategy} on {args.target}: accuracy over the classes seen after each task {accuracies}; "
          f"final forgetting {results['final_forgetting']:.4f}")
    print(f"wrote {out / 'results.json'}")
    return 0
