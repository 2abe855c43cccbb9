"""An ONNX file written the way TensorFlow/Keras exporters (tf2onnx) write BERT attention, not by torch.onnx:
imported, raised by attn-raise and judged against onnxruntime through the CLI.

The graph is authored here with ``onnx.helper`` (no binary in the repository). What differs from
``torch.onnx``'s output: projections are ``MatMul`` + ``Add`` on 3-d activations, reshapes take shapes built
by ``Shape → Gather → Unsqueeze → Concat``, Kᵀ is one ``Transpose`` with ``perm = [0, 2, 3, 1]``, layer 0
scales the scores with ``Mul`` and adds TF-BERT's ``(1 - mask) · -10000``, and layer 1 scales the query
before the product (Keras' ``MultiHeadAttention``) and masks with ``Where`` on a boolean mask.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

pytest.importorskip("torch_mlir")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from compiler.api import compile_model, max_abs_error  # noqa: E402
from dialects import attn, nn  # noqa: E402

ATTNC = str(Path(sys.executable).with_name("attnc"))
VOCAB, HIDDEN, HEADS, HEAD_DIM = 50, 32, 4, 8


def tf_style_bert(path: Path) -> None:
    """Embedding, then two attention layers with residual and LayerNormalization, node names as tf2onnx writes."""
    rng = np.random.default_rng(0)
    nodes: list = []
    initializers = []

    def weight(name: str, *shape: int, scale: float = 0.2):
        initializers.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def const(name: str, array) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    ids, mask = "input_ids", "attention_mask"
    x = node("Gather", [weight("bert/embeddings/word_embeddings", VOCAB, HIDDEN, scale=1.0), ids],
             "bert/embeddings/GatherV2", axis=0)
    shape = node("Shape", [x], "bert/encoder/Shape")
    batch = node("Unsqueeze", [node("Gather", [shape, const("zero", np.int64(0))], "bert/encoder/strided_slice", axis=0),
                               const("axis0", np.array([0], np.int64))], "bert/encoder/batch")
    seq = node("Unsqueeze", [node("Gather", [shape, const("one", np.int64(1))], "bert/encoder/strided_slice_1", axis=0),
                             "axis0"], "bert/encoder/seq")
    heads_shape = node("Concat", [batch, seq, const("heads", np.array([HEADS, HEAD_DIM], np.int64))],
                       "bert/encoder/Reshape/shape", axis=0)
    hidden_shape = node("Concat", [batch, seq, const("hidden", np.array([HIDDEN], np.int64))],
                        "bert/encoder/Reshape_3/shape", axis=0)
    mask_float = node("Unsqueeze", [node("Cast", [mask], "bert/encoder/Cast", to=TensorProto.FLOAT),
                                    const("axes12", np.array([1, 2], np.int64))], "bert/encoder/ExpandDims")
    adder = node("Mul", [node("Sub", [const("one_f", np.float32(1.0)), mask_float], "bert/encoder/sub"),
                         const("minus_10000", np.float32(-10000.0))], "bert/encoder/mul")
    keep = node("Cast", [mask_float], "bert/encoder/Cast_1", to=TensorProto.BOOL)
    scale = const("scale", np.float32(1 / np.sqrt(HEAD_DIM)))
    for layer in range(2):
        at = f"bert/encoder/layer_{layer}/attention/self"

        def project(name: str, source: str) -> str:
            product = node("MatMul", [source, weight(f"{at}/{name}/kernel", HIDDEN, HIDDEN)], f"{at}/{name}/MatMul")
            return node("Add", [product, weight(f"{at}/{name}/bias", HIDDEN)], f"{at}/{name}/BiasAdd")

        query = project("query", x)
        if layer == 1:  # Keras: the query is scaled before the product
            query = node("Mul", [query, scale], f"{at}/query/scale")
        q = node("Transpose", [node("Reshape", [query, heads_shape], f"{at}/Reshape")], f"{at}/transpose", perm=[0, 2, 1, 3])
        kt = node("Transpose", [node("Reshape", [project("key", x), heads_shape], f"{at}/Reshape_1")], f"{at}/transpose_1",
                  perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [project("value", x), heads_shape], f"{at}/Reshape_2")], f"{at}/transpose_2",
                 perm=[0, 2, 1, 3])
        scores = node("MatMul", [q, kt], f"{at}/MatMul")
        if layer == 0:  # TF BERT: scores · 1/sqrt(d) + (1 - mask) · -10000
            scores = node("Add", [node("Mul", [scores, scale], f"{at}/Mul"), adder], f"{at}/add")
        else:  # Keras: a boolean mask selects the scores, -1e9 elsewhere
            scores = node("Where", [keep, scores, const("minus_1e9", np.float32(-1e9))], f"{at}/SelectV2")
        probs = node("Softmax", [scores], f"{at}/Softmax", axis=-1)
        context = node("Transpose", [node("MatMul", [probs, v], f"{at}/MatMul_1")], f"{at}/transpose_3", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, hidden_shape], f"{at}/Reshape_3")
        out = f"bert/encoder/layer_{layer}/attention/output"
        dense = node("Add", [node("MatMul", [context, weight(f"{out}/dense/kernel", HIDDEN, HIDDEN)], f"{out}/dense/MatMul"),
                             weight(f"{out}/dense/bias", HIDDEN)], f"{out}/dense/BiasAdd")
        x = node("LayerNormalization", [node("Add", [dense, x], f"{out}/add"), weight(f"{out}/LayerNorm/gamma", HIDDEN),
                                        weight(f"{out}/LayerNorm/beta", HIDDEN)], f"{out}/LayerNorm/batchnorm/add_1",
                 axis=-1, epsilon=1e-12)
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="Identity"))
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"]) for name in (ids, mask)]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])]
    graph = helper.make_graph(nodes, "tf_bert", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tf2onnx-style")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def tf_bert(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tf") / "tf_bert.onnx"
    tf_style_bert(path)
    return path


def test_raised_and_verified_through_the_cli(tf_bert, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([ATTNC, "compile", str(tf_bert), "-p", "attn-raise", "-o", str(out), "--dim", "sequence=10",
                             "--report"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "0 softmax(es) not raised" in result.stdout
    text = (out / "model.mlir").read_text()
    assert text.count("attn.sdpa ") == 2 and "nn.softmax" not in text
    assert 'loc("bert/encoder/layer_0/attention/self/query/MatMul")' in text
    verify = subprocess.run([ATTNC, "verify", str(tf_bert), "-p", "attn-raise", "--dim", "batch=2"],
                            capture_output=True, text=True, timeout=600)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    error = re.search(r"max_abs_err=([0-9.e+-]+) vs onnxruntime", verify.stdout)
    assert error and float(error.group(1)) <= 1e-4, verify.stdout


def test_padding_reaches_both_raised_masks(tf_bert, tmp_path):
    """With padded rows the masks matter: the raised model still matches onnxruntime."""
    ids = torch.tensor([[3, 17, 8, 41, 0, 0, 0], [5, 9, 22, 13, 30, 2, 7]])
    save_file({"input_ids": ids, "attention_mask": (ids != 0).to(torch.int64)}, str(tmp_path / "in.safetensors"))
    compiled = compile_model(str(tf_bert), "attn-raise", inputs_file=tmp_path / "in.safetensors")
    raised = [op for op in compiled.module.walk() if isinstance(op, attn.SdpaOp)]
    assert len(raised) == 2 and all(op.mask is not None for op in raised)
    assert not any(isinstance(op, nn.SoftmaxOp) for op in compiled.module.walk())
    assert compiled.reference_name == "onnxruntime"
    assert max_abs_error(compiled.run(), compiled.run_reference()) <= 1e-4
