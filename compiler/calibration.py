"""Which calibration data a model gets: the driver's choice, by spec (the fitting layer never sees a spec)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from compiler.api import CompiledModel
from compiler.errors import AttncError
from fitting.calibration import CALIBRATION_SENTENCES, HELDOUT_SENTENCES, random_batches, sentence_batches, window_batches

DEFAULT_WINDOW_BATCHES = 240


def _minilm_tokenizer():
    from transformers import AutoTokenizer

    from compiler.models import _offline_hub, minilm_path

    _offline_hub()
    return AutoTokenizer.from_pretrained(minilm_path())


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
        return list(calibration[:calibration_batches]), list(heldout)
    count = 16 if calibration_batches is None else calibration_batches
    return random_batches(compiled, count, seed=seed + 1), random_batches(compiled, 4, seed=seed + 10_000)


def read_calibration(
    path: str | Path, input_names: Sequence[str], example_inputs: Sequence[torch.Tensor]
) -> list[tuple[torch.Tensor, ...]]:
    """Calibration batches from a safetensors file holding one tensor per model input, samples on dim 0.

    Each tensor must be named like the model's input (as in ``inputs.safetensors``), have the example
    input's dtype and trailing shape, and the same number of samples as the others, a multiple of the
    example batch size; the samples are cut into batches of the example inputs' shape.
    """
    from compiler.artifacts import read_tensors

    tensors = read_tensors(Path(path), "calibration data")
    if not tensors:
        raise AttncError(f"{path}: the calibration file holds no tensors")
    unknown = sorted(set(tensors) - set(input_names))
    for name, example in zip(input_names, example_inputs):
        if name not in tensors:
            hint = f" (it holds {', '.join(unknown)})" if unknown else ""
            raise AttncError(f"{path}: no calibration tensor '{name}' for model input '{name}'{hint}")
        given = tensors[name]
        if given.dim() != example.dim() or tuple(given.shape[1:]) != tuple(example.shape[1:]) or given.dtype != example.dtype:
            raise AttncError(
                f"{path}: calibration tensor '{name}' has shape {tuple(given.shape)} {given.dtype}; the model takes "
                f"(N, {', '.join(str(d) for d in example.shape[1:])}) {example.dtype}, samples stacked on dim 0"
            )
    if unknown:
        raise AttncError(f"{path}: calibration tensor '{unknown[0]}' is not a model input ({', '.join(input_names)})")
    samples = {tensors[name].shape[0] for name in input_names}
    batch = example_inputs[0].shape[0] if example_inputs and example_inputs[0].dim() else 1
    first = input_names[0]
    count = tensors[first].shape[0]
    if len(samples) != 1:
        raise AttncError(f"{path}: calibration tensors hold different numbers of samples ({sorted(samples)})")
    if count == 0 or count % batch:
        raise AttncError(
            f"{path}: calibration tensor '{first}' holds {count} samples; need a positive multiple of the model's batch {batch}"
        )
    return [tuple(tensors[name][start : start + batch] for name in input_names) for start in range(0, count, batch)]
