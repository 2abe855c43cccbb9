"""Trains the bundled TinyViT on scikit-learn's digits and ships the weights as the ``vit-digits`` model.

The architecture and config are ``vit-tiny``'s (TinyViT defaults: 8×8 single-channel images, 2×2 patches,
17 tokens, width 64, depth 4, 4 heads, MLP 128), small enough to ship: well under 1 MB in float32. Data is
``compiler.models.digits_split()``: a stratified split of the 1,797 images, 500 held out (``random_state=0``),
pixels scaled from 0..16 to [0, 1]. AdamW with a linear warm-up and cosine decay, a seeded shuffle and
seeded initialisation; the final epoch's weights are kept (the test split picks nothing).

Writes ``compiler/assets/vit_digits.safetensors`` (float32 state dict) and ``compiler/assets/vit_digits.json``
(config, split, normalisation, training settings, final train/test accuracy, versions, the command), which
``compiler.models.vit_digits`` reads back.

Run: .venv/bin/python bench/train_vit_digits.py        (about a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from compiler import models
from compiler.models import TinyViT, digits_split

ASSETS_DIR = Path(models.__file__).resolve().parent / "assets"


def tiny_vit_config() -> dict:
    """TinyViT's default constructor arguments: the config ``vit-tiny`` uses."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(TinyViT.__init__).parameters.items()
        if name != "self"
    }


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode (correct / total, as a Python float)."""
    model.eval()
    return int((model(images).argmax(dim=-1) == labels).sum()) / len(labels)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup-epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=ASSETS_DIR)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()

    x_train, y_train, x_test, y_test = digits_split()
    config = tiny_vit_config()
    model = TinyViT(**config)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"TinyViT {config}: {parameters:,} parameters; train {len(y_train)}, test {len(y_test)}")

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(y_train) / args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, args.warmup_epochs * steps_per_epoch)
    )
    shuffle = torch.Generator().manual_seed(args.seed)
    loss_fn = torch.nn.CrossEntropyLoss()

    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(y_train), generator=shuffle)
        total_loss = 0.0
        for batch in order.split(args.batch_size):
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(batch)
        if epoch == 1 or epoch % 5 == 0 or epoch == args.epochs:
            print(
                f"epoch {epoch:3d}  loss {total_loss / len(y_train):.4f}  "
                f"train {accuracy(model, x_train, y_train):.4f}  test {accuracy(model, x_test, y_test):.4f}  "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )

    train_accuracy = accuracy(model, x_train, y_train)
    test_accuracy = accuracy(model, x_test, y_test)
    seconds = time.perf_counter() - start
    print(f"final: train accuracy {train_accuracy:.4f}, test accuracy {test_accuracy:.4f} ({seconds:.0f} s)")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = args.out_dir / models.VIT_DIGITS_WEIGHTS
    state = {name: tensor.detach().to(torch.float32).contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(weights_path))

    import sklearn

    record = {
        "model": "TinyViT",
        "config": config,
        "parameters": parameters,
        "data": "sklearn.datasets.load_digits (1,797 8x8 images, 10 classes)",
        "split": {
            "function": "sklearn.model_selection.train_test_split",
            "test_size": models.DIGITS_TEST_SIZE,
            "random_state": models.DIGITS_RANDOM_STATE,
            "stratify": True,
            "train": len(y_train),
            "test": len(y_test),
        },
        "normalisation": f"pixel / {models.DIGITS_MAX_PIXEL:g} (digits pixels are integers 0..16), giving [0, 1]",
        "image_shape": [config["channels"], config["image_size"], config["image_size"]],
        "training": {
            "optimizer": "AdamW",
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "schedule": f"linear warm-up {args.warmup_epochs} epochs, cosine decay to 0",
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "seed": args.seed,
            "augmentation": None,
            "checkpoint": "final epoch",
        },
        "accuracy": {"train": train_accuracy, "test": test_accuracy},
        "train_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
        },
        "command": shlex.join([".venv/bin/python", "bench/train_vit_digits.py", *argv]),
    }
    record_path = args.out_dir / models.VIT_DIGITS_RECORD
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {weights_path} ({weights_path.stat().st_size:,} bytes) and {record_path}")


if __name__ == "__main__":
    main()
