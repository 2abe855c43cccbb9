"""Cottention trained from scratch on a classification task: a small ViT encoder, softmax vs cosine attention.

The encoder is ``compiler.models.TinyViT`` (patch embedding, class token, learned positions, pre-norm blocks with
LayerNorm and a GELU MLP, linear head on the class token), rebuilt here in plain PyTorch with the same parameter
names so that it trains without the compiler (and without xDSL, on a GPU machine):

- **softmax:** q kᵀ / sqrt(d), softmax, times v (TinyViT's ``ViTAttention``);
- **cosine:** bidirectional cosine attention, ``runtime.cosine_kernels.cosine_attention_parallel``:
  N(q) (N(k)ᵀ v) / L^s with L = 17 or 50 tokens and s = sigmoid(m), one learned m per head
  (``blocks.<i>.attn.cosine_m``, initialised to 0.5 like ``attn-cosine``'s parameter).

Same budget for both: the same initial weights (m is added after the random draws), the same shuffled batches
(one seeded generator), AdamW with the same warm-up and cosine schedule, the same number of epochs. Data:
Fashion-MNIST (read from the idx.gz files, see compiler/fashion.py): 55,000 training images, the last 5,000 of the
official training set as validation, the 10,000 test images as test; pixels / 255.

``--train`` trains every (seed, attention) job and writes OUT/summary.json and OUT/encoder_runs.tar.gz (weights);
``--report --from OUT`` then loads the weights into ``TinyViT`` (softmax: compiled with ``attn-raise``; cosine:
``attn-raise,attn-cosine`` with the trained m) and measures test accuracy with PyTorch and through the attnc
executor, writing .md/.json/.png. Sizes: ``small`` (CPU, minutes) and ``large`` (for a GPU).

Run (CPU): OMP_NUM_THREADS=1 .venv/bin/python bench/cottention_encoder.py --train --size small --out-dir OUT
           .venv/bin/python bench/cottention_encoder.py --report --from OUT --out bench/results/cottention_encoder
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import platform
import shlex
import struct
import sys
import tarfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.cosine_kernels import cosine_attention_parallel  # noqa: E402

COSINE_M_INIT = 0.5
SIZES = {
    "small": {"config": {"image_size": 28, "patch_size": 7, "channels": 1, "dim": 32, "depth": 2, "heads": 4,
                         "mlp_dim": 64, "num_classes": 10}, "epochs": 5, "batch": 128, "lr": 2e-3},
    "medium": {"config": {"image_size": 28, "patch_size": 7, "channels": 1, "dim": 48, "depth": 4, "heads": 4,
                          "mlp_dim": 192, "num_classes": 10}, "epochs": 6, "batch": 128, "lr": 2e-3},
    "large": {"config": {"image_size": 28, "patch_size": 4, "channels": 1, "dim": 96, "depth": 6, "heads": 4,
                         "mlp_dim": 384, "num_classes": 10}, "epochs": 15, "batch": 256, "lr": 1e-3},
}
DATA_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
VALIDATION_SIZE = 5000
ARCHIVE = "encoder_runs.tar.gz"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------------------------------
# Data (the idx reader of compiler/fashion.py, without the compiler import)
# --------------------------------------------------------------------------------------------------------------


def read_idx(path: Path) -> torch.Tensor:
    data = gzip.decompress(path.read_bytes())
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit(f"{path}: not an idx file of unsigned bytes")
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).reshape(shape)


def load_splits(directory: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """train / validation / test as (float32 (N, 1, 28, 28) in [0, 1], int64 labels), as compiler.fashion.splits."""
    raw = {name: (read_idx(directory / images), read_idx(directory / labels).long())
           for name, (images, labels) in DATA_FILES.items()}

    def model_input(images: torch.Tensor) -> torch.Tensor:
        return images.float().div(255.0).unsqueeze(1)

    cut = len(raw["train"][1]) - VALIDATION_SIZE
    return {
        "train": (model_input(raw["train"][0][:cut]), raw["train"][1][:cut]),
        "validation": (model_input(raw["train"][0][cut:]), raw["train"][1][cut:]),
        "test": (model_input(raw["test"][0]), raw["test"][1]),
    }


def default_data_directory() -> Path:
    for candidate in (os.environ.get("ATTNC_FASHION_MNIST"), Path(__file__).resolve().parent / ".cache" / "fashion-mnist",
                      "/usr/share/datasets/fashion-mnist", Path.home() / ".cache" / "attnc" / "fashion-mnist"):
        if candidate and (Path(candidate) / DATA_FILES["test"][0]).is_file():
            return Path(candidate)
    raise SystemExit("Fashion-MNIST idx.gz files not found: pass --data DIR (see compiler/fashion.py)")


# --------------------------------------------------------------------------------------------------------------
# The encoder, TinyViT's parameter names
# --------------------------------------------------------------------------------------------------------------


class PatchEmbedding(nn.Module):
    def __init__(self, image_size: int, patch_size: int, channels: int, dim: int):
        super().__init__()
        self.patch_size, self.grid = patch_size, image_size // patch_size
        self.proj = nn.Linear(channels * patch_size * patch_size, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = images.shape
        p, g = self.patch_size, self.grid
        return self.proj(images.reshape(b, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, c * p * p))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, attention: str):
        super().__init__()
        self.heads, self.attention = heads, attention
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2) for y in (self.query(x), self.key(x), self.value(x)))
        with torch.autocast(x.device.type, enabled=False):  # attention in float32 for both kinds
            q, k, v = q.float(), k.float(), v.float()
            if self.attention == "cosine":
                context = cosine_attention_parallel(q, k, v, self.cosine_m.float())
            else:
                context = F.scaled_dot_product_attention(q, k, v)
        return self.out(context.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, attention: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, attention)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """TinyViT in plain PyTorch; ``attention`` is "softmax" or "cosine"."""

    def __init__(self, image_size, patch_size, channels, dim, depth, heads, mlp_dim, num_classes, attention="softmax"):
        super().__init__()
        self.patches = PatchEmbedding(image_size, patch_size, channels, dim)
        tokens = (image_size // patch_size) ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_dim, attention) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        if attention == "cosine":  # after every random draw: the same initial weights as the softmax encoder
            for block in self.blocks:
                block.attn.cosine_m = nn.Parameter(torch.full((heads,), COSINE_M_INIT))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patches(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))


@torch.no_grad()
def accuracy(run, images: torch.Tensor, labels: torch.Tensor, batch: int) -> float:
    """Top-1 accuracy of ``run(images) -> logits`` in batches of exactly ``batch`` (the last one padded)."""
    correct = 0
    for first in range(0, len(labels), batch):
        chunk = images[first : first + batch]
        real = len(chunk)
        if real < batch:
            chunk = torch.cat([chunk, images[: batch - real]])
        correct += int((run(chunk)[:real].argmax(-1).cpu() == labels[first : first + real]).sum())
    return correct / len(labels)


# --------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------


def train_job(size: str, attention: str, seed: int, data, device: str, amp: bool) -> tuple[dict, dict]:
    settings = SIZES[size]
    torch.manual_seed(seed)
    model = Encoder(**settings["config"], attention=attention).to(device).train()
    decay = [p for p in model.parameters() if p.dim() >= 2 and p.shape[0] != 1]  # not cls_token / pos_embedding
    rest = [p for p in model.parameters() if not (p.dim() >= 2 and p.shape[0] != 1)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
                                  lr=settings["lr"])
    images, labels = (t.to(device) for t in data["train"])
    steps_per_epoch = len(labels) // settings["batch"]
    total = steps_per_epoch * settings["epochs"]
    warmup = max(1, total // 20)

    def rate(step: int) -> float:
        return (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    generator = torch.Generator().manual_seed(seed)
    curve, validation_curve = [], []
    start = time.perf_counter()
    for epoch in range(settings["epochs"]):
        order = torch.randperm(len(labels), generator=generator).to(device)
        losses = []
        for step in range(steps_per_epoch):
            index = order[step * settings["batch"] : (step + 1) * settings["batch"]]
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=amp):
                logits = model(images[index])
            loss = F.cross_entropy(logits.float(), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())
        curve.append(torch.stack(losses).mean().item())
        model.eval()
        validation_curve.append(accuracy(model, data["validation"][0].to(device), data["validation"][1], 1000))
        model.train()
        log(f"{size}-{attention}-s{seed}: epoch {epoch + 1} loss {curve[-1]:.4f} validation {validation_curve[-1]:.4f}")
    seconds = time.perf_counter() - start
    model.eval()
    record = {
        "name": f"{size}-{attention}-s{seed}", "size": size, "attention": attention, "seed": seed,
        "settings": settings, "parameters": sum(p.numel() for p in model.parameters()),
        "steps": total, "seconds": seconds, "train_loss_per_epoch": curve, "validation_accuracy_per_epoch": validation_curve,
        "test_accuracy_device": accuracy(model, data["test"][0].to(device), data["test"][1], 1000),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.machine(),
        "torch": torch.__version__, "amp": "bf16 autocast (linear layers); attention float32" if amp else "float32",
    }
    if attention == "cosine":
        s = torch.sigmoid(torch.stack([b.attn.cosine_m.detach().float().cpu() for b in model.blocks]))
        record["s_after"] = {"min": s.min().item(), "mean": s.mean().item(), "max": s.max().item()}
    log(f"{record['name']}: test accuracy {record['test_accuracy_device']:.4f} ({seconds:.0f} s)")
    weights = {n: t.detach().cpu().contiguous() for n, t in model.state_dict().items()}
    return weights, record


def train_all(args: argparse.Namespace) -> int:
    from safetensors.torch import save

    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        torch.set_num_threads(args.threads)
    data = load_splits(args.data or default_data_directory())
    if args.train_limit is not None:
        data["train"] = tuple(t[: args.train_limit] for t in data["train"])
    if args.epochs is not None:
        SIZES[args.size] = {**SIZES[args.size], "epochs": args.epochs}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    records, buffer = [], io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for seed in (int(s) for s in args.seeds.split(",")):
            for attention in ("softmax", "cosine"):
                weights, record = train_job(args.size, attention, seed, data, args.device, args.amp)
                records.append(record)
                blob = save(weights)
                info = tarfile.TarInfo(f"{record['name']}.safetensors")
                info.size = len(blob)
                archive.addfile(info, io.BytesIO(blob))
    (args.out_dir / ARCHIVE).write_bytes(buffer.getvalue())
    (args.out_dir / "summary.json").write_text(json.dumps({"records": records}, indent=1))
    return 0


# --------------------------------------------------------------------------------------------------------------
# Report (here: TinyViT in PyTorch and through the attnc executor)
# --------------------------------------------------------------------------------------------------------------


def evaluate_here(record: dict, weights: dict, data, batch: int) -> dict:
    from compiler.api import ModelSpec, compile_model
    from compiler.models import TinyViT
    from runtime.executor import Executor

    config = record["settings"]["config"]
    images, labels = data["test"]
    plain = Encoder(**config, attention=record["attention"]).eval()
    plain.load_state_dict(weights, strict=True)
    eager = TinyViT(**config).eval()  # softmax architecture: what attn-raise matches
    eager.load_state_dict({n: t for n, t in weights.items() if not n.endswith("cosine_m")}, strict=True)
    example = images[:batch]
    pipeline = "attn-raise,attn-cosine" if record["attention"] == "cosine" else "attn-raise"
    compiled = compile_model(ModelSpec(f"encoder-{record['attention']}", eager, (example,)), pipeline)
    for name in [n for n in compiled.weights if n.endswith("cosine_m")]:
        compiled.weights[name] = weights[name].clone()
    executor = Executor(compiled.module, compiled.weights)
    with torch.no_grad():
        reference = plain(example)
        error = (executor(example)[0] - reference).abs().max().item()
    start = time.perf_counter()
    torch_accuracy = accuracy(plain, images, labels, batch)
    attnc_accuracy = accuracy(lambda x: executor(x)[0], images, labels, batch)
    return {
        "test_accuracy_torch_here": torch_accuracy,
        "test_accuracy_attnc": attnc_accuracy,
        "max_abs_logit_error": error,
        "max_abs_logit": reference.abs().max().item(),
        "attention_ops": sorted({op.name for op in compiled.module.walk() if op.name.startswith("attn.")}),
        "pipeline": pipeline,
        "seconds_eval_here": time.perf_counter() - start,
    }


def report(args: argparse.Namespace) -> int:
    from safetensors.torch import load

    wall = time.perf_counter()
    torch.set_num_threads(args.threads)
    data = load_splits(args.data or default_data_directory())
    records, blobs = [], {}
    for source in args.source:
        records += json.loads((source / "summary.json").read_text())["records"]
        with tarfile.open(source / ARCHIVE, mode="r:gz") as archive:
            blobs.update({m.name.removesuffix(".safetensors"): archive.extractfile(m).read() for m in archive.getmembers()})
    records.sort(key=lambda r: (list(SIZES).index(r["size"]), r["seed"], r["attention"] != "softmax"))
    rows = []
    for record in records:
        row = dict(record)
        row.update(evaluate_here(record, {n: t.float() for n, t in load(blobs[record["name"]]).items()}, data, args.eval_batch))
        log(f"{record['name']}: device {row['test_accuracy_device']:.4f}, PyTorch here {row['test_accuracy_torch_here']:.4f}, "
            f"attnc {row['test_accuracy_attnc']:.4f}")
        rows.append(row)
    command = f".venv/bin/python {' '.join(shlex.quote(a) for a in sys.argv)}"
    lines = [
        f"Command: `{command}`", "",
        "| size | attention | seed | parameters | epochs (steps) | final train loss | validation acc | test acc (device) "
        "| test acc (PyTorch here) | test acc (attnc executor) | max abs logit error attnc vs PyTorch | train time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['size']} | {row['attention']} | {row['seed']} | {row['parameters']:,} | {row['settings']['epochs']} "
            f"({row['steps']:,}) | {row['train_loss_per_epoch'][-1]:.4f} | {row['validation_accuracy_per_epoch'][-1]:.4f} "
            f"| {row['test_accuracy_device']:.4f} | {row['test_accuracy_torch_here']:.4f} | {row['test_accuracy_attnc']:.4f} "
            f"| {row['max_abs_logit_error']:.1e} (of {row['max_abs_logit']:.1f}) | {row['seconds']:.0f} s |"
        )
    lines += ["", "| size | attention | test accuracy (attnc executor), mean over seeds | per seed |", "|---|---|---:|---|"]
    for size in [s for s in SIZES if any(r["size"] == s for r in rows)]:
        for attention in ("softmax", "cosine"):
            values = [r["test_accuracy_attnc"] for r in rows if r["attention"] == attention and r["size"] == size]
            lines.append(f"| {size} | {attention} | {sum(values) / len(values):.4f} | {', '.join(f'{v:.4f}' for v in values)} |")
    lines += ["", "| setting | value |", "|---|---|"]
    for size in [s for s in SIZES if any(r["size"] == s for r in rows)]:
        row = next(r for r in rows if r["size"] == size)
        config, settings = row["settings"]["config"], row["settings"]
        lines += [
            f"| {size}: encoder | TinyViT: {config['image_size']}² images, patch {config['patch_size']} "
            f"({(config['image_size'] // config['patch_size']) ** 2 + 1} tokens with the class token), width {config['dim']}, "
            f"depth {config['depth']}, {config['heads']} heads, MLP {config['mlp_dim']} |",
            f"| {size}: training (both attentions) | AdamW lr {settings['lr']:g} (warm-up 5 %, cosine decay), weight decay "
            f"0.05, batch {settings['batch']}, {settings['epochs']} epochs, gradient clip 1.0, no augmentation; {row['amp']}; "
            f"on {row['device']}, torch {row['torch']} |",
        ]
    lines += [
        "| data | Fashion-MNIST: 55,000 train, 5,000 validation (last of the official train set), 10,000 test |",
        "| cosine attention | `runtime.cosine_kernels.cosine_attention_parallel`, m per head initialised to 0.5; s after "
        "training: "
        + ", ".join(f"{r['name']} {r['s_after']['min']:.2f}–{r['s_after']['max']:.2f}" for r in rows if "s_after" in r)
        + " |",
        f"| compiled with (here) | softmax `attn-raise`; cosine `attn-raise,attn-cosine` + trained m; evaluated on "
        f"{platform.machine()}, torch {torch.__version__}, report run {time.perf_counter() - wall:.0f} s |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
        args.out.with_suffix(".md").write_text(text + "\n")
        plot(rows, args.out.with_suffix(".png"))
    return 0


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for row in rows:
        curve = row["validation_accuracy_per_epoch"]
        ax.plot(range(1, len(curve) + 1), curve, "-" if row["seed"] == 0 else ":",
                color="tab:blue" if row["attention"] == "softmax" else "tab:red",
                label=f"{row['attention']} s{row['seed']} (test {row['test_accuracy_attnc']:.3f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--train", action="store_true")
    mode.add_argument("--report", action="store_true")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=None, help="override the size's epochs (checks)")
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training images (checks)")
    parser.add_argument("--data", type=Path, default=None, help="folder of the Fashion-MNIST idx.gz files")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for the linear layers (cuda)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", type=Path)
    parser.add_argument("--from", dest="source", type=Path, nargs="+", help="one or more --train output folders")
    parser.add_argument("--eval-batch", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.train and args.out_dir is None:
        parser.error("--train needs --out-dir")
    if args.report and args.source is None:
        parser.error("--report needs --from")
    return train_all(args) if args.train else report(args)


if __name__ == "__main__":
    sys.exit(main())
