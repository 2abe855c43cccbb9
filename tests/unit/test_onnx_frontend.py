"""The ONNX frontend: MiniLM exported by both torch.onnx routes, compiled through the CLI, judged against
onnxruntime; small graphs per op family; clear errors for unsupported ops, opsets and a missing extra."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

pytest.importorskip("torch_mlir")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from compiler.api import CompiledModel, compile_model, max_abs_error, same_outputs  # noqa: E402
from compiler.cli.main import main  # noqa: E402
from dialects import attn, nn  # noqa: E402

ATTNC = str(Path(sys.executable).with_name("attnc"))
MINILM_LAYERS = 6


def attnc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ATTNC, *args], capture_output=True, text=True, timeout=600)


def max_err_printed(text: str) -> float:
    match = re.search(r"max_abs_err=([0-9.e+-]+)", text)
    assert match, text
    return float(match.group(1))


@pytest.fixture(scope="module")
def minilm_onnx(tmp_path_factory):
    """MiniLM (real weights) written by the legacy exporter (dynamic batch and sequence) and by the dynamo one."""
    from compiler.models import minilm

    model, inputs = minilm()
    directory = tmp_path_factory.mktemp("onnx")
    legacy, dynamo = directory / "legacy" / "minilm.onnx", directory / "dynamo" / "minilm.onnx"
    legacy.parent.mkdir()
    dynamo.parent.mkdir()
    names = ["input_ids", "attention_mask"]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    torch.onnx.export(model, inputs, str(legacy), dynamo=False, input_names=names, dynamic_axes=axes, opset_version=17)
    torch.onnx.export(model, inputs, str(dynamo), dynamo=True, input_names=names, verbose=False)
    return {"legacy": legacy, "dynamo": dynamo}


def test_legacy_export_through_the_cli(minilm_onnx, tmp_path):
    path = minilm_onnx["legacy"]
    out = tmp_path / "out"
    result = attnc("compile", str(path), "-p", "attn-raise", "-o", str(out), "--dim", "sequence=12")
    assert result.returncode == 0, result.stderr
    text = (out / "model.mlir").read_text()
    assert text.count("attn.sdpa ") == MINILM_LAYERS
    assert "dense_resource" not in text and "torch." not in text and len(text) < 1_000_000  # weights never inlined
    assert 'loc("/bert/encoder/layer.0/attention/self/query/MatMul")' in text  # ONNX node names as locations
    params = {op.key for op in CompiledModel.load(out).module.walk() if isinstance(op, nn.ParamOp)}
    initializers = {init.name for init in onnx.load(str(path)).graph.initializer}
    assert "bert.encoder.layer.0.attention.self.query.bias" in params
    assert params <= initializers
    weights = load_file(str(out / "weights.safetensors"))
    assert set(weights) == params
    inputs = load_file(str(out / "inputs.safetensors"))
    ids = inputs["input_ids"]
    assert ids.shape == (1, 12) and 512 <= int(ids.max()) < 30522  # drawn over the word table, not a smaller one
    assert bool((inputs["attention_mask"] == 1).all())
    run = attnc("run", str(out))
    assert run.returncode == 0, run.stderr
    assert max_err_printed(run.stdout) <= 1e-4
    verify = attnc("verify", str(path), "-p", "attn-raise")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert max_err_printed(verify.stdout) <= 1e-4
    for printed in (run.stdout + run.stderr, verify.stdout + verify.stderr):  # the reference is onnxruntime
        assert "vs onnxruntime" in printed and "PyTorch" not in printed


def test_dynamo_export_through_the_cli(minilm_onnx, tmp_path, capsys):
    path = str(minilm_onnx["dynamo"])
    assert main(["verify", path, "-p", "attn-raise"]) == 0
    printed = capsys.readouterr().out
    assert max_err_printed(printed) <= 1e-4 and printed.split()[1:] == ["vs", "onnxruntime"]
    assert main(["compile", path, "-p", "attn-raise", "-o", str(tmp_path / "out")]) == 0
    loaded = CompiledModel.load(tmp_path / "out")
    assert sum(isinstance(op, attn.SdpaOp) for op in loaded.module.walk()) == MINILM_LAYERS
    assert not any(isinstance(op, nn.SoftmaxOp) for op in loaded.module.walk())


def test_given_inputs_with_padding(minilm_onnx, tmp_path):
    """A padded batch from --inputs: the mask reaches the raised attention and the outputs match onnxruntime."""
    ids = torch.tensor([[101, 7592, 2088, 102, 0, 0, 0], [101, 2023, 2003, 1037, 3231, 1012, 102]])
    mask = (ids != 0).to(torch.int64)
    save_file({"input_ids": ids, "attention_mask": mask}, str(tmp_path / "in.safetensors"))
    compiled = compile_model(str(minilm_onnx["legacy"]), "attn-raise", inputs_file=tmp_path / "in.safetensors")
    assert compiled.inputs[0].shape == (2, 7)
    assert sum(isinstance(op, attn.SdpaOp) for op in compiled.module.walk()) == MINILM_LAYERS
    assert max_abs_error(compiled.run(), compiled.run_reference()) <= 1e-4
    saved = CompiledModel.load(compiled.save(tmp_path / "out"))
    assert same_outputs(saved.run(), compiled.run())


# -- small graphs, one op family each -------------------------------------------------------------------


def onnx_file(tmp_path, nodes, inputs, outputs, initializers=(), opset=18, name="graph.onnx") -> str:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


def value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
rng = np.random.default_rng(0)

GRAPHS = {
    # LayerNormalization written out, as older exporters do: ReduceMean (axes as an input), Sub, Pow, Sqrt, Div.
    "layer_norm_decomposed": (
        [helper.make_node("ReduceMean", ["x", "axes"], ["mean"]), helper.make_node("Sub", ["x", "mean"], ["d"]),
         helper.make_node("Pow", ["d", "two"], ["sq"]), helper.make_node("ReduceMean", ["sq", "axes"], ["var"]),
         helper.make_node("Add", ["var", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["std"]),
         helper.make_node("Div", ["d", "std"], ["n"]), helper.make_node("Mul", ["n", "g"], ["y"])],
        [value("x", F, [2, "seq", 8])], [value("y", F, None)],
        [init("axes", np.array([-1], np.int64)), init("two", np.float32(2.0)), init("eps", np.float32(1e-5)),
         init("g", rng.standard_normal(8).astype(np.float32))], 18),
    # GELU by tanh, opset 20 Gelu, Erf.
    "activations": (
        [helper.make_node("Tanh", ["x"], ["t"]), helper.make_node("Gelu", ["t"], ["g"], approximate="tanh"),
         helper.make_node("Erf", ["g"], ["y"])],
        [value("x", F, [3, 5])], [value("y", F, None)], [], 20),
    # Shape arithmetic folded to constants: Shape → Gather → Unsqueeze → Concat → Reshape; Expand; Squeeze.
    "shape_arithmetic": (
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
         helper.make_node("Unsqueeze", ["b", "axis0"], ["b1"]), helper.make_node("Concat", ["b1", "minus1"], ["shape"], axis=0),
         helper.make_node("Reshape", ["x", "shape"], ["flat"]), helper.make_node("Unsqueeze", ["flat", "axis1"], ["u"]),
         helper.make_node("Expand", ["u", "rep"], ["e"]), helper.make_node("Squeeze", ["x", "axis1"], ["sq"]),
         helper.make_node("ReduceSum", ["e", "axis1"], ["y"], keepdims=0)],
        [value("x", F, ["batch", 1, 6])], [value("y", F, None), value("sq", F, None)],
        [init("zero", np.int64(0)), init("axis0", np.array([0], np.int64)), init("minus1", np.array([-1], np.int64)),
         init("axis1", np.array([1], np.int64)), init("rep", np.array([1, 3, 1], np.int64))], 18),
    # Masks: Equal, Where, Cast, ConstantOfShape, Not, Slice with a negative start, Softmax.
    "masking": (
        [helper.make_node("Equal", ["ids", "zero"], ["pad"]), helper.make_node("Not", ["pad"], ["keep"]),
         helper.make_node("Cast", ["keep"], ["keepf"], to=F),
         helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ConstantOfShape", ["s"], ["fill"],
                                                                  value=helper.make_tensor("v", F, [1], [-1e4])),
         helper.make_node("Where", ["pad", "fill", "x"], ["w"]), helper.make_node("Softmax", ["w"], ["p"], axis=-1),
         helper.make_node("Mul", ["p", "keepf"], ["pm"]),
         helper.make_node("Slice", ["pm", "start", "end", "axis"], ["y"])],
        [value("ids", I64, [2, 6]), value("x", F, [2, 6])], [value("y", F, None)],
        [init("zero", np.int64(0)), init("start", np.array([-4], np.int64)), init("end", np.array([100], np.int64)),
         init("axis", np.array([1], np.int64))], 18),
    # A linear layer as Gemm (transB) and as MatMul + Add, Transpose, a Gather with a constant index.
    "linear": (
        [helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["m"]), helper.make_node("Add", ["m", "b2"], ["a"]),
         helper.make_node("Transpose", ["a"], ["t"], perm=[1, 0]), helper.make_node("Gather", ["t", "one"], ["y"], axis=0)],
        [value("x", F, [3, 4])], [value("y", F, None)],
        [init("w", rng.standard_normal((5, 4)).astype(np.float32)), init("b", rng.standard_normal(5).astype(np.float32)),
         init("w2", rng.standard_normal((5, 2)).astype(np.float32)), init("b2", rng.standard_normal(2).astype(np.float32)),
         init("one", np.int64(1))], 17),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_op_families_match_onnxruntime(name, tmp_path):
    nodes, inputs, outputs, initializers, opset = GRAPHS[name]
    for index, node in enumerate(nodes):
        node.name = f"{name}_{node.op_type}_{index}"
    path = onnx_file(tmp_path, nodes, inputs, outputs, initializers, opset)
    compiled = compile_model(path, None, dims={"seq": 5} if name == "layer_norm_decomposed" else None)
    reference = compiled.run_reference()
    outputs_ = compiled.run()
    assert max_abs_error(outputs_, reference) <= 1e-5, name
    float_weights = {i.name for i in initializers if np.asarray(numpy_helper.to_array(i)).dtype.kind == "f"
                     and numpy_helper.to_array(i).ndim > 0}
    assert set(compiled.weights) == float_weights  # weights stay parameters; index tables and scalars fold
    located = [op for op in compiled.module.walk() if op.dialect_name() == "nn" and not isinstance(op, nn.ParamOp)]
    assert any(str(op.location).find(f"{name}_") >= 0 for op in located)


# -- errors ----------------------------------------------------------------------------------------------


def test_unsupported_op_names_the_op_and_the_node(tmp_path, capsys):
    path = onnx_file(tmp_path, [helper.make_node("Hardmax", ["x"], ["y"], name="head/hardmax")],
                     [value("x", F, [2, 3])], [value("y", F, None)])
    assert main(["compile", path, "-o", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("attnc: error:")
    assert "unsupported ONNX op 'Hardmax' (node 'head/hardmax')" in error[0]


def test_old_opset_and_bad_dims_are_refused(tmp_path, capsys):
    path = onnx_file(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [value("x", F, [2, 3])], [value("y", F, None)],
                     opset=11)
    assert main(["compile", path, "-o", str(tmp_path / "out")]) == 1
    assert "ONNX opset 11 is not supported (13 to 23)" in capsys.readouterr().err
    path = onnx_file(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [value("x", F, ["n", 3])], [value("y", F, None)],
                     name="dyn.onnx")
    assert main(["compile", path, "-o", str(tmp_path / "out"), "--dim", "m=2"]) == 1
    error = capsys.readouterr().err
    assert "--dim m: " in error and "its symbolic ones: n)" in error
    assert main(["compile", path, "-o", str(tmp_path / "out"), "--dim", "n=0"]) == 1
    assert "positive integer" in capsys.readouterr().err


def test_missing_extra_is_one_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_mlir", None)
    assert main(["compile", str(tmp_path / "model.onnx"), "-o", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "needs the package 'torch-mlir' of the 'onnx' extra: pip install 'attnc[onnx]'" in error


def test_core_imports_without_the_extra():
    blocked = "import sys; sys.modules.update(onnx=None, onnxruntime=None, torch_mlir=None, onnxscript=None)"
    code = f"{blocked}; import compiler.api, compiler.cli.main, compiler.frontend.onnx_importer, passes.convert_torch_to_nn"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
