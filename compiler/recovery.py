"""Recovery for cosine-rewritten models: fit the new per-head ``m`` (and optionally the attention projections)
so the rewritten program reproduces the ORIGINAL model's outputs on unlabeled calibration inputs.

Why (docs/methods/cottention.md): Cottention is trained from scratch in the paper. ``attn-cosine`` rewrites a
softmax-trained model without training, which changes its outputs; this module is the short recovery step and
reports the gap that remains, measured on held-out inputs the fit never saw.

```python
from compiler.api import compile_model
from compiler.recovery import default_batches, recover
compiled = compile_model("minilm", "attn-raise,attn-cosine")
calibration, heldout = default_batches("minilm", compiled)   # tokenised to the compiled (batch, length)
report = recover(compiled.reference, compiled, calibration, heldout_inputs=heldout, train_projections=True)
print(report.format_table())
compiled.save("out")     # compiled.weights now hold the fitted tensors
```

What is trained
    * always: every ``*.cosine_m`` parameter (one scalar per head, s = sigmoid(m), initialised to 0.5);
    * with ``train_projections=True`` also the query/key/value/output projections of the rewritten attention
      layers. For a rewritten attention at module path ``P`` (the prefix of ``P.cosine_m``), the scope is
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

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from xdsl.ir import BlockArgument

from compiler.api import CompiledModel, flat_tensors
from compiler.errors import AttncError
from dialects import nn as nn_dialect
from runtime.executor import Executor, entry_function

COSINE_M_SUFFIX = ".cosine_m"
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
DEFAULT_WINDOW_BATCHES = 240

# Calibration and held-out text for the sentence encoders: short, varied, disjoint, written for this module.
CALIBRATION_SENTENCES = (
    "The train to the coast leaves every hour from platform four.",
    "She planted tomatoes, basil and peppers in the back garden.",
    "Interest rates rose for the third time this year.",
    "A small dog barked at the delivery van.",
    "The museum opens a new exhibition on ancient glass next week.",
    "Photosynthesis turns light, water and carbon dioxide into sugar.",
    "He forgot his umbrella and got soaked on the way home.",
    "The compiler reports an error when a type does not match.",
    "Our team won the match after extra time.",
    "Volcanic ash grounded flights across northern Europe.",
    "Add the flour slowly and stir until the batter is smooth.",
    "The library extended its opening hours during exams.",
    "Quantum computers use qubits that can be in superposition.",
    "The river flooded the fields after days of heavy rain.",
    "My grandmother tells the best stories about her childhood.",
    "The new phone has a larger screen and a faster processor.",
    "Bees communicate the location of flowers with a dance.",
    "The meeting was postponed until Thursday afternoon.",
    "A gradient points in the direction of steepest ascent.",
    "The orchestra tuned their instruments before the concert.",
    "Mount Everest is the highest mountain above sea level.",
    "Please remember to lock the door when you leave.",
    "The startup raised ten million dollars in its first round.",
    "Whales sing songs that can travel for many kilometres.",
    "The recipe calls for two eggs and a cup of milk.",
    "Traffic was slow because of roadworks on the bridge.",
    "The novel follows a detective in nineteenth-century London.",
    "Solar panels produce less power on cloudy days.",
    "The children built a sandcastle near the water.",
    "The database index speeds up queries on the user table.",
    "Coffee prices climbed after a poor harvest in Brazil.",
    "The hikers reached the summit just before sunset.",
    "Neurons transmit signals using electrical and chemical pulses.",
    "The hotel room had a view over the old harbour.",
    "He practises the piano for an hour every morning.",
    "The election results will be announced tonight.",
    "Antibiotics do not work against viral infections.",
    "The kitten chased a ball of yarn across the floor.",
    "Rust guarantees memory safety without a garbage collector.",
    "The bakery on the corner sells warm croissants.",
    "Glaciers are retreating as average temperatures rise.",
    "She finished the marathon in under four hours.",
    "The contract must be signed by both parties.",
    "Owls hunt at night using their excellent hearing.",
    "The server crashed because the disk was full.",
    "A rainbow appeared after the storm passed.",
    "The professor explained the proof step by step.",
    "Fresh snow covered the village overnight.",
    "The airline cancelled dozens of flights due to a strike.",
    "Matrix multiplication is the core of neural network inference.",
    "The garden party was moved indoors because of the wind.",
    "Penguins cannot fly but they are excellent swimmers.",
    "The city plans to add more bicycle lanes next year.",
    "He repaired the bicycle chain with a simple tool.",
    "The documentary explores life in the deep ocean.",
    "Vaccines train the immune system to recognise a pathogen.",
    "The shop offers a discount on winter coats.",
    "Light travels faster than sound through air.",
    "The farmer harvested the wheat in late summer.",
    "The software update fixed a bug in the login screen.",
    "The actors rehearsed the final scene again and again.",
    "Copper is a good conductor of electricity.",
    "We watched the fireworks from the hill above the town.",
    "The soup needs a little more salt and pepper.",
)
HELDOUT_SENTENCES = (
    "The ferry was delayed by strong winds in the channel.",
    "He baked a chocolate cake for his sister's birthday.",
    "Stock markets fell sharply after the announcement.",
    "The telescope captured images of a distant galaxy.",
    "The puppy slept curled up next to the fireplace.",
    "Transformers process all tokens of a sentence in parallel.",
    "Heavy fog made driving on the motorway dangerous.",
    "She learned to speak Spanish while living in Madrid.",
    "The bridge was closed for repairs over the weekend.",
    "Earthquakes are measured on the moment magnitude scale.",
    "The chef sliced the onions thinly for the sauce.",
    "A cache stores recent results to avoid recomputation.",
    "The football stadium was full for the derby.",
    "Tea originated in China thousands of years ago.",
    "The students presented their projects to the class.",
    "Wind turbines were installed along the ridge.",
    "A memristive crossbar computes a matrix-vector product in one analog step.",
    "The cat sat on the warm windowsill all afternoon.",
    "Attention cost grows quadratically with the length of the sequence.",
    "Fresh bread is best eaten on the day it is baked.",
)


# --------------------------------------------------------------------------------------------------------------
# Inputs of the compiled shape
# --------------------------------------------------------------------------------------------------------------


def _fill(items: Sequence[Any], batch_size: int) -> list[list[Any]]:
    """Splits ``items`` into batches of exactly ``batch_size``; a short last batch is topped up from the start."""
    if not items:
        raise AttncError("no calibration items given")
    items = list(items)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    last = batches[-1]
    k = 0
    while len(last) < batch_size:
        last.append(items[k % len(items)])
        k += 1
    return batches


def sentence_batches(
    sentences: Sequence[str], batch_size: int, length: int, tokenizer: Any | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(input_ids, attention_mask)`` batches of exactly ``(batch_size, length)`` for a compiled MiniLM.

    Tokenises with MiniLM's tokenizer (or ``tokenizer``), padding every sentence to ``length`` and truncating
    longer ones; a short last batch is topped up with sentences from the start of the list.
    """
    if batch_size < 1 or length < 2:
        raise AttncError(f"bad batch shape ({batch_size}, {length})")
    tokenizer = tokenizer or _minilm_tokenizer()
    batches = []
    for group in _fill(sentences, batch_size):
        encoded = tokenizer(
            list(group), padding="max_length", truncation=True, max_length=length, return_tensors="pt"
        )
        batches.append((encoded["input_ids"], encoded["attention_mask"]))
    return batches


def _minilm_tokenizer():
    from transformers import AutoTokenizer

    from compiler.models import _offline_hub, minilm_path

    _offline_hub()
    return AutoTokenizer.from_pretrained(minilm_path())


def window_batches(
    sentences: Sequence[str], batch_size: int, length: int, count: int, seed: int = 0, tokenizer: Any | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` extra ``(input_ids, attention_mask)`` batches cut from the sentences read as one text.

    The sentences' tokens are concatenated; each row is a window of random length (3 .. length−2 tokens) at a
    random offset, wrapped in ``[CLS] … [SEP]`` and padded to ``length``. Windows cross sentence boundaries and
    vary in length, so a few dozen sentences give many distinct calibration inputs (the fit only has to match
    the original model on them, so they need not be sentences).
    """
    if count < 1:
        return []
    if batch_size < 1 or length < 5:
        raise AttncError(f"bad batch shape ({batch_size}, {length}) for text windows")
    tokenizer = tokenizer or _minilm_tokenizer()
    stream = [t for text in sentences for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
    if len(stream) < length:
        raise AttncError("too little calibration text for windows")
    generator = torch.Generator().manual_seed(seed)
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id or 0
    batches = []
    for _ in range(count):
        ids = torch.full((batch_size, length), pad, dtype=torch.long)
        mask = torch.zeros((batch_size, length), dtype=torch.long)
        for row in range(batch_size):
            size = int(torch.randint(3, length - 1, (), generator=generator))
            start = int(torch.randint(0, len(stream) - size + 1, (), generator=generator))
            tokens = [cls, *stream[start : start + size], sep]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        batches.append((ids, mask))
    return batches


def embedding_vocab_sizes(compiled: CompiledModel) -> dict[int, int]:
    """For each program input used as the indices of an ``nn.embedding``: input index → table rows."""
    function = entry_function(compiled.module)
    args = list(function.body.blocks.first.args)
    sizes: dict[int, int] = {}
    for op in compiled.module.walk():
        if isinstance(op, nn_dialect.EmbeddingOp) and isinstance(op.indices, BlockArgument) and op.indices in args:
            rows = nn_dialect.tensor_shape(op.weight)[0]
            index = args.index(op.indices)
            sizes[index] = min(rows, sizes.get(index, rows))
    return sizes


def random_batches(compiled: CompiledModel, count: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """``count`` input tuples of the example inputs' shapes and dtypes, for models without bundled text.

    Integer inputs that index an embedding get uniform ids in the table's range (other integer inputs with
    values beyond 0/1: uniform within the example's min..max); floating inputs are Gaussian with the example's
    mean and standard deviation; any other input (boolean or 0/1 masks, flags) is the example value.
    """
    if count < 1:
        raise AttncError("need at least one batch")
    if len(compiled.inputs) != len(compiled.input_names):
        raise AttncError("the compiled model carries no example inputs to take shapes from")
    vocab = embedding_vocab_sizes(compiled)
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        batch = []
        for index, example in enumerate(compiled.inputs):
            if index in vocab and not example.is_floating_point():
                batch.append(torch.randint(0, vocab[index], example.shape, generator=generator, dtype=example.dtype))
            elif example.dtype != torch.bool and not example.is_floating_point() and example.numel() and (
                example.min() < 0 or example.max() > 1
            ):  # integer ids not traced to an embedding: stay within the example's range
                low, high = int(example.min()), int(example.max()) + 1
                batch.append(torch.randint(low, high, example.shape, generator=generator, dtype=example.dtype))
            elif example.is_floating_point():
                std = example.float().std().item() if example.numel() > 1 else 1.0
                noise = torch.randn(example.shape, generator=generator) * (std or 1.0) + example.float().mean()
                batch.append(noise.to(example.dtype))
            else:
                batch.append(example.clone())
        batches.append(tuple(batch))
    return batches


# --------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------


def cosine_parameters(weights: dict[str, torch.Tensor]) -> list[str]:
    """Names of the per-head ``m`` parameters ``attn-cosine`` created."""
    return sorted(name for name in weights if name.endswith(COSINE_M_SUFFIX))


def attention_scopes(weights: dict[str, torch.Tensor]) -> list[str]:
    """The module scopes of the rewritten attention layers (see the module docstring)."""
    scopes = []
    for name in cosine_parameters(weights):
        path = name[: -len(COSINE_M_SUFFIX)]
        scopes.append(path[: -len(".self")] if path.endswith(".self") else path)
    return scopes


def projection_parameters(weights: dict[str, torch.Tensor]) -> list[str]:
    """Names of the q/k/v/o projection weights and biases of the rewritten attention layers."""
    chosen = set()
    for scope in attention_scopes(weights):
        prefix = f"{scope}." if scope else ""
        for name, tensor in weights.items():
            if (
                name.startswith(prefix)
                and tensor.is_floating_point()
                and not name.endswith(COSINE_M_SUFFIX)
                and PROJECTION_PATTERN.match(name[len(prefix) :])
            ):
                chosen.add(name)
    return sorted(chosen)


# --------------------------------------------------------------------------------------------------------------
# Loss and quality
# --------------------------------------------------------------------------------------------------------------


def _token_mask_index(compiled: CompiledModel) -> int | None:
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


def _check_batches(compiled: CompiledModel, batches: Sequence[tuple[torch.Tensor, ...]], what: str) -> None:
    function = entry_function(compiled.module)
    expected = [tuple(t.get_shape()) for t in function.function_type.inputs.data]
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
    compiled: CompiledModel,
    calibration_inputs: Sequence[tuple[torch.Tensor, ...]],
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    train_projections: bool = False,
    progress: bool = True,
    *,
    heldout_inputs: Sequence[tuple[torch.Tensor, ...]] | None = None,
    projection_lr: float = DEFAULT_PROJECTION_LR,
    output_kinds: Sequence[str] | None = None,
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
    m_names = cosine_parameters(compiled.weights)
    if not m_names:
        raise AttncError(
            "the program has no cosine attention (no '*.cosine_m' parameters): compile with attn-cosine "
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

    projection_names = projection_parameters(compiled.weights) if train_projections else []
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

    trainable = {
        name: compiled.weights[name].detach().clone().requires_grad_(True) for name in [*m_names, *projection_names]
    }
    weights = {**compiled.weights, **trainable}
    executor = Executor(compiled.module, weights)

    def evaluate():
        with torch.no_grad():
            outs = [executor(*batch) for batch in heldout_inputs]
        masks = [mask_of(b) for b in heldout_inputs]
        loss = sum(recovery_loss(o, r, m, kinds).item() for o, r, m in zip(outs, heldout_ref, masks))
        return output_quality(outs, heldout_ref, masks, kinds), loss / len(heldout_inputs)

    m_before = {n: trainable[n].detach().tolist() for n in m_names}
    before, loss_before = evaluate()

    groups = [{"params": [trainable[n] for n in m_names], "lr": lr}]
    if projection_names:
        groups.append({"params": [trainable[n] for n in projection_names], "lr": projection_lr})
    optimizer = torch.optim.Adam(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
    )

    losses: list[float] = []
    start = time.perf_counter()
    with _progress(progress, steps) as advance:
        for step in range(steps):
            batch_index = step % len(calibration_inputs)
            batch = calibration_inputs[batch_index]
            optimizer.zero_grad(set_to_none=True)
            outs = executor(*batch)
            loss = recovery_loss(outs, calibration_ref[batch_index], mask_of(batch), kinds)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            advance(loss.item())
    seconds = time.perf_counter() - start

    after, loss_after = evaluate()
    for name, tensor in trainable.items():
        compiled.weights[name] = tensor.detach().clone()
    report = RecoveryReport(
        trained=[*m_names, *projection_names],
        steps=steps,
        lr=lr,
        projection_lr=projection_lr,
        calibration_batches=len(calibration_inputs),
        heldout_batches=len(heldout_inputs),
        before=before,
        after=after,
        losses=losses,
        heldout_loss_before=loss_before,
        heldout_loss_after=loss_after,
        m_before=m_before,
        m_after={n: compiled.weights[n].tolist() for n in m_names},
        seconds=seconds,
        trained_parameter_count=sum(t.numel() for t in trainable.values()),
    )
    return report


class _progress:
    """A rich progress bar (on stderr) showing the step and the current loss; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled or self.total == 0:
            return lambda loss: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("recovery"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.__enter__()
        task = self.bar.add_task("fit", total=self.total, loss="-")
        return lambda loss: self.bar.update(task, advance=1, loss=f"{loss:.5f}")

    def __exit__(self, *exc):
        if getattr(self, "bar", None) is not None:
            self.bar.__exit__(*exc)
        return False


# --------------------------------------------------------------------------------------------------------------
# Data for a spec (used by the CLI)
# --------------------------------------------------------------------------------------------------------------


def is_sentence_model(compiled: CompiledModel) -> bool:
    """A compiled MiniLM-style sentence encoder: inputs ``(input_ids, attention_mask)`` of one 2-d shape."""
    return (
        list(compiled.input_names) == ["input_ids", "attention_mask"]
        and len(compiled.inputs) == 2
        and compiled.inputs[0].dim() == 2
        and compiled.inputs[0].shape == compiled.inputs[1].shape
    )


def default_batches(
    spec_name: str,
    compiled: CompiledModel,
    calibration_batches: int | None = None,
    seed: int = 0,
    windows: int = DEFAULT_WINDOW_BATCHES,
) -> tuple[list[tuple[torch.Tensor, ...]], list[tuple[torch.Tensor, ...]]]:
    """Calibration and held-out inputs for a spec.

    MiniLM: the built-in calibration sentences, plus ``windows`` batches of text windows cut from them
    (:func:`window_batches`), and the built-in held-out sentences (never seen by the fit, nor their words'
    contexts: the two lists are disjoint). Other specs: random inputs of the example shapes
    (:func:`random_batches`), 16 calibration and 4 held-out batches from different seeds.
    ``calibration_batches`` caps the number of calibration batches.
    """
    if calibration_batches is not None and calibration_batches < 1:
        raise AttncError("--calibration-batches must be at least 1")
    if spec_name.startswith("minilm") and is_sentence_model(compiled):
        batch, length = compiled.inputs[0].shape
        tokenizer = _minilm_tokenizer()
        calibration = sentence_batches(CALIBRATION_SENTENCES, batch, length, tokenizer)
        calibration += window_batches(CALIBRATION_SENTENCES, batch, length, windows, seed, tokenizer)
        heldout = sentence_batches(HELDOUT_SENTENCES, batch, length, tokenizer)
        return calibration[:calibration_batches], heldout
    count = 16 if calibration_batches is None else calibration_batches
    return random_batches(compiled, count, seed=seed + 1), random_batches(compiled, 4, seed=seed + 10_000)
