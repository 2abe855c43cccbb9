"""Every failure a user can cause is one clear line naming what is at fault, never a traceback, and never
leaves a half-written artifact; untrusted files never run code.

Most cases call the CLI entry points in this process (``main(argv)``); a few go through the installed
executables to prove the real path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from compiler.api import CompiledModel, compile_model
from compiler.artifacts import MANIFEST_FILE, write_manifest
from compiler.cli import main as attnc_cli
from compiler.cli import opt as opt_cli

FACTORIES = '''
import torch

class Tiny(torch.nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=-1)

def good():
    return Tiny(), (torch.randn(2, 3),)

def raises():
    raise RuntimeError("the checkpoint is gone")

def returns_none():
    return None

def model_only():
    return Tiny()

def bare_tensor():
    return Tiny(), torch.randn(2, 3)

def nan_input():
    return Tiny(), (torch.tensor([[1.0, float("nan"), 0.0]]),)

class Decoder(torch.nn.Module):
    """nn.TransformerDecoder checks whether its mask is causal by looking at the values: export cannot."""

    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerDecoderLayer(16, 2, 32, batch_first=True)
        self.decoder = torch.nn.TransformerDecoder(layer, 1)

    def forward(self, tgt, memory):
        mask = torch.nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
        return self.decoder(tgt, memory, tgt_mask=mask)

def data_dependent():
    return Decoder().eval(), (torch.randn(1, 4, 16), torch.randn(1, 5, 16))
'''


def run(main, *argv: str) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code or 0, err.getvalue()


def one_error(code: int, stderr: str, *named: str, tool: str = "attnc") -> str:
    """Asserts a non-zero exit and one ``<tool>: error:`` line (warnings and remarks aside) naming ``named``."""
    assert code != 0, stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(("remark:", f"{tool}: warning:"))]
    assert len(lines) == 1 and lines[0].startswith(f"{tool}: error:"), stderr
    for thing in named:
        assert thing in lines[0], (thing, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def factories(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("factories") / "factories.py"
    path.write_text(FACTORIES)
    return path


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """A compiled ``mha-sdpa`` (raised) artifact; tests copy it before changing anything."""
    return compile_model("mha-sdpa", "attn-raise").save(tmp_path_factory.mktemp("artifact") / "model")


@pytest.fixture
def copy(artifact, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(artifact, target)
    return target


# --- factories -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "named"),
    [
        ("raises", ["raised RuntimeError", "the checkpoint is gone"]),
        ("returns_none", ["must return (model, inputs)", "returned None"]),
        ("model_only", ["must return (model, inputs)", "Tiny"]),
        ("bare_tensor", ["bare tensor"]),
        ("missing", ["has no function 'missing'"]),
    ],
)
def test_bad_factory_is_one_line(factories, tmp_path, factory, named):
    one_error(*run(attnc_cli.main, "compile", f"{factories}:{factory}", "-o", str(tmp_path / "out")), *named)


def test_export_failure_is_one_line_naming_the_user_line(factories, tmp_path):
    """A model export cannot trace: torch dumps its graph twice and raises a long message; attnc says one line
    (in a fresh process, as a user sees it)."""
    attnc = str(Path(sys.executable).with_name("attnc"))
    result = subprocess.run(
        [attnc, "compile", f"{factories}:data_dependent", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600,
    )
    line = one_error(result.returncode, result.stderr, "torch.export failed", "data-dependent", "tgt_is_causal")
    assert f"{factories}:" in line  # the user's line that branches on values


# --- pass options and pipelines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "named"),
    [
        ("kv-clip{alpha=banana}", ["option 'alpha'", "pass 'kv-clip'", "float", "banana"]),
        ("lower-to-xbar{tile-rows=8 tile-rows=16}", ["'tile-rows'", "more than once"]),
        ("lower-to-xbar{tile-rows=99999999999999999999}", ["'tile-rows'", "out of range"]),
        ("lower-to-xbar{tile-rows=-4}", ["tile size must be positive"]),
        ("attn-raise,kv-clip{layers=\"a(\"}", ["kv-clip", "'layers'", "regular expression"]),
        ("attn-raise,attn-cosine{layers=\"[z-a]\"}", ["attn-cosine", "'layers'"]),
        ("kv-clip{no-such=1}", ["has no option 'no-such'"]),
        ("no-such-pass", ["no-such-pass"]),
    ],
)
def test_bad_pass_option_names_pass_and_option(artifact, tmp_path, pipeline, named):
    one_error(*run(attnc_cli.main, "compile", "mha-sdpa", "-p", pipeline, "-o", str(tmp_path / "o")), *named)
    one_error(*run(opt_cli.main, str(artifact / "model.mlir"), "-p", pipeline), tool="attnc-opt")


# --- model.mlir ------------------------------------------------------------------------------------------


def test_model_mlir_that_is_not_utf8_or_has_no_main_or_nests_too_deeply(copy):
    (copy / "model.mlir").write_bytes(b"\xff\xfe" + (copy / "model.mlir").read_bytes())
    write_manifest(copy)
    one_error(*run(attnc_cli.main, "run", str(copy)), "not UTF-8", "model.mlir")
    (copy / "model.mlir").write_text("builtin.module {\n}\n")
    write_manifest(copy)
    one_error(*run(attnc_cli.main, "run", str(copy)), "no function @main")
    (copy / "model.mlir").write_text("builtin.module {" * 5000 + "}" * 5000)
    write_manifest(copy)
    one_error(*run(attnc_cli.main, "run", str(copy)), "nests too deeply")
    one_error(*run(opt_cli.main, str(copy / "model.mlir")), "nests too deeply", tool="attnc-opt")


def test_unterminated_string_is_a_prompt_error(copy, tmp_path):
    """An unterminated string before a long line (a mutated ``loc("...")``) made xDSL 0.74's lexer backtrack
    exponentially: attnc-opt ran for minutes. Now it is the parser's one-line error, in a fresh process."""
    text = (copy / "model.mlir").read_text()
    broken = tmp_path / "broken.mlir"
    broken.write_text(text.replace("loc(unknown))", 'loc"unknown))', 1))
    assert broken.read_text() != text
    attnc_opt = str(Path(sys.executable).with_name("attnc-opt"))
    result = subprocess.run([attnc_opt, str(broken), "-p", "attn-raise"], capture_output=True, text=True, timeout=120)
    one_error(result.returncode, result.stderr, "closing string literal", f"{broken}:2:", tool="attnc-opt")


def test_attnc_opt_on_a_missing_file(tmp_path):
    one_error(*run(opt_cli.main, str(tmp_path / "missing.mlir")), "missing.mlir", tool="attnc-opt")


# --- safetensors files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["empty", "corrupt", "foreign"])
def test_damaged_weights_file_is_named(copy, damage):
    weights = copy / "weights.safetensors"
    if damage == "empty":
        weights.write_bytes(b"")
    elif damage == "corrupt":
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        weights.write_bytes(b"PK\x03\x04 this is a zip, not safetensors")
    write_manifest(copy)
    one_error(*run(attnc_cli.main, "run", str(copy)), "weights.safetensors")


def test_weights_missing_or_of_wrong_shape_or_dtype_named_before_running(copy):
    weights = load_file(copy / "weights.safetensors")
    name = "mha.out_proj.weight"
    for changed, named in (
        ({k: v for k, v in weights.items() if k != name}, ["lacks tensor", name]),
        ({**weights, name: weights[name][:, :3].contiguous()}, [name, "shape", "expected (64, 64)"]),
        ({**weights, name: weights[name].double()}, [name, "dtype", "float32"]),
    ):
        save_file(changed, copy / "weights.safetensors")
        write_manifest(copy)
        one_error(*run(attnc_cli.main, "run", str(copy)), *named)


def test_inputs_file_checked_against_the_signature(copy, tmp_path):
    inputs = tmp_path / "in.safetensors"
    save_file({"y": torch.zeros(2, 10, 64)}, inputs)
    one_error(*run(attnc_cli.main, "run", str(copy), "--inputs", str(inputs)), "lacks tensor 'x'")
    save_file({"x": torch.zeros(2, 9, 64)}, inputs)
    one_error(*run(attnc_cli.main, "run", str(copy), "--inputs", str(inputs)), "'x'", "shape")
    save_file({"x": torch.zeros(2, 10, 64), "extra": torch.zeros(1)}, inputs)
    one_error(*run(attnc_cli.main, "run", str(copy), "--inputs", str(inputs)), "extra")
    inputs.write_bytes(b"")
    one_error(*run(attnc_cli.main, "run", str(copy), "--inputs", str(inputs)), "in.safetensors", "empty")


def test_weights_attribute_must_stay_inside_the_directory(copy):
    text = (copy / "model.mlir").read_text()
    for escape in ("../../etc/passwd", "/etc/passwd"):
        (copy / "model.mlir").write_text(text.replace('attnc.weights = "weights.safetensors"', f'attnc.weights = "{escape}"'))
        write_manifest(copy)
        one_error(*run(attnc_cli.main, "run", str(copy)), "attnc.weights", escape)


# --- output paths ------------------------------------------------------------------------------------------


def test_output_paths(artifact, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    compile_args = ("compile", "mha-sdpa", "-o")
    one_error(*run(attnc_cli.main, *compile_args, str(a_file)), "not a directory")
    one_error(*run(attnc_cli.main, *compile_args, str(tmp_path / "no" / "such" / "out")), "does not exist")
    one_error(*run(attnc_cli.main, "run", str(artifact), "-o", str(tmp_path / "missing" / "o.safetensors")), "does not exist")
    one_error(*run(attnc_cli.main, "run", str(artifact), "-o", str(tmp_path)), "is a directory")
    if os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        one_error(*run(attnc_cli.main, *compile_args, str(locked / "out")), "not writable")


def test_disk_full_leaves_the_old_artifact_whole(artifact, tmp_path, monkeypatch):
    target = tmp_path / "out"
    shutil.copytree(artifact, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    compiled = CompiledModel.load(target)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("compiler.api.save_file", full)
    with pytest.raises(Exception, match="No space left on device"):
        compiled.save(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging directory left behind


def test_mixed_artifact_is_refused(tmp_path):
    """The issue's scenario: weights of one model next to the IR of another never run."""
    a = compile_model("mha-sdpa", "attn-raise").save(tmp_path / "a")
    b = compile_model("transformer-encoder", "attn-raise").save(tmp_path / "b")
    shutil.copy(b / "weights.safetensors", a / "weights.safetensors")
    one_error(*run(attnc_cli.main, "run", str(a)), "weights.safetensors", MANIFEST_FILE)


def test_concurrent_saves_leave_one_whole_artifact(tmp_path):
    first = compile_model("mha-sdpa", "attn-raise")
    second = compile_model("transformer-encoder", "attn-raise")
    assert first.weights.keys() != second.weights.keys()
    target = tmp_path / "out"
    errors: list[BaseException] = []

    def save(compiled):
        try:
            for _ in range(5):
                compiled.save(target)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=save, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    loaded = CompiledModel.load(target)  # manifest matches: one writer's files, whole
    winner = first if loaded.weights.keys() == first.weights.keys() else second
    assert torch.equal(loaded.run()[0], winner.run()[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- .pt2 files ------------------------------------------------------------------------------------------


class Payload:
    """Unpickling this writes a marker file: the proof that a loader ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


def exported_pt2(path: Path) -> Path:
    model = torch.nn.Linear(4, 4)
    torch.export.save(torch.export.export(model, (torch.randn(2, 4),)), path)
    return path


def rewrite_zip(source: Path, target: Path, change) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            new.writestr(item, change(item.filename, old.read(item.filename)))
    return target


def test_pickled_pt2_entries_are_refused_and_run_no_code(tmp_path):
    good = exported_pt2(tmp_path / "good.pt2")
    marker = tmp_path / "marker"
    import pickle

    def poison_weights(name: str, data: bytes) -> bytes:
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True
            return json.dumps(config).encode()
        if name.endswith("data/weights/weight_0"):
            return pickle.dumps(Payload(str(marker)))
        return data

    bad = rewrite_zip(good, tmp_path / "bad.pt2", poison_weights)
    one_error(*run(attnc_cli.main, "compile", str(bad), "-o", str(tmp_path / "o")), "pickle", "--trust-pickle")
    assert not marker.exists()

    def poison_inputs(name: str, data: bytes) -> bytes:
        if "/data/sample_inputs/" in name:
            buffer = io.BytesIO()
            torch.save(Payload(str(marker)), buffer)
            return buffer.getvalue()
        return data

    bad_inputs = rewrite_zip(good, tmp_path / "bad_inputs.pt2", poison_inputs)
    one_error(*run(attnc_cli.main, "compile", str(bad_inputs), "-o", str(tmp_path / "o")), "sample_inputs", "--trust-pickle")
    assert not marker.exists()
    # the good file still compiles
    assert run(attnc_cli.main, "compile", str(good), "-o", str(tmp_path / "o"))[0] == 0


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_damaged_pt2_is_one_line(tmp_path, content):
    path = tmp_path / "model.pt2"
    path.write_bytes(content)
    one_error(*run(attnc_cli.main, "compile", str(path), "-o", str(tmp_path / "o")), "model.pt2")


# --- numerical faults ------------------------------------------------------------------------------------


def test_non_finite_inputs_warn_strict_fails_and_check_finite_names_the_op(factories, tmp_path):
    out = tmp_path / "nan"
    assert run(attnc_cli.main, "compile", f"{factories}:nan_input", "-o", str(out))[0] == 0
    code, err = run(attnc_cli.main, "run", str(out))
    assert code == 0 and "attnc: warning: inputs: tensor 'x' holds NaN or Inf" in err
    one_error(*run(attnc_cli.main, "run", str(out), "--strict"), "tensor 'x'", "NaN")
    one_error(*run(attnc_cli.main, "run", str(out), "--check-finite"), "nn.softmax", "NaN or Inf")


def test_non_finite_device_parameter_rejected_at_load(tmp_path):
    out = compile_model("mha-sdpa", "attn-raise,lower-to-xbar").save(tmp_path / "xbar")
    text = (out / "model.mlir").read_text()
    assert "gamma = 5.000000e+00 : f64" in text
    (out / "model.mlir").write_text(text.replace("gamma = 5.000000e+00 : f64", "gamma = 0x7FF8000000000000 : f64"))
    write_manifest(out)
    one_error(*run(attnc_cli.main, "run", str(out)), "gamma", "finite")


# --- missing extra, debug, real entry points -------------------------------------------------------------


def test_missing_models_extra_says_which_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ModuleNotFoundError
    one_error(*run(attnc_cli.main, "compile", "gpt2-tiny", "-o", str(tmp_path / "o")), "models", "pip install")


def test_real_entry_points_and_debug_flag(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [bin_dir / "attnc", "compile", "mha", "-p", "kv-clip{alpha=banana}", "-o", tmp_path / "o"],
        capture_output=True, text=True, env=env,
    )
    one_error(result.returncode, result.stderr, "alpha")
    result = subprocess.run(
        [bin_dir / "attnc", "--debug", "compile", "mha", "-p", "kv-clip{alpha=banana}", "-o", tmp_path / "o"],
        capture_output=True, text=True, env=env,
    )
    assert result.returncode != 0 and "Traceback" in result.stderr
