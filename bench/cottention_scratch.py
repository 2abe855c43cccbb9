"""Cottention trained from scratch: softmax vs cosine attention, same budget, test perplexity side by side.

Two byte-level GPT-2 models per size, identical in everything but the attention (bench/cosine_lm_perplexity.py
holds the model, the Wikipedia-summaries data, its article split and the training loop, all reused here):

- **softmax:** HF ``GPT2LMHeadModel`` with eager attention;
- **cosine:** the same model whose attention is the compiler's ``attn.cosine`` causal form, computed while
  training by the differentiable kernel ``runtime.cosine_kernels.cosine_attention_causal`` (registered as a
  Hugging Face attention function), with one learned scalar m per head (``<layer>.attn.cosine_m``, initialised
  to 0.5 like ``attn-cosine``'s parameter; s = sigmoid(m), values at key position j divided by max(1, j^s), no
  softmax, no 1/sqrt(d)).

Same budget for both: the same train windows in the same order (one seeded generator), the same initial
weights (seeded before the model is built; m is added afterwards without drawing random numbers), the same
AdamW settings, warm-up and cosine schedule, the same number of steps. The cosine model has one parameter
more per head (m).

Then the trained cosine model goes through the compiler: its weights (without m) are loaded into the eager
softmax architecture, compiled with ``attn-raise,attn-cosine{causal=true}``, the trained m values replace the
pass's initial ones, and the attnc executor's logits and perplexity are checked against the PyTorch cosine
model. The softmax model is compiled with ``attn-raise`` and checked the same way.

Perplexity is per byte on all non-overlapping 129-byte test windows (see cosine_lm_perplexity.py). Trained
weights are cached under ``~/.cache/attnc/cosine_lm/<key>/`` (softmax, shared with cosine_lm_perplexity.py when
the settings match) and ``<key>/cosine-scratch/`` (cosine), each with its evaluation (``eval.json``).
``--train-only`` fills the cache for some sizes and attentions (to train them in parallel processes); the report
run then reads everything from the cache.

Run: .venv/bin/python bench/cottention_scratch.py --out bench/results/cottention_scratch
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cosine_lm_perplexity as lm_bench  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from compiler.api import ModelSpec, compile_model  # noqa: E402
from runtime.cosine_kernels import cosine_attention_causal  # noqa: E402

COSINE_ATTENTION = "attnc_cosine_causal"
COSINE_M_INIT = 0.5  # attn-cosine's initial m
SIZES = {  # steps: what fits ~15-30 min of one shared core per model
    "S": {"layers": 2, "width": 64, "heads": 2, "steps": 1000},
    "M": {"layers": 4, "width": 128, "heads": 4, "steps": 300},
    "L": {"layers": 4, "width": 256, "heads": 8, "steps": 500},
}
EVAL_KEYS = ("ppl_", "tokens", "max_abs_logit", "attention_ops", "seconds_")
PAPER = {"softmax": 10.3, "cosine": 11.6, "params": "300 M"}  # the Cottention paper's Pile perplexities


# --------------------------------------------------------------------------------------------------------------
# The cosine model
# --------------------------------------------------------------------------------------------------------------


def cosine_attention_forward(module, query, key, value, attention_mask, **kwargs):
    """Hugging Face attention function: causal cosine attention with the module's per-head ``cosine_m``.

    ``attention_mask`` is ignored: training and evaluation windows have no padding, so the mask is the causal
    triangle, which the kernel applies itself. Returns (B, T, H, d) like every HF attention function."""
    return cosine_attention_causal(query, key, value, module.cosine_m).transpose(1, 2), None


def register_cosine_attention() -> None:
    """Makes ``COSINE_ATTENTION`` a Hugging Face attention implementation (masks built as for sdpa)."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(COSINE_ATTENTION, cosine_attention_forward)
    AttentionMaskInterface.register(COSINE_ATTENTION, sdpa_mask)


def make_cosine_lm(settings: lm_bench.TrainSettings) -> torch.nn.Module:
    """The byte-level GPT-2 of ``lm_bench.make_lm`` (same initial weights for a given seed) with cosine attention
    and an m parameter per head in every layer."""
    register_cosine_attention()
    model = lm_bench.make_lm(settings)
    model.config._attn_implementation = COSINE_ATTENTION
    for block in model.transformer.h:
        block.attn.config._attn_implementation = COSINE_ATTENTION
        block.attn.cosine_m = torch.nn.Parameter(torch.full((settings.heads,), COSINE_M_INIT))
    return model


def trained(settings: lm_bench.TrainSettings, attention: str, stream: torch.Tensor, retrain: bool):
    """(model with logits-only forward, training log) from the cache or freshly trained."""
    folder = lm_bench.cache_dir_for(settings)
    if attention == "cosine":
        folder = folder / "cosine-scratch"
    build = make_cosine_lm if attention == "cosine" else lm_bench.make_lm
    weights_file, log_file = folder / "model.safetensors", folder / "train.json"
    if not retrain and weights_file.is_file() and log_file.is_file():
        weights, log = load_file(str(weights_file)), json.loads(log_file.read_text())
        log["cached"] = True
    else:
        lm_bench.console.print(f"training {attention} {asdict(settings)}")
        weights, log = lm_bench.train(settings, stream, build=build)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(weights, str(weights_file))
        log_file.write_text(json.dumps(log, indent=1))
        log["cached"] = False
    log["cache"] = str(folder)
    model = build(settings)
    model.load_state_dict(weights)
    return lm_bench.LogitsOnly(model).eval(), log


# --------------------------------------------------------------------------------------------------------------
# Through the compiler
# --------------------------------------------------------------------------------------------------------------


def layer_of(name: str) -> int:
    """The GPT-2 block index in a weight name (``...h.<i>.attn...``)."""
    found = re.search(r"(?:^|\.)h\.(\d+)\.attn", name)
    if found is None:
        raise lm_bench.AttncError(f"no GPT-2 block index in {name!r}")
    return int(found.group(1))


def compiled_cosine(settings, cosine_model: torch.nn.Module, example: torch.Tensor):
    """The trained cosine model compiled by attnc: eager architecture + attn-cosine, trained m values in."""
    trained_weights = cosine_model.lm.state_dict()
    eager = lm_bench.make_lm(settings)
    eager.load_state_dict({n: t for n, t in trained_weights.items() if not n.endswith("cosine_m")})
    compiled = compile_model(ModelSpec("byte-gpt2", lm_bench.LogitsOnly(eager).eval(), (example,)), lm_bench.COSINE_PIPELINE)
    trained_m = {layer_of(n): t for n, t in trained_weights.items() if n.endswith("cosine_m")}
    pass_m = [n for n in compiled.weights if n.endswith(".cosine_m")]
    if sorted(layer_of(n) for n in pass_m) != sorted(trained_m):
        raise lm_bench.AttncError(f"attn-cosine made m for {pass_m}, the model has {sorted(trained_m)}")
    for name in pass_m:
        compiled.weights[name] = trained_m[layer_of(name)].detach().to(compiled.weights[name].dtype).clone()
    return compiled


def evaluate(settings, attention, model, windows, batch):
    """Perplexity in PyTorch and through the attnc executor, plus the logits difference on one batch."""
    example = windows[:batch, :-1].clone()
    if attention == "cosine":
        compiled = compiled_cosine(settings, model, example)
    else:
        compiled = compile_model(ModelSpec("byte-gpt2", model, (example,)), lm_bench.SOFTMAX_PIPELINE)
    with torch.no_grad():
        reference = model(example)
        error = (compiled.run((example,))[0] - reference).abs().max().item()
        scale = reference.abs().max().item()
    torch_ppl, tokens, torch_s = lm_bench.perplexity(model, windows, batch, f"{attention} PyTorch")
    attnc_ppl, _, attnc_s = lm_bench.perplexity(lm_bench.executor_run(compiled), windows, batch, f"{attention} attnc")
    kinds = sorted({op.name for op in compiled.module.walk() if op.name.startswith("attn.")})
    return {
        "ppl_torch": torch_ppl,
        "ppl_attnc": attnc_ppl,
        "tokens": tokens,
        "max_abs_logit_error": error,
        "max_abs_logit": scale,
        "attention_ops": kinds,
        "seconds_torch": torch_s,
        "seconds_attnc": attnc_s,
    }


# --------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------


def plot(rows: list[dict], path: Path) -> None:
    """Training loss curves, softmax vs cosine, one panel per size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["size"] for r in rows}, key=list(SIZES).index)
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 3.6), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        for row in (r for r in rows if r["size"] == size):
            curve = row["train"]["loss_every_10_steps"]
            label = f"{row['attention']} seed {row['seed']} (test ppl {row['ppl_torch']:.2f})"
            ax.plot([10 * i for i in range(len(curve))], curve, label=label, lw=1)
        ax.set_title(f"size {size}: {rows[[r['size'] for r in rows].index(size)]['parameters']:,} parameters")
        ax.set_xlabel("step")
        ax.set_ylabel("train loss (nats/byte)")
        ax.set_ylim(top=3.5)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def report(rows: list[dict], settings_by_size: dict, args, wall: float) -> str:
    lines = [
        "| size | layers × width (heads) | steps | parameters | attention | seed | final train loss | test ppl (PyTorch) "
        "| test ppl (attnc executor) | bits/byte | cosine ÷ softmax ppl | max abs logit error attnc vs PyTorch "
        "| train time |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        same = (r for r in rows if r["size"] == row["size"] and r["seed"] == row["seed"] and r["attention"] == "softmax")
        softmax = next(same, None)
        ratio = "—" if softmax is None else f"{row['ppl_torch'] / softmax['ppl_torch']:.3f}"
        s = settings_by_size[row["size"]]
        lines.append(
            f"| {row['size']} | {s.layers} × {s.width} ({s.heads}) | {s.steps} | {row['parameters']:,} | {row['attention']} "
            f"| {row['seed']} | {row['train']['final_train_loss']:.3f} | {row['ppl_torch']:.3f} | {row['ppl_attnc']:.3f} "
            f"| {math.log2(row['ppl_torch']):.3f} | {ratio} "
            f"| {row['max_abs_logit_error']:.1e} (of {row['max_abs_logit']:.1f}) | {row['train']['seconds']:.0f} s |"
        )
    first = next(iter(settings_by_size.values()))
    lines += [
        "",
        f"Paper (Cottention, {PAPER['params']} parameters, the Pile): softmax {PAPER['softmax']}, cosine "
        f"{PAPER['cosine']}, cosine ÷ softmax {PAPER['cosine'] / PAPER['softmax']:.2f}.",
        "",
        "| setting | value |",
        "|---|---|",
        f"| training (both attentions) | AdamW, steps per size in the table, each × {first.batch} random train windows of "
        f"{first.context} bytes, lr {first.lr:g} (warm-up {first.warmup_steps}, cosine decay), weight decay "
        f"{first.weight_decay:g} (not on m, biases, LayerNorm), gradient clip 1.0, one torch thread |",
        "| cosine attention | `runtime.cosine_kernels.cosine_attention_causal` (chunked, differentiable), m per head "
        f"initialised to {COSINE_M_INIT} |",
        f"| compiled with | softmax: `{lm_bench.SOFTMAX_PIPELINE}`; cosine: `{lm_bench.COSINE_PIPELINE}` + trained m |",
        f"| evaluation | all non-overlapping test windows of {first.context + 1} bytes, "
        f"{rows[0]['tokens']:,} bytes predicted |",
        f"| machine | {platform.machine()}, {os.cpu_count()} shared cores, torch {torch.__version__} |",
        f"| time | report run {wall:.0f} s (training times above are from the runs that trained the weights) |",
    ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="S,M", help=f"comma-separated, from {', '.join(SIZES)}")
    parser.add_argument("--attentions", default="softmax,cosine")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--train-steps", type=int, default=None, help="override every size's step count")
    parser.add_argument("--train-only", action="store_true", help="train (fill the cache) and stop")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--eval-batch", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None, help="write <out>.md, <out>.json and <out>.png")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    torch.set_num_threads(1)
    wall = time.perf_counter()
    base = lm_bench.TrainSettings()
    splits = lm_bench.load_splits(base)
    streams = {name: lm_bench.byte_stream(texts) for name, texts in splits.items()}
    windows = lm_bench.eval_windows(streams["test"], base.context)
    rows, settings_by_size = [], {}
    for size in args.sizes.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            settings = replace(base, seed=seed, **SIZES[size])
            if args.train_steps is not None:
                settings = replace(settings, steps=args.train_steps)
            settings_by_size[size] = settings
            for attention in args.attentions.split(","):
                model, log = trained(settings, attention, streams["train"], args.retrain)
                if args.train_only:
                    continue
                row = {"size": size, "seed": seed, "attention": attention, "settings": asdict(settings), "train": log}
                row["parameters"] = sum(p.numel() for p in model.parameters())
                evaluated = Path(log["cache"]) / "eval.json"  # evaluation of these weights, kept beside them
                if evaluated.is_file() and not args.retrain:
                    row.update(json.loads(evaluated.read_text()))
                else:
                    row.update(evaluate(settings, attention, model, windows, args.eval_batch))
                    evaluated.write_text(json.dumps({k: v for k, v in row.items() if k.startswith(EVAL_KEYS)}, indent=1))
                if attention == "cosine":
                    s = torch.sigmoid(torch.stack([p for n, p in model.named_parameters() if n.endswith("cosine_m")]))
                    row["s_after"] = {"min": s.min().item(), "mean": s.mean().item(), "max": s.max().item()}
                rows.append(row)
                lm_bench.console.print(
                    f"{size} seed {seed} {attention}: ppl {row['ppl_torch']:.3f} (attnc {row['ppl_attnc']:.3f})"
                )
    if args.train_only:
        return 0
    command = f".venv/bin/python {' '.join(shlex.quote(a) for a in sys.argv)}"
    text = f"Command: `{command}`\n\n" + report(rows, settings_by_size, args, time.perf_counter() - wall)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
        plot(rows, args.out.with_suffix(".png"))
        args.out.with_suffix(".md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
