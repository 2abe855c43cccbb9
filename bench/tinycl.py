"""The TinyCL target: fixed-point accuracy, the snake tile order, and softmax vs cosine attention on the array.

* vit-digits (shipped TinyViT, 500 held-out scikit-learn digits, all in one batch) lowered with
  ``lower-to-tinycl`` at 16/8, 12/6 and 8/4 (total/fractional bits), nearest-even and truncate rounding,
  saturation: accuracy, agreement of predictions with the float model, max |logit error|.
* The cost model on vit-digits at batch 8 (16x16 array): MACs, cycles, utilisation, on-chip/off-chip words and
  energy with the snake tile order and with the raster order, for a 16x16 and an 8x32 array.
* Softmax vs cosine attention on the array: vit-digits lowered through ``attn-raise,lower-to-tinycl`` and through
  ``attn-raise,attn-cosine,lower-to-tinycl`` (the attention layers' figures, and the fixed-point error against the
  same program in float), then the cost model's formula for 4 heads of 16 features, batch 8, lengths 17 to 1024.
* One training epoch of patch-digits and vit-digits: modelled cycles and energy per phase on the array vs the
  same epoch measured in float PyTorch on this CPU.
* vit-digits with the per-class formats of bench/tinycl_error.py's best 16-bit configuration.

Writes bench/results/tinycl.md. Run: ``.venv/bin/python bench/tinycl.py`` (about a minute on 2 idle cores).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from compiler.api import ModelSpec, compile_model
from compiler.models import BUNDLED, digits_split
from targets.tinycl.cost import PHASES, ArrayConfig, attention_figures, layer_costs, totals

RESULTS = Path(__file__).resolve().parent / "results" / "tinycl.md"
FORMATS = ((16, 8), (12, 6), (8, 4))


def accuracy_rows() -> list[str]:
    model, _ = BUNDLED["vit-digits"]()
    _, _, x_test, y_test = digits_split()
    with torch.no_grad():
        reference = model(x_test)
    float_accuracy = (reference.argmax(-1) == y_test).float().mean().item()
    rows = [f"| float | - | {float_accuracy:.4f} | 1.0000 | 0 |"]
    for total, frac in FORMATS:
        for rounding in ("nearest-even", "truncate"):
            pipeline = f"attn-raise,lower-to-tinycl{{total-bits={total} frac-bits={frac} rounding={rounding} sram-kb=65536}}"
            (logits,) = compile_model(ModelSpec("vit-digits", model, (x_test,)), pipeline).run()
            accuracy = (logits.argmax(-1) == y_test).float().mean().item()
            agreement = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
            error = (logits - reference).abs().max().item()
            rows.append(f"| {total}/{frac} | {rounding} | {accuracy:.4f} | {agreement:.4f} | {error:.3f} |")
    per_class = "total-bits=16 frac-bits=11 weight-frac-bits=14 score-frac-bits=8"
    (logits,) = compile_model(
        ModelSpec("vit-digits", model, (x_test,)), f"attn-raise,lower-to-tinycl{{{per_class} sram-kb=65536}}"
    ).run()
    accuracy = (logits.argmax(-1) == y_test).float().mean().item()
    agreement = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
    error = (logits - reference).abs().max().item()
    rows.append(f"| 16/11, weights 16/14, scores 16/8 | nearest-even | {accuracy:.4f} | {agreement:.4f} | {error:.3f} |")
    return rows


def snake_rows() -> list[str]:
    rows = []
    for rows_, cols in ((16, 16), (8, 32)):
        for snake in (True, False):
            pipeline = f"attn-raise,lower-to-tinycl{{pe-rows={rows_} pe-cols={cols} snake={'true' if snake else 'false'}}}"
            module = compile_model("vit-digits", pipeline).module
            total = totals(layer_costs(module))
            utilisation = total["macs"] / (total["cycles"] * rows_ * cols)
            rows.append(
                f"| {rows_}x{cols} | {'snake' if snake else 'raster'} | {int(total['macs'])} | {int(total['cycles'])} | "
                f"{utilisation:.1%} | {int(total['on_chip'])} | {int(total['off_chip'])} | {total['energy_pj'] / 1e6:.1f} |"
            )
    return rows


def lowered_attention_rows() -> list[str]:
    rows = []
    for label, passes in (("softmax", "attn-raise"), ("cosine", "attn-raise,attn-cosine")):
        float_program = compile_model("vit-digits", passes)
        lowered = compile_model("vit-digits", f"{passes},lower-to-tinycl")
        attention = [layer for layer in layer_costs(lowered.module) if layer.layer.endswith(".attn")]
        error = max((a - b).abs().max().item() for a, b in zip(lowered.run(), float_program.run()))
        rows.append(
            f"| {label} | {sum(x.macs for x in attention)} | {sum(x.cycles for x in attention)} | "
            f"{sum(x.energy_pj for x in attention) / 1e6:.2f} | {error:.3f} |"
        )
    return rows


def attention_rows() -> list[str]:
    config = ArrayConfig()
    rows = []
    for length in (17, 64, 256, 1024):
        softmax, cosine = (attention_figures(kind, 8 * 4, length, 16, config) for kind in ("softmax", "cosine"))
        rows.append(
            f"| {length} | {int(softmax['macs'])} | {int(cosine['macs'])} | {int(softmax['cycles'])} | {int(cosine['cycles'])} | "
            f"{softmax['energy_pj'] / 1e6:.2f} | {cosine['energy_pj'] / 1e6:.2f} | {softmax['cycles'] / cosine['cycles']:.1f}x |"
        )
    return rows


TRAINING_BATCH = 16


def training_rows() -> list[str]:
    """One training epoch (1,297 digits, batch 16, SGD lr 0.02 momentum 0.9): the TinyCL cost model's cycles and
    energy per phase (modelled, 16/8, 16x16 array), and the same epoch timed in float PyTorch on this CPU."""
    import copy

    from compiler.training import compiled_trainer, fresh_state, training_data

    rows = []
    for spec in ("patch-digits", "vit-digits"):
        model, example, (x, y, _, _) = training_data(spec)
        options = {"total-bits": "16", "frac-bits": "8", "sram-kb": "1024"}  # vit-digits' step needs 1 MiB at batch 16
        trainer = compiled_trainer(model, example, "tinycl", lr=0.02, momentum=0.9, target_options=options,
                                   batch_size=TRAINING_BATCH)
        cost = trainer.modelled_epoch_cost(len(x), TRAINING_BATCH)  # type: ignore[attr-defined]
        assert cost is not None
        twin = copy.deepcopy(model)
        twin.load_state_dict(fresh_state(model, 0))
        optimiser = torch.optim.SGD(twin.parameters(), lr=0.02, momentum=0.9)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        for first in range(0, len(x), TRAINING_BATCH):
            batch = order[first : first + TRAINING_BATCH]
            loss = torch.nn.functional.cross_entropy(twin(x[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        measured = time.perf_counter() - start
        phases = " | ".join(f"{cost[f'{p} cycles'] / 1e6:.2f}" for p in PHASES)
        rows.append(
            f"| {spec} | {int(cost['steps'])} | {cost['MACs'] / 1e6:.1f} | {phases} | {cost['cycles'] / 1e6:.2f} "
            f"| {cost['energy uJ'] / 1e3:.2f} | {measured:.2f} |"
        )
    return rows


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    accuracy, snake, lowered, attention = accuracy_rows(), snake_rows(), lowered_attention_rows(), attention_rows()
    training = training_rows()
    minutes = (time.perf_counter() - start) / 60
    text = [
        "# TinyCL target: fixed point, tile order, attention cost",
        "",
        f"Command: `python bench/tinycl.py` ({minutes:.1f} min, torch {torch.__version__}, {platform.machine()}, 1 thread).",
        "Related: `python bench/tinycl_error.py` (where the fixed-point error comes from, per-class formats:",
        "bench/results/tinycl_error.md) and `python bench/tinycl_zigzag.py --zigzag-python /tmp/zz/bin/python` (the GEMMs",
        "against ZigZag: bench/results/tinycl_zigzag.md).",
        "",
        "## vit-digits in fixed point (500 held-out images, saturation)",
        "",
        "Agreement: share of images whose predicted class equals the float model's. Error: max |logit − float logit|",
        "over the 500 images (the float logits have a standard deviation of about 2.8).",
        "",
        "| format (total/frac) | rounding | accuracy | agreement | max logit error |",
        "|---|---|---|---|---|",
        *accuracy,
        "",
        "## Snake vs raster tile order (vit-digits, batch 8, 16/8)",
        "",
        "Weights stream from off-chip memory; the snake order keeps the rhs tile at each turn of the tile rows.",
        "",
        "| array | order | MACs | cycles | utilisation | on-chip words | off-chip words | energy (uJ) |",
        "|---|---|---|---|---|---|---|---|",
        *snake,
        "",
        "## Softmax vs cosine attention on vit-digits (batch 8, 17 tokens, 16x16 array, 16/8)",
        "",
        "The four attention layers as lowered; error: max |output − the same program in float| (cosine attention with",
        "its initial m, not recovered).",
        "",
        "| attention | MACs | cycles | energy (uJ) | fixed-point error |",
        "|---|---|---|---|---|",
        *lowered,
        "",
        "## Softmax vs cosine attention by length (cost model, 32 heads·batch, 16 features, 16/8)",
        "",
        "| length | MACs softmax | MACs cosine | cycles softmax | cycles cosine | energy softmax (uJ) | energy cosine (uJ) "
        "| cycles ratio |",
        "|---|---|---|---|---|---|---|---|",
        *attention,
        "",
        "## One training epoch: modelled on the array vs measured in float on this CPU",
        "",
        f"1,297 digits, batch {TRAINING_BATCH}, SGD (lr 0.02, momentum 0.9). **Modelled**: the TinyCL cost model of the",
        "compiled training step lowered at 16/8 on a 16x16 array (1 MiB SRAM), summed over the epoch's steps (cycles in",
        "millions). The whole step runs on the device model: the GEMMs on the MAC array in their modes, the backward",
        "units (softmax, layer norm, GELU, the loss gradient, reductions) counted in the input-gradient phase, the SGD",
        "step with momentum on the update mode. **Measured**: wall time of the same epoch in float32 PyTorch (eager,",
        "autograd, torch.optim.SGD) on this machine's CPU, one thread (a shared machine: the time varies with its load).",
        "",
        "| model | steps | MACs (M) | forward Mcycles | input-grad Mcycles | weight-grad Mcycles | update Mcycles "
        "| total Mcycles (modelled) | energy mJ (modelled) | float CPU s (measured) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *training,
        "",
    ]
    RESULTS.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
