"""``attnc export --format torch-mlir`` round trip on every bundled model: export, lower, run, compare.

Run from the repository root (a few minutes on 2 cores; needs the ``onnx`` extra)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/torch_mlir_export.py

Per bundled model compiled with ``attn-raise``: the time to export (emit, parse and verify with torch-mlir's
bindings), to lower with torch-mlir's ``torch-function-to-torch-backend-pipeline`` and
``torch-backend-to-linalg-on-tensors-backend-pipeline``, and to lower to LLVM, JIT-compile and run on
torch-mlir's reference backend (``compiler/torch_mlir_refbackend.py``); the number of
``scaled_dot_product_attention`` ops; the largest difference from attnc's executor and from PyTorch.
One run each (the backend's JIT dominates and does not repeat the same way). Writes
``bench/results/torch_mlir_export.md``.

``--zoo``: the same round trip on every configuration of the model zoo (``tests/unit/zoo_models.py``: tiny
Hugging Face architectures and PyTorch's attention modules), with the difference from attnc's executor and
from PyTorch; writes ``bench/results/torch_mlir_export_zoo.md``.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from compiler.api import compile_model, max_abs_error  # noqa: E402
from compiler.models import BUNDLED  # noqa: E402
from compiler.torch_mlir_export import export_torch_mlir  # noqa: E402
from compiler.torch_mlir_refbackend import lower_to_linalg, run_on_refbackend  # noqa: E402
from dialects import attn  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    started = time.time()
    load = os.getloadavg()[0]
    rows = []
    for name in BUNDLED:
        compiled = compile_model(name, "attn-raise")
        raised = sum(isinstance(op, attn.SdpaOp) for op in compiled.module.walk())
        start = time.perf_counter()
        exported = export_torch_mlir(compiled.module, compiled.input_names)
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        lower_to_linalg(exported.text)
        lower_s = time.perf_counter() - start
        start = time.perf_counter()
        outputs = run_on_refbackend(exported.text, exported.arguments(compiled.inputs, compiled.weights))
        run_s = time.perf_counter() - start
        ours = list(compiled.run())
        reference = compiled.run_reference()
        sdpa = exported.text.count("torch.aten.scaled_dot_product_attention ")
        rows.append(
            f"| `{name}` | {raised} / {sdpa} | {len(exported.text) / 1000:,.0f} kB | {export_s:.2f} s | {lower_s:.2f} s "
            f"| {run_s:.1f} s | {max_abs_error(outputs, ours):.1e} | {max_abs_error(outputs, reference):.1e} |"
        )
        print(rows[-1], flush=True)
    lines = [
        "# `attnc export --format torch-mlir`: the round trip through torch-mlir",
        "",
        "- Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/torch_mlir_export.py` (from the repository root)",
        f"- Date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"- Machine: {platform.machine()}, {os.cpu_count()} logical cores (shared with other jobs), Python "
        f"{platform.python_version()}, torch {torch.__version__}, torch-mlir 20261001; 1-min load average "
        f"{load:.1f} at start, {os.getloadavg()[0]:.1f} at end; wall time {time.time() - started:.0f} s",
        "- Each model compiled with `attn-raise` on its bundled example inputs; one run each.",
        "",
        "| bundled model | `attn.sdpa` / exported `scaled_dot_product_attention` | text | export (emit + torch-mlir "
        "parse, verify, print) | torch-mlir lowering to linalg-on-tensors | reference backend (lower to LLVM, JIT, "
        "run) | max abs difference vs attnc's executor | vs PyTorch |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Weights are `@main` arguments, not literals, so the text stays small. The reference backend runs "
        "naive loops (no tiling or vectorisation), so its time is JIT compilation plus slow execution: it is a "
        "correctness check, not a speed one.",
    ]
    out = REPO / "bench" / "results" / "torch_mlir_export.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def zoo() -> None:
    """Export, lower and run every model-zoo configuration; one row each, failures included."""
    from compiler.api import ModelSpec
    from runtime.executor import flat_tensors
    from tests.unit.zoo_models import ZOO

    torch.set_num_threads(1)
    started = time.time()
    rows = []
    for name, build in ZOO.items():
        model, inputs = build()
        try:
            compiled = compile_model(ModelSpec(name, model, tuple(inputs)), "attn-raise")
            exported = export_torch_mlir(compiled.module, compiled.input_names)
            outputs = run_on_refbackend(exported.text, exported.arguments(compiled.inputs, compiled.weights))
            with torch.no_grad():
                reference = flat_tensors(model(*inputs))
            sdpa = exported.text.count("torch.aten.scaled_dot_product_attention ")
            rows.append(f"| `{name}` | {sdpa} | {max_abs_error(outputs, list(compiled.run())):.1e} "
                        f"| {max_abs_error(outputs, reference):.1e} |")
        except Exception as error:  # a row per failure: the table is the record
            rows.append(f"| `{name}` | failed | {type(error).__name__}: {str(error).splitlines()[0][:120]} | |")
        print(rows[-1], flush=True)
    lines = [
        "# `attnc export --format torch-mlir` on the model zoo",
        "",
        "- Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/torch_mlir_export.py --zoo` (from the repository root)",
        f"- Date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}; wall time "
        f"{time.time() - started:.0f} s on {os.cpu_count()} shared cores",
        "- Each configuration compiled with `attn-raise`, exported, lowered by torch-mlir to linalg-on-tensors and "
        "run on its reference backend.",
        "",
        "| configuration | exported `scaled_dot_product_attention` | max abs difference vs attnc's executor | vs PyTorch |",
        "|---|---|---|---|",
        *rows,
    ]
    out = REPO / "bench" / "results" / "torch_mlir_export_zoo.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    zoo() if "--zoo" in sys.argv[1:] else main()
