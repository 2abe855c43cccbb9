"""Recovery for cosine-rewritten models: fit the new per-head ``m`` (and optionally the attention projections)
so the rewritten program reproduces the ORIGINAL model's outputs on unlabeled calibration inputs.

Why (docs/methods/cottention.md): Cottention is trained from scratch in the paper. ``attn-cosine`` rewrites a
softmax-trained model without training, which changes its outputs; this module is the short recovery step and
reports the gap that remains, measured on held-out inputs the fit never saw.

```python
from compiler.api import compile_model
from compiler.calibration import default_batches
from fitting.recovery import recover
compiled = compile_model("minilm", "attn-raise,attn-cosine")
calibration, heldout = default_batches("minilm", compiled)   # tokenised to the compiled (batch, length)
report = recover(compiled.reference, compiled, calibration, heldout_inputs=heldout, train_projections=True)
print(report.format_table())
compiled.save("out")     # compiled.weights now hold the fitted tensors
```

What is trained
    * always: every parameter ``attn-cosine`` marked ``trainable = "cosine"`` (its per-head m; s = sigmoid(m),
      initialised to 0.5), found in the IR;
    * with ``train_projections=True`` also the query/key/value/output projections of the rewritten attention
      layers. For a rewritten attention at module path ``P`` (the location of its m), the scope is
      ``P`` — or its parent when ``P`` ends in ``.self`` (BERT keeps the output projection in the sibling
      ``attention.output``) — and a floating-point weight ``<scope>.<rest>`` is trained when ``rest`` matches
      :data:`PROJECTION_PATTERN`: ``query|key|value`` (BERT, ViT), ``q_proj|k_proj|v_proj|o_proj`` (Llama),
      ``c_attn|c_proj`` (GPT-2; scoping keeps the MLP's ``mlp.c_proj`` out), ``in_proj_*|out_proj``
      (``nn.MultiheadAttention``), ``out`` and ``output.dense`` (BERT's attention output; its LayerNorm is
      not trained). Layer norms, MLPs and embeddings are never trained.

Objective (one Adam step per calibration batch, cycling through the batches, cosine-annealed learning rate)
    The sum over the program's floating-point outputs of
    * ``1 − cosine`` along the last dimension, averaged over rows, for an *embedding* output — one whose
      reference rows all have unit L2 norm (a sentence-transformers embedding is L2-normalised, so only its
      direction carries meaning);
    * otherwise the normalised MSE ``mean((y − y_ref)²) / mean(y_ref²)`` (scale-free, so hidden states and
      logits of any magnitude weigh alike);
    * for an output the caller marks ``logits`` (``output_kinds``; a language model's next-token scores), the
      KL divergence ``KL(softmax(y_ref) ‖ softmax(y))`` along the last dimension, averaged over positions: the
      distillation loss, which weighs the scores by the probability the original model gives them, so the fit
      spends its capacity on what decides perplexity rather than on the scores of unlikely tokens.
    Token-level outputs of a model with an ``attention_mask`` input are compared on real tokens only: the
    positions of padding tokens are meaningless in both models (cosine attention zeroes them, softmax does
    not) and no consumer reads them. The reference outputs are computed once with torch, without gradients.

Quality (before and after, on the held-out inputs): per output, max abs error, relative error
``‖y − y_ref‖ / ‖y_ref‖``, and the mean / min cosine similarity along the last dimension.

The compiled program has fixed input shapes, so every calibration batch must have exactly the example inputs'
shapes: :func:`sentence_batches` tokenises and pads to that shape, :func:`window_batches` cuts many more
inputs of that shape out of the same text (the fit of the projections overfits 64 sentences otherwise), and
:func:`random_batches` draws inputs for models without text. :func:`default_batches` picks for a spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from xdsl.dialects.builtin import ModuleOp, TensorType

from dialects.diagnostics import AttncError
from fitting.calibration import Program
from fitting.loop import ExecutorFactory, fit, parameter_paths, reference_executor, trainable_parameters
from runtime.executor import entry_function, flat_tensors

COSINE_GROUP = "cosine"  # the trainable group attn-cosine gives its per-head m
PROJECTION_PATTERN = re.compile(
    r"^(self\.)?(query|key|value|q_proj|k_proj|v_proj|o_proj|c_attn|c_proj|in_proj|out_proj|out|output\.dense)"
    r"([._]|$)"
)
"""Matched against a weight's name relative to the attention scope (see the module docstring)."""

UNIT_NORM_TOLERANCE = 1e-3
MASK_INPUT_NAMES = ("attention_mask",)
OUTPUT_KINDS = ("embedding", "mse", "logits", "skip")
"""Per-output objectives (see the module docstring); ``skip`` leaves an output out of the loss."""

DEFAULT_STEPS = 1000
DEFAULT_LR = 0.05
DEFAULT_PROJECTION_LR = 3e-4

# Calibration and held-out text for the sentence encoders: short, varied, disjoint, written for this module.


# --------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------


def cosine_parameters(module: ModuleOp) -> list[str]:
    """The per-head ``m`` parameters: those ``attn-cosine`` marked ``trainable = "cosine"`` in the IR."""
    return trainable_parameters(module, COSINE_GROUP)


def attention_scopes(module: ModuleOp) -> list[str]:
    """The module scopes of the rewritten attention layers: the module path each ``m`` is located at (its
    parent when that ends in ``.self``: BERT keeps the output projection in the sibling ``attention.output``)."""
    scopes = []
    for path in parameter_paths(module, cosine_parameters(module)).values():
        scopes.append(path[: -len(".self")] if path.endswith(".self") else path)
    return sorted(set(scopes))


def projection_parameters(module: ModuleOp, weights: dict[str, torch.Tensor]) -> list[str]:
    """Names of the q/k/v/o projection weights and biases of the rewritten attention layers."""
    chosen = set()
    fitted = set(cosine_parameters(module))
    for scope in attention_scopes(module):
        prefix = f"{scope}." if scope else ""
        for name, tensor in weights.items():
            if (
                name.startswith(prefix)
                and tensor.is_floating_point()
                and name not in fitted
                and PROJECTION_PATTERN.match(name[len(prefix) :])
            ):
                chosen.add(name)
    return sorted(chosen)


# --------------------------------------------------------------------------------------------------------------
# Loss and quality
# --------------------------------------------------------------------------------------------------------------


def _token_mask_index(compiled: Program) -> int | None:
    for index, name in enumerate(compiled.input_names):
        if name in MASK_INPUT_NAMES and index < len(compiled.inputs) and compiled.inputs[index].dim() == 2:
            return index
    return None


def _keep(output: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    """Row selector (over all dims but the last) for the real tokens of a token-level output, else None."""
    if mask is None or output.dim() < 3 or tuple(output.shape[:2]) != tuple(mask.shape):
        return None
    return mask != 0


def is_embedding_output(reference: torch.Tensor) -> bool:
    """True when every row (last dimension) of the reference has unit L2 norm: only its direction matters."""
    if not reference.is_floating_point() or reference.dim() < 2 or reference.numel() == 0:
        return False
    norms = reference.double().norm(dim=-1)
    return bool(((norms - 1).abs() < UNIT_NORM_TOLERANCE).all())


def _rows(tensor: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """The tensor as (rows, last dim), restricted to kept rows."""
    return tensor[keep] if keep is not None else tensor.reshape(-1, tensor.shape[-1])


def recovery_loss(
    outputs: Sequence[torch.Tensor], reference: Sequence[torch.Tensor], mask: torch.Tensor | None, kinds: Sequence[str]
) -> torch.Tensor:
    """The training objective (see the module docstring); ``kinds[i]`` is one of :data:`OUTPUT_KINDS`."""
    total = outputs[0].new_zeros(()) if outputs else torch.zeros(())
    for out, ref, kind in zip(outputs, reference, kinds):
        if kind == "skip":
            continue
        keep = _keep(ref, mask)
        o, r = _rows(out, keep), _rows(ref, keep)
        if kind == "embedding":
            total = total + (1 - F.cosine_similarity(o, r, dim=-1)).mean()
        elif kind == "logits":
            log_q, log_p = F.log_softmax(o, dim=-1), F.log_softmax(r, dim=-1)  # KL(p ‖ q), mean over rows
            total = total + F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
        else:
            total = total + (o - r).pow(2).mean() / r.pow(2).mean().clamp_min(1e-12)
    return total


@dataclass
class OutputQuality:
    """How close one output of the rewritten program is to the original model's, over held-out inputs."""

    index: int
    shape: tuple[int, ...]
    kind: str
    max_abs_err: float
    rel_err: float
    cos_mean: float
    cos_min: float


def output_quality(
    outputs: Sequence[Sequence[torch.Tensor]],
    references: Sequence[Sequence[torch.Tensor]],
    masks: Sequence[torch.Tensor | None],
    kinds: Sequence[str],
) -> list[OutputQuality]:
    """Per-output quality over several batches (padding positions of token-level outputs excluded)."""
    qualities = []
    for index, kind in enumerate(kinds):
        if kind == "skip":
            continue
        rows_out, rows_ref = [], []
        for out, ref, mask in zip(outputs, references, masks):
            keep = _keep(ref[index], mask)
            rows_out.append(_rows(out[index], keep).double())
            rows_ref.append(_rows(ref[index], keep).double())
        o, r = torch.cat(rows_out), torch.cat(rows_ref)
        cos = F.cosine_similarity(o, r, dim=-1)
        qualities.append(
            OutputQuality(
                index,
                tuple(references[0][index].shape),
                kind,
                (o - r).abs().max().item(),
                ((o - r).norm() / r.norm().clamp_min(1e-30)).item(),
                cos.mean().item(),
                cos.min().item(),
            )
        )
    return qualities


# --------------------------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------------------------


@dataclass
class RecoveryReport:
    """What was fitted, the training curve, and held-out quality before and after."""

    trained: list[str]
    steps: int
    lr: float
    projection_lr: float
    calibration_batches: int
    heldout_batches: int
    before: list[OutputQuality]
    after: list[OutputQuality]
    losses: list[float] = field(default_factory=list)
    heldout_loss_before: float = float("nan")
    heldout_loss_after: float = float("nan")
    m_before: dict[str, list[float]] = field(default_factory=dict)
    m_after: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    trained_parameter_count: int = 0

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(output, metric, before, after) rows for a table."""
        rows = []
        for b, a in zip(self.before, self.after):
            label = f"{b.index} {b.kind} {'×'.join(map(str, b.shape))}"
            rows.append((label, "cosine mean", f"{b.cos_mean:.4f}", f"{a.cos_mean:.4f}"))
            rows.append((label, "cosine min", f"{b.cos_min:.4f}", f"{a.cos_min:.4f}"))
            rows.append((label, "relative error", f"{b.rel_err:.4f}", f"{a.rel_err:.4f}"))
            rows.append((label, "max abs error", f"{b.max_abs_err:.4g}", f"{a.max_abs_err:.4g}"))
        rows.append(("all", "held-out loss", f"{self.heldout_loss_before:.5f}", f"{self.heldout_loss_after:.5f}"))
        return rows

    def s_summary(self) -> str:
        """Range of s = sigmoid(m) after the fit."""
        values = [v for vs in self.m_after.values() for v in vs]
        if not values:
            return "no m"
        s = torch.sigmoid(torch.tensor(values))
        initial = torch.sigmoid(torch.tensor(0.5)).item()
        return f"s = sigmoid(m) after: min {s.min():.3f}, mean {s.mean():.3f}, max {s.max():.3f} (before {initial:.3f})"

    def format_table(self) -> str:
        """A plain-text (Markdown) before/after table."""
        lines = ["| output | metric | before | after |", "|---|---|---:|---:|"]
        lines += [f"| {o} | {m} | {b} | {a} |" for o, m, b, a in self.rows()]
        return "\n".join(lines)


def _reference_outputs(reference: Callable[..., Any], batches: Sequence[tuple[torch.Tensor, ...]]):
    with torch.no_grad():
        return [[t.detach() for t in flat_tensors(reference(*batch))] for batch in batches]


def _check_batches(compiled: Program, batches: Sequence[tuple[torch.Tensor, ...]], what: str) -> None:
    function = entry_function(compiled.module)
    expected = [tuple(t.get_shape()) for t in function.function_type.inputs.data if isinstance(t, TensorType)]
    for number, batch in enumerate(batches):
        shapes = [tuple(t.shape) for t in batch]
        if shapes != expected:
            raise AttncError(
                f"{what} batch {number} has input shapes {shapes}; the program was compiled for {expected} "
                "(pad/truncate to the example inputs' shape, e.g. with sentence_batches)"
            )


def _output_kinds(references: Sequence[torch.Tensor], given: Sequence[str] | None) -> list[str]:
    """Each output's objective: the given ones (checked), or chosen from the reference outputs."""
    if given is None:
        return [
            ("embedding" if is_embedding_output(r) else "mse") if r.is_floating_point() else "skip"
            for r in references
        ]
    given = list(given)
    if len(given) != len(references):
        raise AttncError(f"output_kinds names {len(given)} outputs; the model has {len(references)}")
    for index, (kind, ref) in enumerate(zip(given, references)):
        if kind not in OUTPUT_KINDS:
            raise AttncError(f"unknown output kind '{kind}': one of {', '.join(OUTPUT_KINDS)}")
        if kind != "skip" and not ref.is_floating_point():
            raise AttncError(f"output {index} is not floating-point ({ref.dtype}); mark it 'skip'")
    return given


def recover(
    reference: Callable[..., Any] | None,
    compiled: Program,
    calibration_inputs: Sequence[tuple[torch.Tensor, ...]],
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    train_projections: bool = False,
    progress: bool = True,
    *,
    heldout_inputs: Sequence[tuple[torch.Tensor, ...]] | None = None,
    projection_lr: float = DEFAULT_PROJECTION_LR,
    output_kinds: Sequence[str] | None = None,
    executor_factory: ExecutorFactory = reference_executor,
) -> RecoveryReport:
    """Fits the cosine ``m`` (and optionally the attention projections) of ``compiled`` to ``reference``.

    ``reference`` is the original (softmax) model or any function returning its outputs for the same inputs
    (``None``: ``compiled.reference``). ``heldout_inputs`` are used only for the before/after quality; when
    omitted, the last quarter of ``calibration_inputs`` (at least one batch) is held out instead.
    ``output_kinds`` gives each output's objective (:data:`OUTPUT_KINDS`, e.g. ``("logits",)`` for a causal LM);
    by default an embedding output gets ``embedding``, any other floating-point output ``mse``. Updates
    ``compiled.weights`` in place with the fitted (detached) tensors and returns a :class:`RecoveryReport`.
    """
    reference = reference if reference is not None else compiled.reference
    if reference is None:
        raise AttncError("recovery needs the original model: pass it, or compile from a spec that has one")
    if steps < 0:
        raise AttncError(f"steps must be >= 0, got {steps}")
    if not (lr > 0 and projection_lr > 0):
        raise AttncError(f"learning rates must be positive, got lr={lr}, projection_lr={projection_lr}")
    m_names = cosine_parameters(compiled.module)
    if not m_names:
        raise AttncError(
            "the program has no cosine attention (no parameter marked trainable = \"cosine\"): compile with attn-cosine "
            "in the pipeline, e.g. -p 'attn-raise,attn-cosine'"
        )
    calibration_inputs = list(calibration_inputs)
    if heldout_inputs is None:
        if len(calibration_inputs) < 2:
            raise AttncError("give held-out inputs, or at least two calibration batches to hold one out")
        cut = len(calibration_inputs) - max(1, len(calibration_inputs) // 4)
        calibration_inputs, heldout_inputs = calibration_inputs[:cut], calibration_inputs[cut:]
    heldout_inputs = list(heldout_inputs)
    if not calibration_inputs or not heldout_inputs:
        raise AttncError("need at least one calibration batch and one held-out batch")
    _check_batches(compiled, calibration_inputs, "calibration")
    _check_batches(compiled, heldout_inputs, "held-out")

    projection_names = projection_parameters(compiled.module, compiled.weights) if train_projections else []
    if train_projections and not projection_names:
        raise AttncError("--projections: no q/k/v/o projection weights found next to the rewritten attention")

    calibration_ref = _reference_outputs(reference, calibration_inputs)
    heldout_ref = _reference_outputs(reference, heldout_inputs)
    kinds = _output_kinds(calibration_ref[0], output_kinds)
    if all(kind == "skip" for kind in kinds):
        raise AttncError("the model has no floating-point output to match")
    mask_index = _token_mask_index(compiled)

    def mask_of(batch):
        return batch[mask_index] if mask_index is not None else None

    def evaluate(weights: dict[str, torch.Tensor]):
        executor = executor_factory(compiled.module, weights)
        with torch.no_grad():
            outs = [executor(*batch) for batch in heldout_inputs]
        masks = [mask_of(b) for b in heldout_inputs]
        loss = sum(recovery_loss(o, r, m, kinds).item() for o, r, m in zip(outs, heldout_ref, masks))
        return output_quality(outs, heldout_ref, masks, kinds), loss / len(heldout_inputs)

    m_before = {n: compiled.weights[n].detach().tolist() for n in m_names}
    before, loss_before = evaluate(compiled.weights)

    def objective(outputs: tuple[torch.Tensor, ...], index: int) -> torch.Tensor:
        return recovery_loss(outputs, calibration_ref[index], mask_of(calibration_inputs[index]), kinds)

    result = fit(
        compiled.module,
        compiled.weights,
        calibration_inputs,
        objective,
        [(m_names, lr), (projection_names, projection_lr)],
        executor_factory,
        steps=steps,
        progress=progress,
        label="recovery",
    )
    compiled.weights.update(result.fitted)
    after, loss_after = evaluate(compiled.weights)
    report = RecoveryReport(
        trained=[*m_names, *projection_names],
        steps=steps,
        lr=lr,
        projection_lr=projection_lr,
        calibration_batches=len(calibration_inputs),
        heldout_batches=len(heldout_inputs),
        before=before,
        after=after,
        losses=result.losses,
        heldout_loss_before=loss_before,
        heldout_loss_after=loss_after,
        m_before=m_before,
        m_after={n: compiled.weights[n].tolist() for n in m_names},
        seconds=result.seconds,
        trained_parameter_count=sum(t.numel() for t in result.fitted.values()),
    )
    return report




# --------------------------------------------------------------------------------------------------------------
# Data for a spec (used by the CLI)
# --------------------------------------------------------------------------------------------------------------


