"""compile → save → load → run: a saved model runs exactly like the module it was saved from.

Every bundled model × every named pipeline (so a new entry in either is covered without touching this file),
plus ``nn.MultiheadAttention`` with a ``key_padding_mask`` (a -inf constant in the IR) and a cross-attention
whose inputs are named ``x`` and ``x_1`` (one name hint once they are parsed), is compiled in this
process, run in memory and saved; one fresh process then runs every saved directory through the
``attnc run`` command, with the same ``--seed`` (which fixes the crossbar target's noise). Outputs must be
equal bit for bit, or both runs must fail with the same message. ``attnc verify`` must judge the saved
artifact too, and ``compiler.textual_ir`` must read back what it prints, names and float bits included.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    BFloat16Type,
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    ModuleOp,
    TensorType,
)
from xdsl.ir import Block, Region

from compiler.api import ModelSpec, compile_model, max_abs_error, parse_module, print_module, same_outputs
from compiler.models import BUNDLED
from compiler.pipelines import NAMED_PIPELINES
from dialects import nn

ROOT = Path(__file__).resolve().parents[2]
EXTRA_MODELS = Path(__file__).with_name("round_trip_models.py")
PADDED_MHA = f"{EXTRA_MODELS}:mha_key_padding_mask"
MODELS = {
    **{name: name for name in BUNDLED},
    "mha-key-padding-mask": PADDED_MHA,
    "cross-attention-x-x_1": f"{EXTRA_MODELS}:cross_attention_suffixed_inputs",
}
CASES = [f"{model}--{pipeline}" for model in MODELS for pipeline in NAMED_PIPELINES]
SEED = 7

# Runs `attnc run DIR --seed S -o FILE` for every saved directory, in one process (each new process that
# imports torch costs seconds); prints {case: [exit code, stderr]} as JSON.
CLI_DRIVER = """
import contextlib, io, json, sys
import torch
torch.set_num_threads(1)
from compiler.cli.main import main
results = {}
for case, outdir, output in json.load(open(sys.argv[1])):
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        code = main(["run", outdir, "--seed", sys.argv[2], "-o", output])
    results[case] = [code, stderr.getvalue()]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory, exported):
    """case -> (in-memory outcome, saved outcome); an outcome is a tuple of tensors or an error message."""
    root = tmp_path_factory.mktemp("round_trip")
    in_memory, saved, jobs = {}, {}, []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # both sides single-threaded: a BLAS that sheds threads under load changes sum order
    for model, spec_text in MODELS.items():
        spec, program, _ = exported(spec_text)
        for pipeline in NAMED_PIPELINES:
            case = f"{model}--{pipeline}"
            try:
                compiled = compile_model(ModelSpec(spec.name, spec.model, spec.inputs, program), pipeline)
            except Exception as error:  # a compile failure fails this case only, with its message
                in_memory[case] = saved[case] = f"compile failed: {type(error).__name__}: {error}"
                continue
            try:
                in_memory[case] = compiled.run(seed=SEED)
            except Exception as error:
                in_memory[case] = str(error)
            outdir = compiled.save(root / case)
            jobs.append((case, str(outdir), str(root / f"{case}.outputs.safetensors")))
    torch.set_num_threads(threads)
    (root / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CLI_DRIVER, str(root / "jobs.json"), str(SEED)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    for case, _, output in jobs:
        code, stderr = codes[case]
        if code == 0:
            tensors = load_file(output)
            saved[case] = tuple(tensors[f"output_{i}"] for i in range(len(tensors)))
        else:
            errors = [line for line in stderr.splitlines() if line.startswith("attnc: error: ")]
            saved[case] = errors[0].removeprefix("attnc: error: ") if errors else stderr
    return in_memory, saved


@pytest.mark.parametrize("case", CASES)
def test_saved_model_runs_like_the_in_memory_module(round_trips, case):
    in_memory, saved = round_trips
    expected, got = in_memory[case], saved[case]
    if isinstance(expected, str) or isinstance(got, str):
        assert got == expected, f"in memory: {expected if isinstance(expected, str) else 'ran'}; saved: {got}"
        assert not expected.startswith("compile failed"), expected
        return
    assert same_outputs(got, expected), f"saved run differs from the in-memory run by {max_abs_error(got, expected)}"


def test_the_attnc_executable_runs_the_issue_example(round_trips, tmp_path):
    """``attnc compile gpt2-tiny -p attn-raise -o g && attnc run g``: the saved IR used to reuse ``%split_1``."""
    in_memory, _ = round_trips
    attnc = str(Path(sys.executable).with_name("attnc"))
    outdir = tmp_path / "g"
    compiled = compile_model("gpt2-tiny", "attn-raise")
    compiled.save(outdir, with_reference=True)
    command = [attnc, "run", str(outdir), "-o", str(tmp_path / "out.safetensors")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "cosine=1.000000" in result.stdout
    outputs = load_file(str(tmp_path / "out.safetensors"))
    assert same_outputs((outputs["output_0"],), in_memory["gpt2-tiny--raise"])  # the seed is moot off the crossbar


def test_verify_judges_the_saved_artifact(monkeypatch, capsys):
    """With xDSL's own printer and parser (-inf reads back as 4.29e9) the in-memory module is still right, but
    ``attnc verify`` must fail."""
    from xdsl.parser import Parser
    from xdsl.printer import Printer

    import compiler.api
    from compiler.cli.main import main

    assert main(["verify", PADDED_MHA, "-p", "raise"]) == 0
    assert float(capsys.readouterr().out.split()[0].removeprefix("max_abs_err=")) < 1e-4

    monkeypatch.setattr(compiler.api, "RoundTripPrinter", Printer)
    monkeypatch.setattr(compiler.api, "RoundTripParser", Parser)
    assert main(["verify", PADDED_MHA, "-p", "raise", "--tol", "10"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("max_abs_err=") and float(captured.out.split()[0].split("=")[1]) > 0.1
    assert captured.err.startswith("attnc: error: the saved model does not reproduce the in-memory module")
    assert len(captured.err.strip().splitlines()) == 1


# -- the textual IR itself ------------------------------------------------------------------------------


def constant_module(values, element_type, shape=None) -> ModuleOp:
    tensor = TensorType(element_type, [len(values)] if shape is None else shape)
    op = nn.ConstantOp(DenseIntOrFPElementsAttr.from_list(tensor, values))
    block = Block()
    block.add_ops([op, func.ReturnOp(op.result)])
    return ModuleOp([func.FuncOp("main", ([], [tensor]), Region(block))])


SPECIAL = [float("-inf"), float("inf"), float("nan"), -0.0, 0.0, 0.1, 1 / 3, 123456792.0, 1e-45, 3.4028234663852886e38]


@pytest.mark.parametrize("element_type", [Float32Type(), Float64Type(), Float16Type(), BFloat16Type()], ids=str)
@pytest.mark.parametrize("layout", ["splat", "list", "single"])
def test_float_constants_read_back_bit_for_bit(element_type, layout):
    values = [float(torch.tensor(v, dtype=torch.float64).to(_torch_dtype(element_type))) for v in SPECIAL]
    cases = {"splat": [(values[i:i + 1] * 3, [3]) for i in range(len(values))], "list": [(values, None)],
             "single": [(values[i:i + 1], []) for i in range(len(values))]}[layout]
    for case, shape in cases:
        module = constant_module(case, element_type, shape)
        text = print_module(module)
        back = next(op for op in parse_module(text).walk() if isinstance(op, nn.ConstantOp))
        original = next(op for op in module.walk() if isinstance(op, nn.ConstantOp))
        assert back.value.data.data == original.value.data.data, text
        assert print_module(parse_module(text)) == text


def _torch_dtype(element_type):
    return {Float32Type: torch.float32, Float64Type: torch.float64, Float16Type: torch.float16,
            BFloat16Type: torch.bfloat16}[type(element_type)]


@pytest.mark.parametrize("width, values", [(1, [1, 0, 1]), (8, [-128, 127, 0]), (32, [-1, 2**31 - 1, 0]),
                                           (64, [-(2**63), 2**63 - 1, 5])])
def test_integer_constants_read_back(width, values):
    module = constant_module(values, IntegerType(width))
    back = next(op for op in parse_module(print_module(module)).walk() if isinstance(op, nn.ConstantOp))
    assert back.value.data.data == next(op for op in module.walk() if isinstance(op, nn.ConstantOp)).value.data.data


def test_mlir_hex_float_literals_are_bit_patterns():
    """What mlir-opt and xDSL's own printer write for -inf: the bits, not the integer 4286578688."""
    text = "func.func @f() {\n  %c = nn.constant dense<[0xFF800000, 1.5, 0x7FC00000]> : tensor<3xf32>\n  func.return\n}"
    values = next(op for op in parse_module(text).walk() if isinstance(op, nn.ConstantOp)).value.get_values()
    assert values[0] == -math.inf and values[1] == 1.5 and math.isnan(values[2])


# Hints as xDSL stores them: setting `x_1_0` keeps `x_1`, because one `_<digits>` suffix is stripped.
HINTS = ["x", "x_1_0", "x_2_0", "x_1_1_0", None]


def test_printed_value_names_never_collide():
    """Every ordering of colliding hints prints text that parses back to the same module (blocks: lit test)."""
    for hints in itertools.product(HINTS, repeat=4):
        tensor = TensorType(Float32Type(), [2])
        entry = Block(arg_types=[tensor])
        ops = [nn.AddOp(entry.args[0], entry.args[0], tensor)]
        for _ in hints[1:]:
            ops.append(nn.AddOp(ops[-1].result, entry.args[0], tensor))
        for op, hint in zip(ops, hints):
            op.result.name_hint = hint
        entry.args[0].name_hint = hints[-1]
        entry.add_ops([*ops, func.ReturnOp(ops[-1].result)])
        module = ModuleOp([func.FuncOp("main", ([tensor], [tensor]), Region(entry))])
        text = print_module(module)
        assert parse_module(text).is_structurally_equivalent(module), text

