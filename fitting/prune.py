"""Carry out ``attn-prune``: compute the masks of the W_Q and W_K the IR marks ``pending`` and prune the weights.

For each marked attention, the step captures what its method needs by running the executor on the
calibration batches (:mod:`fitting.capture`): the input X of the q/k projections for Wanda and SparseGPT,
and for learned masks every operand the q and k paths read (X, biases, rotary tables) plus the attention
mask. The learned objective is the attention matrix itself, ``softmax(scale · Q Kᵀ + mask)``, computed by
replaying the IR path from the projection to the attention with the executor's own op implementations, so
it holds for any path the pass accepted (reshape/transpose, rotary embeddings, GQA's broadcast of K).

Learned masks (``method=learned``) minimise ``½‖A(M_Q∘W_Q, M_K∘W_K) − A(W_Q, W_K)‖²_F`` per sequence plus
``½λ·mean(M²)`` with :func:`fitting.loop.fit` (Adam, cosine-annealed rate) and end binarised to the target
sparsity. Relaxations: ``projected`` (M in [0, 1] from M = 1, as the paper), ``sigmoid`` (M = σ(S) from
S = 3), ``ste`` (the loss of the binary mask itself, with a straight-through gradient to scores that start
at Wanda's; the result is kept only if its calibration loss is below Wanda's mask's).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import Interpreter
from xdsl.ir import Operation

from dialects import attn
from dialects.diagnostics import AttncError
from dialects.locations import module_path_of
from dialects.projections import APPLIED, PENDING, ProjectionPath, prune_record, query_key_paths, set_prune_record
from fitting.capture import Capture, capture_operands
from fitting.loop import fit
from fitting.prune_masks import input_norms, keep_mask, magnitude_scores, sparsegpt, wanda_scores
from runtime.attn_impl import masked_softmax
from runtime.executor import Executor

NEEDS_ACTIVATIONS = ("wanda", "sparsegpt", "learned")


@dataclass
class MarkedAttention:
    """An ``attn.sdpa`` whose W_Q and W_K are marked for pruning, with their projection paths."""

    sdpa: attn.SdpaOp
    query: ProjectionPath
    key: ProjectionPath
    record: dict[str, object]

    @property
    def path(self) -> str:
        return module_path_of(self.sdpa)


@dataclass
class PruneReport:
    """What the step did: per pruned matrix its sparsity, per learned attention its fit time and losses."""

    sparsity: dict[str, float] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    calibration_loss: dict[str, tuple[float, float]] = field(default_factory=dict)  # (Wanda's mask, learned mask)
    losses: dict[str, list[float]] = field(default_factory=dict)  # the learned objective at every step


def marked_attentions(module: ModuleOp, status: str = PENDING) -> list[MarkedAttention]:
    """Attentions whose query and key weights both carry an ``attn.prune`` record with ``status``."""
    found = []
    for op in module.walk():
        if not isinstance(op, attn.SdpaOp):
            continue
        query, key = query_key_paths(op)
        if query is None or key is None:
            continue
        query_record, key_record = prune_record(query.weight), prune_record(key.weight)
        if query_record is not None and key_record is not None and query_record["status"] == key_record["status"] == status:
            found.append(MarkedAttention(op, query, key, query_record))
    return found


def has_pending_pruning(module: ModuleOp) -> bool:
    return bool(marked_attentions(module))


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1])


class _Replay:
    """Recomputes an attention operand from a replaced projection weight, op by op on the executor."""

    def __init__(self, module: ModuleOp, weights: dict[str, torch.Tensor]):
        self.interpreter: Interpreter = Executor(module, weights).interpreter

    def operand(self, path: ProjectionPath, weight: torch.Tensor, capture: Capture) -> torch.Tensor:
        values: dict = {}
        for op in path.ops:
            args = []
            for index, value in enumerate(op.operands):
                if op is path.linear and index == 1:
                    args.append(weight)
                elif value in values:
                    args.append(values[value])
                else:
                    args.append(capture[(op, index)])
            values.update(zip(op.results, self.interpreter.run_op(op, tuple(args))))
        return values[path.operand]

    def attention(self, block: MarkedAttention, wq: torch.Tensor, wk: torch.Tensor, capture: Capture) -> torch.Tensor:
        q = self.operand(block.query, wq, capture)
        k = self.operand(block.key, wk, capture)
        mask = capture.get((block.sdpa, 3))
        return masked_softmax(
            q @ k.transpose(-1, -2), mask, block.sdpa.scale.value.data, bool(block.sdpa.causal.value.data)
        )


def attention_error(replay: _Replay, block: MarkedAttention, wq, wk, dense, captures) -> float:
    """½‖A − A_dense‖²_F per sequence, averaged over the calibration batches."""
    with torch.no_grad():
        total = 0.0
        for capture, target in zip(captures, dense):
            probs = replay.attention(block, wq, wk, capture)
            total += 0.5 * float(((probs - target) ** 2).sum()) / probs.shape[0]
    return total / len(captures)


def _learned_masks(
    module: ModuleOp, weights: dict[str, torch.Tensor], block: MarkedAttention, captures: list[Capture], report: PruneReport
) -> tuple[torch.Tensor, torch.Tensor]:
    record = block.record
    sparsity, granularity = float(record["sparsity"]), str(record["granularity"])  # type: ignore[arg-type]
    relaxation, reg = str(record["relaxation"]), float(record["reg"])  # type: ignore[arg-type]
    wq, wk = weights[block.query.weight.key], weights[block.key.weight.key]
    replay = _Replay(module, weights)
    with torch.no_grad():
        dense = [replay.attention(block, wq, wk, capture) for capture in captures]
    norms_q = input_norms(torch.cat([_rows(c[(block.query.linear, 0)]) for c in captures]))
    norms_k = input_norms(torch.cat([_rows(c[(block.key.linear, 0)]) for c in captures]))
    wanda_q, wanda_k = wanda_scores(wq, norms_q), wanda_scores(wk, norms_k)
    generator = torch.Generator().manual_seed(int(record["seed"]))  # type: ignore[call-overload]

    def normalised(scores: torch.Tensor) -> torch.Tensor:
        return scores / scores.mean(dim=1, keepdim=True).clamp_min(1e-12)

    if relaxation == "ste":
        initial = {"q": normalised(wanda_q), "k": normalised(wanda_k)}
    elif relaxation == "projected":
        initial = {"q": torch.ones_like(wq), "k": torch.ones_like(wk)}
    else:
        initial = {"q": torch.full_like(wq, 3.0), "k": torch.full_like(wk, 3.0)}

    def relaxed(scores: torch.Tensor) -> torch.Tensor:
        if relaxation == "ste":
            hard = keep_mask(scores.detach(), sparsity, granularity).to(scores.dtype)
            return hard + scores - scores.detach()
        if relaxation == "projected":
            return scores.clamp(0.0, 1.0)
        return torch.sigmoid(scores)

    def factory(_module, fitted):
        def run(index: torch.Tensor):
            mq, mk = relaxed(fitted["q"]), relaxed(fitted["k"])
            probs = replay.attention(block, wq * mq, wk * mk, captures[int(index)])
            return probs, 0.5 * reg * ((mq**2).mean() + (mk**2).mean())

        return run

    def objective(outputs, index: int) -> torch.Tensor:
        probs, penalty = outputs
        return 0.5 * ((probs - dense[index]) ** 2).sum() / probs.shape[0] + penalty

    def binary(scores: torch.Tensor, wanda: torch.Tensor) -> torch.Tensor:
        if relaxation != "ste":  # ties (entries still at 1) go to Wanda's order, then at random
            scores = relaxed(scores) + 1e-6 * normalised(wanda) + 1e-9 * torch.rand(scores.shape, generator=generator)
        return keep_mask(scores, sparsity, granularity)

    batches = [(torch.tensor(i),) for i in range(len(captures))]
    steps = int(record["steps"])  # type: ignore[call-overload]
    result = fit(module, initial, batches, objective, [(["q", "k"], float(record["lr"]))], factory, steps=steps)  # type: ignore[arg-type]
    mask_q, mask_k = binary(result.fitted["q"], wanda_q), binary(result.fitted["k"], wanda_k)
    final = attention_error(replay, block, wq * mask_q, wk * mask_k, dense, captures)
    baseline_q, baseline_k = keep_mask(wanda_q, sparsity, granularity), keep_mask(wanda_k, sparsity, granularity)
    start = attention_error(replay, block, wq * baseline_q, wk * baseline_k, dense, captures)
    report.fit_seconds[block.path] = result.seconds
    report.losses[block.path] = result.losses
    report.calibration_loss[block.path] = (start, final)
    if relaxation == "ste" and start < final:
        return baseline_q, baseline_k
    return mask_q, mask_k


def prune_pending(
    module: ModuleOp, weights: dict[str, torch.Tensor], batches: Sequence[tuple[torch.Tensor, ...]]
) -> PruneReport:
    """Prunes every weight marked ``pending`` in place in ``weights`` and marks it ``applied``."""
    report = PruneReport()
    blocks = marked_attentions(module)
    wanted: list[tuple[Operation, int]] = []
    for block in blocks:
        method = block.record["method"]
        if method in NEEDS_ACTIVATIONS:
            wanted += [(block.query.linear, 0), (block.key.linear, 0)]
        if method == "learned":
            wanted += block.query.externals() + block.key.externals()
            if block.sdpa.mask is not None:
                wanted.append((block.sdpa, 3))
    captures = capture_operands(module, weights, batches, wanted) if wanted else []
    done: set[str] = set()
    for block in blocks:
        method = block.record["method"]
        sparsity, granularity = float(block.record["sparsity"]), str(block.record["granularity"])  # type: ignore[arg-type]
        paths = [path for path in (block.query, block.key) if path.weight.key not in done]
        if not paths:
            continue
        start = time.perf_counter()
        pruned: dict[str, torch.Tensor] = {}
        if method == "learned" and sparsity > 0 and len(paths) == 2:
            mask_q, mask_k = _learned_masks(module, weights, block, captures, report)
            pruned = {block.query.weight.key: weights[block.query.weight.key] * mask_q,
                      block.key.weight.key: weights[block.key.weight.key] * mask_k}
        else:
            for path in paths:
                weight = weights[path.weight.key]
                if sparsity == 0:
                    pruned[path.weight.key] = weight
                    continue
                rows = [_rows(c[(path.linear, 0)]) for c in captures] if method != "magnitude" else []
                if method == "sparsegpt":
                    x = torch.cat(rows).double()
                    pruned[path.weight.key] = sparsegpt(weight, x.T @ x / x.shape[0], sparsity, granularity)
                    continue
                scores = magnitude_scores(weight) if method == "magnitude" else wanda_scores(weight, input_norms(torch.cat(rows)))
                pruned[path.weight.key] = weight * keep_mask(scores, sparsity, granularity)
        for path in (block.query, block.key):
            name = path.weight.key
            if name not in pruned:
                continue
            weights[name] = pruned[name].contiguous()
            achieved = float((pruned[name] == 0).sum()) / pruned[name].numel()
            report.sparsity[name] = achieved
            record = prune_record(path.weight) or {}
            set_prune_record(path.weight, {**record, "status": APPLIED, "achieved": round(achieved, 6)})
            done.add(name)
        report.fit_seconds.setdefault(block.path, time.perf_counter() - start)
    if not blocks:
        raise AttncError("attn-prune: no attention marked for pruning")
    return report
