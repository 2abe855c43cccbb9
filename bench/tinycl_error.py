"""Where vit-digits loses accuracy in fixed point: per-op error attribution and the per-class bit options.

* Attribution: vit-digits (500 held-out digits) with only one kind of op lowered to the TinyCL array (the rest in
  float), and with every kind lowered but one: max |logit − float logit| for each.
* Configurations: the per-tensor-class options of ``lower-to-tinycl`` (activations ``frac-bits``, weights
  ``weight-frac-bits``, attention scores ``score-frac-bits``, softmax probabilities ``prob-frac-bits``; the
  accumulators are always wide enough not to overflow) and which of them reach a max logit error of 1e-2.
* Calibrated formats: ``formats=calibrated`` (a format per quantisation point from its max |x| on 500 training
  digits, disjoint from the held-out ones) against one uniform format and the best hand-picked per-class
  setting, at 16, 12 and 8 bits, and the headroom factor.

Writes bench/results/tinycl_error.md. Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/tinycl_error.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from compiler.api import ModelSpec, compile_model
from compiler.models import BUNDLED, digits_split
from dialects import attn, nn
from targets.tinycl import lowering

RESULTS = Path(__file__).resolve().parent / "results" / "tinycl_error.md"
KINDS = {
    "linear": (nn.LinearOp,),
    "sdpa (QK, softmax, PV)": (attn.SdpaOp, nn.MatmulOp),
    "layer norm": (nn.LayerNormOp,),
    "gelu": (nn.GeluOp,),
}


def _run(model, x, reference, options: str, kinds: tuple, calibration=None) -> tuple[float, float]:
    """(max |logit error|, agreement) with only ``kinds`` lowered; ``calibration``: the batches that choose
    ``formats=calibrated``'s formats (default: the held-out images themselves, the compiler's example input)."""
    saved = lowering.LOWERED
    lowering.LOWERED = kinds  # the pattern lowers the kinds in this tuple and leaves the rest in float
    try:
        pipeline = f"attn-raise,lower-to-tinycl{{{options} sram-kb=65536}}"
        (logits,) = compile_model(ModelSpec("vit-digits", model, (x,)), pipeline, calibration=calibration).run()
    finally:
        lowering.LOWERED = saved
    agreement = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
    return (logits - reference).abs().max().item(), agreement


def main() -> None:
    torch.set_num_threads(1)
    start = time.time()
    model, _ = BUNDLED["vit-digits"]()
    x_train, _, x_test, _ = digits_split()
    training = [(x_train[: len(x_test)],)]  # 500 training digits choose the calibrated formats
    with torch.no_grad():
        reference = model(x_test)
    every = lowering.LOWERED
    lines = [
        "# vit-digits in fixed point: where the error comes from",
        "",
        "Command: `OMP_NUM_THREADS=1 python bench/tinycl_error.py` (500 held-out digits in one batch; error: max |logit −",
        "float logit|; agreement: share of predictions equal to the float model's).",
        "",
    ]
    attributed = (
        "total-bits=16 frac-bits=8 prob-frac-bits=8",
        "total-bits=16 frac-bits=8",
        "total-bits=16 frac-bits=11 weight-frac-bits=14 score-frac-bits=8",
    )
    calibrated = "total-bits=16 formats=calibrated"
    for options in (*attributed, calibrated):
        lines += [f"## Per-op attribution (`{options}`)", "", "| lowered | only this kind | all but this kind |", "|---|---|---|"]
        for label, kinds in KINDS.items():
            alone = _run(model, x_test, reference, options, kinds, training)
            others = tuple(k for k in every if k not in kinds)
            without = _run(model, x_test, reference, options, others, training)
            lines.append(f"| {label} | {alone[0]:.4f} ({alone[1]:.3f}) | {without[0]:.4f} ({without[1]:.3f}) |")
        full = _run(model, x_test, reference, options, every, training)
        lines += [f"| everything | {full[0]:.4f} ({full[1]:.3f}) | - |", ""]
        print("\n".join(lines), flush=True)
    lines += ["## Per-class formats (everything lowered)", "", "| options | max logit error | agreement |", "|---|---|---|"]
    configs = (
        "total-bits=16 frac-bits=8 prob-frac-bits=8",
        "total-bits=16 frac-bits=8",
        "total-bits=16 frac-bits=8 weight-frac-bits=13",
        "total-bits=16 frac-bits=9 weight-frac-bits=13",
        "total-bits=16 frac-bits=10 weight-frac-bits=13",
        "total-bits=16 frac-bits=10 weight-frac-bits=13 score-frac-bits=8",
        "total-bits=16 frac-bits=11 weight-frac-bits=13 score-frac-bits=8",
        "total-bits=16 frac-bits=11 weight-frac-bits=13 score-frac-bits=7",
        "total-bits=16 frac-bits=11 weight-frac-bits=14 score-frac-bits=8",
        "total-bits=16 frac-bits=12 weight-frac-bits=14 score-frac-bits=8",
        "total-bits=12 frac-bits=6",
        "total-bits=12 frac-bits=7 weight-frac-bits=10 score-frac-bits=4",
        "total-bits=8 frac-bits=4",
    )
    for options in configs:
        error, agreement = _run(model, x_test, reference, options, every)
        lines.append(f"| `{options}` | {error:.4f} | {agreement:.3f} |")
        print(lines[-1], flush=True)
    lines += [
        "",
        "## Calibrated per-tensor formats against uniform and hand-picked ones (everything lowered)",
        "",
        "`formats=calibrated`: each quantisation point gets the most fractional bits that hold its max |x| on 500",
        "training digits times the headroom (1.25 unless given; parameters exactly). Last row: calibrated on the",
        "held-out images themselves (the compiler calibrates on the example input when given no `--calibration`).",
        "",
        "| total bits | setting | max logit error | agreement |",
        "|---|---|---|---|",
    ]
    compared = (
        (16, "uniform", "total-bits=16 frac-bits=8", training),
        (16, "hand-picked", "total-bits=16 frac-bits=11 weight-frac-bits=14 score-frac-bits=8", training),
        (16, "calibrated", "total-bits=16 formats=calibrated", training),
        (16, "calibrated", "total-bits=16 formats=calibrated headroom=1.0", training),
        (16, "calibrated", "total-bits=16 formats=calibrated headroom=1.1", training),
        (16, "calibrated", "total-bits=16 formats=calibrated headroom=1.5", training),
        (16, "calibrated", "total-bits=16 formats=calibrated headroom=2.0", training),
        (12, "uniform", "total-bits=12 frac-bits=6", training),
        (12, "hand-picked", "total-bits=12 frac-bits=7 weight-frac-bits=10 score-frac-bits=4", training),
        (12, "calibrated", "total-bits=12 formats=calibrated", training),
        (8, "uniform", "total-bits=8 frac-bits=4", training),
        (8, "calibrated", "total-bits=8 formats=calibrated", training),
        (16, "calibrated on the held-out images", "total-bits=16 formats=calibrated", None),
    )
    for total, label, options, batches in compared:
        error, agreement = _run(model, x_test, reference, options, every, batches)
        lines.append(f"| {total} | {label}: `{options}` | {error:.4f} | {agreement:.3f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Run time {time.time() - start:.0f} s, torch {torch.__version__}, 1 thread."]
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
