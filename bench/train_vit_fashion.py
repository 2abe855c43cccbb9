"""Trains a DeiT-style ViT on Fashion-MNIST and ships the weights as the ``vit-fashion`` model.

Architecture: ``compiler.models.TinyViT`` (patch embedding, class token, learned positions, pre-norm blocks
with LayerNorm, softmax attention and a GELU MLP, a linear head) on 28×28 single-channel images cut into
7×7 patches (17 tokens), width 48, depth 6, 3 heads, MLP 192 (ratio 4, as DeiT). Sized so that training
fits about 15 minutes of one CPU core (12 epochs). Data: ``compiler.fashion.splits()`` (55,000 training images; the
last 5,000 training images are a validation split never trained on; the 10,000 test images are the test
split), pixels / 255. AdamW with a linear warm-up and cosine decay, a seeded shuffle and seeded
initialisation, no augmentation; the final epoch's weights are kept.

Writes ``compiler/assets/vit_fashion.safetensors`` (float32 state dict), ``compiler/assets/vit_fashion.json``
(config, splits, training settings, accuracies, versions, the command) and the shipped test slice
``compiler/assets/fashion_samples.safetensors`` (the first 256 test images as uint8, with labels).

Needs the Debian package dataset-fashion-mnist's files (see compiler/fashion.py). Run:
    ATTNC_FASHION_MNIST=DIR OMP_NUM_THREADS=1 .venv/bin/python bench/train_vit_fashion.py
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train_vit_digits import lr_factor  # noqa: E402  (the same schedule)

from compiler import fashion, models  # noqa: E402
from compiler.models import TinyViT  # noqa: E402

ASSETS_DIR = Path(models.__file__).resolve().parent / "assets"
CONFIG = {"image_size": 28, "patch_size": 7, "channels": 1, "dim": 48, "depth": 6, "heads": 3, "mlp_dim": 192,
          "num_classes": 10}


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode, in batches of 1,000."""
    model.eval()
    correct = sum(int((model(x).argmax(-1) == y).sum()) for x, y in zip(images.split(1000), labels.split(1000)))
    return correct / len(labels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup-steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=ASSETS_DIR)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    data = fashion.splits()
    x_train, y_train = data["train"]
    model = TinyViT(**CONFIG)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"TinyViT {CONFIG}: {parameters:,} parameters; " + ", ".join(f"{k} {len(v[1])}" for k, v in data.items()))

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(y_train) / args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, args.warmup_steps))
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
        print(f"epoch {epoch}  loss {total_loss / len(y_train):.4f}  validation {accuracy(model, *data['validation']):.4f}  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)

    accuracies = {name: accuracy(model, *split) for name, split in data.items()}
    seconds = time.perf_counter() - start
    print(f"final: {accuracies} ({seconds:.0f} s)")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = args.out_dir / models.VIT_FASHION_WEIGHTS
    save_file({name: t.detach().to(torch.float32).contiguous() for name, t in model.state_dict().items()}, str(weights_path))
    test_images, test_labels = fashion.raw_split("test")
    save_file({"images": test_images[: fashion.SAMPLES].contiguous(), "labels": test_labels[: fashion.SAMPLES].contiguous()},
              str(args.out_dir / fashion.SAMPLES_FILE))
    samples, labels = fashion.to_model_input(test_images[: fashion.SAMPLES]), test_labels[: fashion.SAMPLES]
    record = {
        "model": "TinyViT",
        "config": CONFIG,
        "parameters": parameters,
        "data": "Fashion-MNIST (Debian package dataset-fashion-mnist, idx.gz files)",
        "split": {"train": len(y_train), "validation": fashion.VALIDATION_SIZE, "test": len(data["test"][1]),
                  "validation_is": "the last 5,000 images of the official training set (not trained on)",
                  "shipped_samples": f"the first {fashion.SAMPLES} test images ({fashion.SAMPLES_FILE})"},
        "normalisation": "pixel / 255, giving [0, 1]",
        "image_shape": [1, 28, 28],
        "training": {
            "optimizer": "AdamW", "lr": args.lr, "weight_decay": args.weight_decay,
            "schedule": f"linear warm-up {args.warmup_steps} steps, cosine decay to 0",
            "batch_size": args.batch_size, "epochs": args.epochs, "seed": args.seed,
            "augmentation": None, "checkpoint": "final epoch",
        },
        "accuracy": {**accuracies, "shipped_samples": accuracy(model, samples, labels)},
        "train_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "command": shlex.join([".venv/bin/python", "bench/train_vit_fashion.py", *argv]),
    }
    (args.out_dir / models.VIT_FASHION_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {weights_path} ({weights_path.stat().st_size:,} bytes), the record and the samples")


if __name__ == "__main__":
    main()
