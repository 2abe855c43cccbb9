"""Import time of attnc's three routes into ``nn``, per bundled model and for MiniLM as ONNX.

Run from the repository root (a few minutes on 2 cores; needs the ``onnx`` extra)::

    .venv/bin/python bench/frontend_routes.py

Per bundled model, the median of 3 repeats (after one warm-up) of importing the same
``run_decompositions({})`` program with attnc's FX importer and with ``--frontend torch-mlir``
(torch-mlir's FX importer, weights as arguments, read back through the same ATen table); the export is not
timed. For all-MiniLM-L6-v2 exported to ONNX by ``torch.onnx.export`` (TorchScript route, opset 17, 16
tokens): the ONNX import (onnxruntime shape run, torch-mlir's ONNX importer, ``convert-torch-to-nn``).
Writes ``bench/results/frontend_routes.md``.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from compiler.api import export_model, load_spec  # noqa: E402
from compiler.frontend.fx_importer import import_exported_program  # noqa: E402
from compiler.frontend.onnx_importer import import_onnx, load_onnx  # noqa: E402
from compiler.frontend.torch_mlir_route import import_via_torch_mlir  # noqa: E402
from compiler.models import BUNDLED, minilm  # noqa: E402

REPEATS = 3


def median_seconds(make_input, run) -> float:
    samples = []
    for index in range(REPEATS + 1):
        argument = make_input()
        start = time.perf_counter()
        run(argument)
        if index:
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    started = time.time()
    load = os.getloadavg()[0]
    rows = []
    for name in BUNDLED:
        spec = load_spec(name)
        fx = median_seconds(lambda: export_model(spec), import_exported_program)
        tm = median_seconds(lambda: export_model(spec), import_via_torch_mlir)
        rows.append(f"| `{name}` | {fx * 1000:,.0f} ms | {tm * 1000:,.0f} ms | {tm / fx:.1f}× |")
    with tempfile.TemporaryDirectory() as directory:
        model, inputs = minilm()
        path = Path(directory) / "minilm.onnx"
        names = ["input_ids", "attention_mask"]
        torch.onnx.export(model, inputs, str(path), dynamo=False, input_names=names, opset_version=17,
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names})
        onnx_seconds = median_seconds(lambda: load_onnx(path), import_onnx)
    lines = [
        "# Import time of the three frontends",
        "",
        "- Command: `.venv/bin/python bench/frontend_routes.py` (from the repository root)",
        f"- Date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"- Machine: {platform.machine()}, {os.cpu_count()} logical cores (shared with other jobs), Python "
        f"{platform.python_version()}; 1-min load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end; "
        f"wall time {time.time() - started:.0f} s",
        f"- Median of {REPEATS} repeats after one warm-up; export (`torch.export` + `run_decompositions({{}})`) "
        "not timed; each repeat imports a fresh export (torch-mlir rewrites the program's graph).",
        "",
        "| bundled model | FX importer | `--frontend torch-mlir` | ratio |",
        "|---|---|---|---|",
        *rows,
        "",
        f"all-MiniLM-L6-v2 as ONNX (TorchScript exporter, opset 17, batch 1 × 16 tokens), `import_onnx` "
        f"(onnxruntime shape run + torch-mlir ONNX importer + xDSL parse + convert-torch-to-nn): "
        f"{onnx_seconds * 1000:,.0f} ms.",
        "",
        "Both PyTorch routes give the same outputs (max difference ≤ 1e-5, in practice 0) and the same number "
        "of `attn.sdpa` after attn-raise on every bundled model (`tests/unit/test_torch_mlir_route.py`).",
    ]
    out = REPO / "bench" / "results" / "frontend_routes.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
