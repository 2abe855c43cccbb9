"""The attnc CLI end to end: compile → run, verify's exit code, and clean errors on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

ATTNC = str(Path(sys.executable).with_name("attnc"))


def attnc(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([ATTNC, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def compiled_dir(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("mha")
    result = attnc("compile", "mha", "-p", "attn-raise", "-o", str(outdir))
    assert result.returncode == 0, result.stderr
    return outdir


def test_compile_writes_ir_weights_and_inputs(compiled_dir):
    text = (compiled_dir / "model.mlir").read_text()
    assert 'attnc.weights = "weights.safetensors"' in text
    assert "attn.sdpa" in text
    assert 'loc("mha")' in text
    weights = load_file(str(compiled_dir / "weights.safetensors"))
    assert "mha.in_proj_weight" in weights
    assert set(load_file(str(compiled_dir / "inputs.safetensors"))) == {"x"}


def test_run_uses_given_inputs_and_writes_outputs(compiled_dir, tmp_path):
    from compiler.models import multihead_attention

    model, (x,) = multihead_attention()
    other = torch.randn_like(x)
    save_file({"x": other}, str(tmp_path / "in.safetensors"))
    inputs, outputs = str(tmp_path / "in.safetensors"), str(tmp_path / "out.safetensors")
    result = attnc("run", str(compiled_dir), "--inputs", inputs, "-o", outputs)
    assert result.returncode == 0, result.stderr
    out = load_file(str(tmp_path / "out.safetensors"))["output_0"]
    with torch.no_grad():
        expected = model(other)
    assert (out - expected).abs().max() < 1e-4


def test_verify_prints_error_and_fails_above_tolerance():
    ok = attnc("verify", "mha", "-p", "attn-raise")
    assert ok.returncode == 0 and ok.stdout.startswith("max_abs_err=") and ok.stdout.split()[1:] == ["vs", "PyTorch"]
    strict = attnc("verify", "mha", "-p", "attn-raise", "--tol", "0")
    assert strict.returncode == 1  # float reassociation makes the error small but not zero


@pytest.mark.parametrize(
    "args, message",
    [
        (("compile", "no-such-model", "-o", "x"), "unknown model 'no-such-model'"),
        (("compile", "mha", "-p", "no-such-pass", "-o", "x"), "no-such-pass"),
        (("run", "/nonexistent/dir"), "holds no model.mlir"),
        (("compile", "missing.pt2", "-o", "x"), "no such file: missing.pt2"),
    ],
)
def test_bad_input_is_one_clear_line_and_nonzero_exit(args, message, tmp_path):
    result = attnc(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_pt2_spec_round_trip(tmp_path):
    from compiler.models import multihead_attention

    model, inputs = multihead_attention()
    torch.export.save(torch.export.export(model, inputs), str(tmp_path / "mha.pt2"))
    result = attnc("verify", str(tmp_path / "mha.pt2"), "-p", "attn-raise")
    assert result.returncode == 0, result.stderr
