"""``--frontend torch-mlir``: torch-mlir's FX importer read back through attnc's ATen table agrees with the FX
frontend on every bundled model: same outputs, same weights, same attention raised."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_mlir")

from compiler.api import CompiledModel, apply_passes, export_model, load_spec, max_abs_error, parse_pipeline  # noqa: E402
from compiler.cli.main import main  # noqa: E402
from compiler.frontend.fx_importer import import_exported_program  # noqa: E402
from compiler.frontend.torch_mlir_route import import_via_torch_mlir  # noqa: E402
from compiler.models import BUNDLED  # noqa: E402
from dialects import attn  # noqa: E402
from runtime.executor import Executor  # noqa: E402

COSINE_ONLY = {"vit-cl-cosine"}  # cosine attention written out: no softmax attention to raise


@pytest.mark.parametrize("name", BUNDLED)
def test_both_frontends_agree(name):
    spec = load_spec(name)
    results = {}
    for frontend, importer in (("fx", import_exported_program), ("torch-mlir", import_via_torch_mlir)):
        imported = importer(export_model(spec))  # a fresh export each: torch-mlir rewrites the program's graph
        apply_passes(imported.module, parse_pipeline("attn-raise"))
        with torch.no_grad():
            outputs = Executor(imported.module, imported.weights)(*spec.inputs)
        raised = sum(isinstance(op, attn.SdpaOp) for op in imported.module.walk())
        results[frontend] = (outputs, raised, set(imported.weights))
    (fx_out, fx_raised, fx_weights), (tm_out, tm_raised, tm_weights) = results["fx"], results["torch-mlir"]
    assert (fx_raised > 0 or name in COSINE_ONLY) and tm_raised == fx_raised
    assert tm_weights == fx_weights
    assert max_abs_error(tm_out, fx_out) <= 1e-5


def test_cli_frontend_option(tmp_path, capsys):
    assert main(["compile", "mha", "-p", "attn-raise", "--frontend", "torch-mlir", "-o", str(tmp_path / "out")]) == 0
    compiled = CompiledModel.load(tmp_path / "out")
    assert sum(isinstance(op, attn.SdpaOp) for op in compiled.module.walk()) == 1
    assert max_abs_error(compiled.run(), compiled.reference_outputs or []) <= 1e-5
