"""Calibration data for fitting: text shipped with attnc and batches of a compiled program's input shapes.

A compiled program has fixed input shapes, so every batch has exactly the example inputs' shapes:
:func:`sentence_batches` tokenises and pads sentences to that shape, :func:`window_batches` cuts many more
inputs of that shape out of the same text, and :func:`random_batches` draws inputs for models without text.
Which data a given model gets is the driver's choice (``compiler/calibration.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import BlockArgument

from dialects import nn as nn_dialect
from dialects.diagnostics import AttncError
from runtime.executor import entry_function


class Program(Protocol):
    """What fitting needs of a compiled model (``compiler.api.CompiledModel`` is one)."""

    module: ModuleOp
    weights: dict[str, torch.Tensor]
    inputs: tuple[torch.Tensor, ...]
    input_names: list[str]
    reference: Callable[..., Any] | None


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
    if tokenizer is None:
        raise AttncError("give the tokenizer of the model the batches are for")
    batches = []
    for group in _fill(sentences, batch_size):
        encoded = tokenizer(
            list(group), padding="max_length", truncation=True, max_length=length, return_tensors="pt"
        )
        batches.append((encoded["input_ids"], encoded["attention_mask"]))
    return batches


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
    if tokenizer is None:
        raise AttncError("give the tokenizer of the model the batches are for")
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


def embedding_vocab_sizes(compiled: Program) -> dict[int, int]:
    """For each program input used as the indices of an ``nn.embedding``: input index → table rows."""
    function = entry_function(compiled.module)
    args = list(function.body.block.args)
    sizes: dict[int, int] = {}
    for op in compiled.module.walk():
        if isinstance(op, nn_dialect.EmbeddingOp) and isinstance(op.indices, BlockArgument) and op.indices in args:
            rows = nn_dialect.tensor_shape(op.weight)[0]
            index = args.index(op.indices)
            sizes[index] = min(rows, sizes.get(index, rows))
    return sizes


def random_batches(compiled: Program, count: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
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
