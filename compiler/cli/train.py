"""``attnc train``: plain training of a bundled model on its data set with the compiled training step.

Everything of the subcommand is here (its arguments in ``add_train_command``, the run in ``cmd_train``), so a
later mode (continual learning) extends these two functions.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from compiler.cli.continual import add_continual_arguments, cmd_continual

RESULTS_FILE = "results.json"
TRAINED_WEIGHTS_FILE = "weights.safetensors"


def add_train_command(commands) -> argparse.ArgumentParser:
    """The ``train`` subparser."""
    train = commands.add_parser("train", help="train a bundled model on its data set with the compiled training step")
    train.add_argument("spec", help="a model with a data set (scikit-learn digits): vit-digits, vit-tiny, patch-digits")
    train.add_argument("--target", default="reference", help="reference (float32 executor) or tinycl (default reference)")
    train.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="a target option, e.g. --option total-bits=16 --option frac-bits=8 (repeatable)")
    train.add_argument("-p", "--pipeline", default="attn-raise",
                       help="forward passes the training step is built from, e.g. 'attn-raise,attn-cosine' (attn-raise)")
    train.add_argument("--epochs", type=int, default=1, help="passes over the training set (1)")
    train.add_argument("--lr", type=float, default=0.02, help="SGD learning rate (0.02)")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum, in [0, 1) (0.9)")
    train.add_argument("--batch-size", type=int, default=16, help="samples per training step (16)")
    train.add_argument("--seed", type=int, default=0, help="initial parameters and epoch order: same seed, same run (0)")
    train.add_argument("-o", "--output", required=True, help=f"directory for {TRAINED_WEIGHTS_FILE} and {RESULTS_FILE}")
    add_continual_arguments(train)
    return train


def _options(pairs: list[str]) -> dict[str, str]:
    from compiler.errors import AttncError

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AttncError(f"--option takes KEY=VALUE, got '{pair}'")
        options[key] = value
    return options


def _progress(description: str):
    """A transient progress bar on stderr: (advance(done, total), stop())."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(description, total=None)
    bar.start()

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return advance, bar.stop


def cmd_train(args) -> int:
    """Trains from fresh parameters (seeded), prints the loss and held-out accuracy per epoch, writes OUT."""
    from safetensors.torch import save_file

    from compiler.artifacts import check_output_directory, write_directory
    from compiler.errors import AttncError
    from compiler.training import compiled_trainer, training_data

    if args.strategy is not None:  # class-incremental run (compiler/cli/continual.py)
        if args.pipeline != "attn-raise":
            raise AttncError("-p/--pipeline applies to plain training; a --strategy run compiles its model as it is")
        return cmd_continual(args, _options(args.option))
    if args.epochs < 1:
        raise AttncError(f"--epochs must be at least 1, got {args.epochs}")
    check_output_directory(Path(args.output))
    model, example, (x_train, y_train, x_test, y_test) = training_data(args.spec)
    options = _options(args.option)
    trainer = compiled_trainer(model, example, args.target, lr=args.lr, momentum=args.momentum,
                               target_options=options, batch_size=args.batch_size, pipeline=args.pipeline)
    trainer.reset(args.seed)
    start = time.perf_counter()

    def accuracy() -> float:
        return float((trainer.predict(x_test) == y_test).float().mean())

    before = accuracy()
    print(f"{args.spec} on {args.target}: held-out accuracy before training {100 * before:.1f} % "
          f"({len(x_test)} images; {len(x_train)} training images)")
    losses, accuracies, costs = [], [], []
    for epoch in range(args.epochs):
        advance, stop = _progress(f"epoch {epoch + 1}/{args.epochs}")
        try:
            loss = trainer.train_epoch(x_train, y_train, batch_size=args.batch_size, seed=args.seed + epoch, progress=advance)
        finally:
            stop()
        losses.append(loss)
        accuracies.append(accuracy())
        costs.append(trainer.epoch_cost())
        print(f"epoch {epoch + 1}/{args.epochs}: mean loss {loss:.4f}, held-out accuracy {100 * accuracies[-1]:.1f} %")
    results = {
        "spec": args.spec,
        "target": args.target,
        "target_options": options,
        "pipeline": args.pipeline,
        "epochs": args.epochs,
        "lr": args.lr,
        "momentum": args.momentum,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "train_samples": len(x_train),
        "test_samples": len(x_test),
        "accuracy_before": before,
        "accuracy_after": accuracies[-1],
        "epoch_losses": losses,
        "epoch_accuracies": accuracies,
        "epoch_costs": costs,
        "seconds": time.perf_counter() - start,
        "remarks": [str(note) for note in getattr(trainer, "remarks", [])],  # what the lowering left on the host
    }
    state = getattr(trainer, "state_dict", None)
    weights = state() if callable(state) else {}

    def write_files(directory: Path) -> None:
        save_file({k: v.detach().contiguous() for k, v in weights.items()}, str(directory / TRAINED_WEIGHTS_FILE))
        (directory / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")

    outdir = write_directory(args.output, write_files)
    if results["remarks"]:
        print(f"{len(results['remarks'])} remarks of the lowering (what stays on the host) are in {RESULTS_FILE}")
    print(f"wrote {outdir / TRAINED_WEIGHTS_FILE} (trained parameters, the model's own names) and {outdir / RESULTS_FILE}")
    return 0
