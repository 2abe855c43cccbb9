"""Which calibration data a model gets: the driver's choice, by spec (the fitting layer never sees a spec)."""

from __future__ import annotations

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
