"""Decoding speed and memory: cosine attention's constant recurrent state vs softmax with a KV cache.

One token at a time (batch 1) through a byte-level GPT-2 (the architecture of bench/cottention_scratch.py),
after a context of 1k, 4k and 16k tokens. The two decoders share every op except the attention:

- **softmax + KV cache:** K and V of every earlier token kept per layer in a preallocated buffer (written in
  place, so no per-step copy of the cache: the fastest plain-torch form), attention by
  ``F.scaled_dot_product_attention`` over the cache;
- **cosine, recurrent:** ``runtime.cosine_kernels.CosineDecodeState`` per layer, the form ``attn-cosine``'s
  ``causal-form=recurrent`` runs: one (H, dv, dk) float64 state updated by each token, whatever the context.

Memory: the bytes the decoder keeps between tokens (cache or states, exact from the tensors), and the growth of
the process's resident set when they are allocated and a round of decoding runs (measured, /proc/self/statm).
Speed: seconds per decoded token, timed one step at a time as the thread's CPU time (``time.thread_time``) and
as wall time; rounds alternate softmax and cosine so both see the same machine load; medians over all steps of
all rounds. tokens/s comes from the CPU time: on shared cores a niced process waits tens of ms for its next
time slice, so a step longer than a slice is charged that wait in wall time (measured: the same 3.6 ms softmax
step read 3.6 ms or 56 ms of wall time depending on whether it crossed a slice).

The cache and state contents before the timed tokens are synthetic (random K, V and a random state): a
decoding step's cost does not depend on the values, and a real 16k-token softmax prefill would cost minutes of
this shared CPU. Weights are random for the same reason (the trained models' position table stops at 128).

Correctness first: on a short prompt both step-by-step decoders must reproduce the full parallel forward
(HF eager softmax; the chunked cosine kernel) of the same model; the bench stops if they do not.

Run: .venv/bin/python bench/cottention_decode.py --out bench/results/cottention_decode
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cosine_lm_perplexity as lm_bench  # noqa: E402
import cottention_scratch as scratch  # noqa: E402

from runtime.cosine_kernels import CosineDecodeState  # noqa: E402

SHAPES = {
    "M": {"layers": 4, "width": 128, "heads": 4},  # the M size of cottention_scratch.py: 4 layers, width 128, 4 heads (d = 32)
    "wide": {"layers": 6, "width": 512, "heads": 8},  # d = 64, closer to a real model's head
}
CHECK_TOKENS = 48
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class Decoder:
    """Steps one GPT-2 token at a time; ``attend(layer, q, k, v, position)`` is the only attention-specific part."""

    def __init__(self, lm: torch.nn.Module):
        self.lm = lm
        config = lm.config
        self.width, self.heads = config.n_embd, config.n_head
        self.head_dim = self.width // self.heads

    def step(self, token: torch.Tensor, position: int, attend) -> torch.Tensor:
        """Logits (B, vocab) for ``token`` (B,) at 0-based ``position``."""
        lm, batch = self.lm, token.shape[0]
        x = lm.transformer.wte(token) + lm.transformer.wpe.weight[position]
        for layer, block in enumerate(lm.transformer.h):
            q, k, v = block.attn.c_attn(block.ln_1(x)).split(self.width, dim=-1)
            shape = (batch, self.heads, self.head_dim)
            out = attend(layer, q.view(shape), k.view(shape), v.view(shape), position)
            x = x + block.attn.c_proj(out.reshape(batch, self.width))
            x = x + block.mlp(block.ln_2(x))
        return lm.lm_head(lm.transformer.ln_f(x))


class SoftmaxCache:
    """Per-layer K and V buffers of ``capacity`` tokens; the first ``filled`` hold the context."""

    def __init__(self, layers: int, heads: int, head_dim: int, capacity: int, filled: int = 0):
        shape = (layers, 1, heads, capacity, head_dim)
        self.keys, self.values = torch.zeros(shape), torch.zeros(shape)
        if filled:
            self.keys[..., :filled, :].normal_()
            self.values[..., :filled, :].normal_()

    def held_bytes(self, tokens: int) -> int:
        """Bytes of K and V for ``tokens`` tokens (what a cache that grows exactly would hold)."""
        per_token = self.keys[..., :1, :].nbytes + self.values[..., :1, :].nbytes
        return per_token * tokens

    def __call__(self, layer: int, q, k, v, position: int) -> torch.Tensor:
        self.keys[layer, :, :, position] = k
        self.values[layer, :, :, position] = v
        keys, values = self.keys[layer, :, :, : position + 1], self.values[layer, :, :, : position + 1]
        return F.scaled_dot_product_attention(q[:, :, None], keys, values)[:, :, 0]


class CosineStates:
    """One ``CosineDecodeState`` per layer (m from the model); optionally a synthetic earlier context."""

    def __init__(self, lm: torch.nn.Module, heads: int, head_dim: int, synthetic: bool = False):
        self.states = [
            CosineDecodeState.init(1, heads, head_dim, head_dim, m=block.attn.cosine_m.detach())
            for block in lm.transformer.h
        ]
        if synthetic:
            for state in self.states:
                state.state = torch.randn_like(state.state)

    def held_bytes(self) -> int:
        return sum(s.state.nbytes + s.s.nbytes for s in self.states)

    def __call__(self, layer: int, q, k, v, position: int) -> torch.Tensor:
        return self.states[layer].step(q, k, v, position + 1)


def check(settings, seed: int) -> dict:
    """Step-by-step decoding vs the full forward pass on CHECK_TOKENS tokens, both attentions."""
    torch.manual_seed(seed)
    tokens = torch.randint(1, lm_bench.VOCAB, (1, CHECK_TOKENS))
    errors = {}
    for attention in ("softmax", "cosine"):
        torch.manual_seed(seed)
        lm = (scratch.make_cosine_lm if attention == "cosine" else lm_bench.make_lm)(settings).eval()
        with torch.no_grad():
            full = lm(input_ids=tokens, use_cache=False).logits[0]
            decoder = Decoder(lm)
            d = decoder.head_dim
            attend = (
                CosineStates(lm, decoder.heads, d)
                if attention == "cosine"
                else SoftmaxCache(len(lm.transformer.h), decoder.heads, d, CHECK_TOKENS)
            )
            stepped = torch.stack([decoder.step(tokens[:, t], t, attend)[0] for t in range(CHECK_TOKENS)])
        errors[attention] = (stepped - full).abs().max().item() / full.abs().max().item()
    if max(errors.values()) > 1e-4:
        raise lm_bench.AttncError(f"step-by-step decoding does not match the full forward: {errors}")
    return errors


def measure(shape: str, contexts: list[int], tokens: int, rounds: int, seed: int) -> tuple[list[dict], dict]:
    """Per-token decode times and memory for both attentions at each context."""
    settings = replace(lm_bench.TrainSettings(), context=max(contexts) + tokens, seed=seed, **SHAPES[shape])
    errors = check(replace(settings, context=CHECK_TOKENS), seed)
    torch.manual_seed(seed)
    model = scratch.make_cosine_lm(settings).eval()  # softmax decoding ignores cosine_m
    decoder = Decoder(model)
    heads, d, layers = decoder.heads, decoder.head_dim, settings.layers
    ids = torch.randint(1, lm_bench.VOCAB, (tokens,))
    rows = []
    for context in contexts:
        times: dict[str, list[float]] = {"softmax": [], "cosine": []}
        walls: dict[str, list[float]] = {"softmax": [], "cosine": []}
        memory: dict[str, dict] = {}
        for round_index in range(rounds):
            for attention in ("softmax", "cosine") if round_index % 2 == 0 else ("cosine", "softmax"):
                gc.collect()
                before = resident_bytes()
                if attention == "softmax":
                    attend = SoftmaxCache(layers, heads, d, context + tokens, filled=context)
                else:
                    attend = CosineStates(model, heads, d, synthetic=True)
                with torch.no_grad():
                    for t in range(tokens):
                        wall, cpu = time.perf_counter(), time.thread_time()
                        decoder.step(ids[t : t + 1], context + t, attend)
                        times[attention].append(time.thread_time() - cpu)
                        walls[attention].append(time.perf_counter() - wall)
                grown = resident_bytes() - before
                held = attend.held_bytes(context) if attention == "softmax" else attend.held_bytes()
                memory.setdefault(attention, {"held_bytes": held, "rss_growth_bytes": []})["rss_growth_bytes"].append(grown)
                del attend
        row = {"shape": shape, "context": context}
        for attention in ("softmax", "cosine"):
            median = statistics.median(times[attention])
            row[attention] = {
                "median_cpu_s_per_token": median,
                "median_wall_s_per_token": statistics.median(walls[attention]),
                "tokens_per_s": 1.0 / median,
                "held_bytes": memory[attention]["held_bytes"],
                "rss_growth_bytes_median": statistics.median(memory[attention]["rss_growth_bytes"]),
                "steps_timed": len(times[attention]),
            }
        row["speedup_cosine_over_softmax"] = row["softmax"]["median_cpu_s_per_token"] / row["cosine"]["median_cpu_s_per_token"]
        row["memory_ratio_softmax_over_cosine"] = row["softmax"]["held_bytes"] / row["cosine"]["held_bytes"]
        rows.append(row)
        lm_bench.console.print(
            f"{shape} context {context}: softmax {row['softmax']['tokens_per_s']:.0f} tok/s, "
            f"cosine {row['cosine']['tokens_per_s']:.0f} tok/s, speed-up {row['speedup_cosine_over_softmax']:.2f}"
        )
    params = sum(p.numel() for p in model.parameters())
    return rows, {"shape": shape, "settings": SHAPES[shape], "parameters": params, "check_relative_error": errors}


def mib(n: float) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 2**10:,.1f} KiB"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for shape in shapes:
        sel = [r for r in rows if r["shape"] == shape]
        ctx = [r["context"] for r in sel]
        for attention, style in (("softmax", "o-"), ("cosine", "s--")):
            axes[0].plot(ctx, [r[attention]["tokens_per_s"] for r in sel], style, label=f"{shape} {attention}")
            axes[1].plot(ctx, [r[attention]["held_bytes"] / 2**20 for r in sel], style, label=f"{shape} {attention}")
    for ax, label in zip(axes, ("tokens / CPU-second (median, batch 1)", "cache / state held (MiB)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context (tokens)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    axes[1].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="M,wide")
    parser.add_argument("--contexts", default="1024,4096,16384")
    parser.add_argument("--tokens", type=int, default=32, help="tokens decoded per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    wall = time.perf_counter()
    contexts = [int(c) for c in args.contexts.split(",")]
    rows, models = [], []
    for shape in args.shapes.split(","):
        shape_rows, info = measure(shape, contexts, args.tokens, args.rounds, args.seed)
        rows += shape_rows
        models.append(info)
    command = f".venv/bin/python {' '.join(shlex.quote(a) for a in sys.argv)}"
    lines = [
        f"Command: `{command}`",
        "",
        "| model | context | softmax tok/s | cosine tok/s | cosine ÷ softmax speed | wall ms/token softmax, cosine "
        "| softmax KV cache held | cosine state held | cache ÷ state | RSS growth softmax | RSS growth cosine |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['shape']} | {r['context']:,} | {r['softmax']['tokens_per_s']:.1f} | {r['cosine']['tokens_per_s']:.1f} "
            f"| {r['speedup_cosine_over_softmax']:.2f} | {1e3 * r['softmax']['median_wall_s_per_token']:.1f}, "
            f"{1e3 * r['cosine']['median_wall_s_per_token']:.1f} | {mib(r['softmax']['held_bytes'])} "
            f"| {mib(r['cosine']['held_bytes'])} "
            f"| {r['memory_ratio_softmax_over_cosine']:,.0f} | {mib(r['softmax']['rss_growth_bytes_median'])} "
            f"| {mib(max(0, r['cosine']['rss_growth_bytes_median']))} |"
        )
    lines += ["", "| model | layers × width (heads, head dim) | parameters | step-by-step vs full forward (max rel. error) |",
              "|---|---|---:|---|"]
    for m in models:
        s = m["settings"]
        errs = ", ".join(f"{k} {v:.1e}" for k, v in m["check_relative_error"].items())
        lines.append(f"| {m['shape']} | {s['layers']} × {s['width']} ({s['heads']}, {s['width'] // s['heads']}) "
                     f"| {m['parameters']:,} | {errs} |")
    lines += [
        "",
        f"Batch 1, {args.tokens} tokens per round, {args.rounds} rounds alternating the two decoders, medians over "
        f"all steps; tok/s = 1 / median thread CPU time per token (wall time: see the bench's docstring); "
        f"cosine state float64 (as `CosineDecodeState`), KV cache float32; machine {platform.machine()}, "
        f"{os.cpu_count()} shared cores, one torch thread, torch {torch.__version__}; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MiB; {time.perf_counter() - wall:.0f} s.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"command": command, "rows": rows, "models": models}, indent=1))
        args.out.with_suffix(".md").write_text(text + "\n")
        plot(rows, args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
