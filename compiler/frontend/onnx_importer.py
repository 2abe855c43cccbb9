"""ONNX frontend: an ``.onnx`` file → torch-mlir's ONNX importer → ``torch`` dialect → ``convert-torch-to-nn``.

The steps, each for a reason:

1. The input dimensions are fixed (``--dim NAME=VALUE``; a symbolic first dimension defaults to 1, any
   other to 16) and example inputs made or read: ``nn`` types are static.
2. onnxruntime runs the model once with every intermediate value exposed. That gives each value its exact
   shape (written into the graph, so torch-mlir types every value statically) and the concrete value of
   everything that does not depend on the inputs' *data* (``Shape`` → ``Gather`` → ``Concat`` chains,
   position ids, scalars): those integer, boolean and scalar values are folded into ``Constant`` nodes,
   as the FX frontend folds input-independent masks and scalars.
3. Initializers holding floats (weights) become function arguments before torch-mlir sees the graph (it would otherwise inline
   them as hex blobs); the arguments become ``nn.param`` symbols named after the initializers, with the
   tensors in the safetensors weights file. Integer and boolean initializers (index tables) and 0-d ones
   are constants, as in step 2.
4. torch-mlir imports the graph (each node located at its ONNX node name); xDSL reads its generic form
   with the partial ``torch`` dialect; ``convert-torch-to-nn`` rewrites it into ``nn``.

Limits: ONNX IR version >= 7 and default-domain opset 13 to 23 (the forms of Softmax, Unsqueeze and the
reductions this frontend reads); one graph, no control flow, no other op domains; every value must have a
static shape once the inputs' dimensions are fixed. Needs the ``onnx`` extra (torch-mlir, onnx,
onnxruntime).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.parser import Parser
from xdsl.transforms.dead_code_elimination import dce

from compiler.errors import AttncError, one_line
from compiler.frontend.fx_importer import ImportedProgram
from dialects import nn
from dialects.locations import module_location
from dialects.torch import TORCH
from runtime.dtypes import tensor_type

MIN_OPSET, MAX_OPSET, MIN_IR_VERSION = 13, 23, 7
DEFAULT_BATCH, DEFAULT_SEQUENCE = 1, 16
FOLD_LIMIT = 1 << 20  # elements of an input-independent integer or boolean value folded into a constant
EXTRA = "onnx"
EXTRA_PACKAGES = ("onnx", "onnxruntime", "torch_mlir")


class MissingOnnxExtraError(AttncError):
    """An ONNX file was given but a package of the ``onnx`` extra is not installed."""

    def __init__(self, package: str):
        super().__init__(
            f"reading ONNX files needs the package '{package}' of the '{EXTRA}' extra: pip install 'attnc[{EXTRA}]'"
        )


def require_extra() -> None:
    """Imports the ``onnx`` extra's packages, or one clear error naming the first missing one."""
    for package in EXTRA_PACKAGES:
        try:
            importlib.import_module(package)
        except ModuleNotFoundError:
            raise MissingOnnxExtraError(package.replace("_", "-")) from None


@dataclass
class OnnxModel:
    """A loaded ONNX model with fixed input shapes, its example inputs and an onnxruntime reference."""

    name: str
    proto: Any  # onnx.ModelProto, as written (the reference runs it)
    input_names: list[str]
    inputs: tuple[torch.Tensor, ...]

    def reference(self) -> Callable[..., list[torch.Tensor]]:
        """onnxruntime on the model as written: the outputs attnc is judged against."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = onnxruntime.InferenceSession(self.proto.SerializeToString(), options, providers=["CPUExecutionProvider"])

        def run(*inputs: torch.Tensor) -> list[torch.Tensor]:
            feeds = {name: t.detach().cpu().numpy() for name, t in zip(self.input_names, inputs)}
            return [torch.from_numpy(np.ascontiguousarray(out)) for out in session.run(None, feeds)]

        return run


# ---------------------------------------------------------------------------------------------------------
# Loading and example inputs.
# ---------------------------------------------------------------------------------------------------------

_NUMPY_DTYPES = {1: torch.float32, 11: torch.float64, 10: torch.float16, 7: torch.int64, 6: torch.int32, 9: torch.bool}


def load_onnx(path: str | Path, inputs_file: str | Path | None = None, dims: Mapping[str, int] | None = None) -> OnnxModel:
    """Reads and checks an ONNX file; makes example inputs (or reads ``inputs_file``) for its fixed shapes."""
    require_extra()
    import onnx

    path = Path(path)
    if not path.is_file():
        raise AttncError(f"no such file: {path}")
    try:
        proto = onnx.load(str(path))
    except Exception as error:
        raise AttncError(f"cannot read {path}: {type(error).__name__}: {one_line(error)}") from None
    check_versions(proto, str(path))
    initializers = {init.name for init in proto.graph.initializer}
    declared = [value for value in proto.graph.input if value.name not in initializers]
    dims = dict(dims or {})
    used_dims: set[str] = set()
    shapes: dict[str, tuple[list[int], torch.dtype]] = {}
    for value in declared:
        tensor = value.type.tensor_type
        if tensor.elem_type not in _NUMPY_DTYPES:
            raise AttncError(f"{path}: input '{value.name}' has ONNX element type {tensor.elem_type}, which attnc does not model")
        shape = []
        for index, dim in enumerate(tensor.shape.dim):
            if dim.HasField("dim_value"):
                shape.append(dim.dim_value)
            elif dim.dim_param and dim.dim_param in dims:
                shape.append(dims[dim.dim_param])
                used_dims.add(dim.dim_param)
            else:
                shape.append(DEFAULT_BATCH if index == 0 else DEFAULT_SEQUENCE)
        shapes[value.name] = (shape, _NUMPY_DTYPES[tensor.elem_type])
    unknown = set(dims) - used_dims
    if unknown:
        names = sorted({d.dim_param for v in declared for d in v.type.tensor_type.shape.dim if d.dim_param})
        raise AttncError(f"--dim {', '.join(sorted(unknown))}: {path} has no such dimension (its symbolic ones: "
                         f"{', '.join(names) or 'none'})")
    names = [value.name for value in declared]
    if inputs_file is not None:
        from compiler.artifacts import check_tensors, read_tensors

        given = read_tensors(Path(inputs_file), "inputs")
        check_tensors(given, {n: (tuple(given[n].shape) if n in given else (), shapes[n][1]) for n in names},
                      str(inputs_file))
        inputs = tuple(given[n] for n in names)
    else:
        inputs = tuple(example_input(name, shape, dtype, proto) for name, (shape, dtype) in shapes.items())
    return OnnxModel(path.stem, proto, names, inputs)


def check_versions(proto: Any, name: str) -> None:
    """Refuses models outside the IR versions and opsets this frontend reads."""
    if proto.ir_version < MIN_IR_VERSION:
        raise AttncError(f"{name}: ONNX IR version {proto.ir_version} is not supported (>= {MIN_IR_VERSION})")
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx") and not MIN_OPSET <= opset.version <= MAX_OPSET:
            raise AttncError(
                f"{name}: ONNX opset {opset.version} is not supported ({MIN_OPSET} to {MAX_OPSET}); "
                "convert it with onnx.version_converter"
            )
    for node in proto.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise AttncError(f"{name}: node '{node.name}' uses op '{node.op_type}' of domain '{node.domain}', "
                             "which attnc does not read (only the default ONNX domain)")


def example_input(name: str, shape: list[int], dtype: torch.dtype, proto: Any) -> torch.Tensor:
    """Deterministic example data: token ids below the size of the table they index, masks all ones,
    token types zeros, floats N(0, 1)."""
    generator = torch.Generator().manual_seed(0)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator, dtype=dtype)
    if dtype == torch.bool or "mask" in name.lower():
        return torch.ones(shape, dtype=dtype)
    if "type" in name.lower():  # token_type_ids
        return torch.zeros(shape, dtype=dtype)
    return torch.randint(0, table_rows(name, proto), shape, generator=generator, dtype=dtype)


_INDEX_PRESERVING = {"Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten"}


def table_rows(input_name: str, proto: Any) -> int:
    """Rows of the embedding table the input indexes (a ``Gather`` on an initializer, reached through casts
    and reshapes); without one, the smallest such table; 2 when the graph gathers from none."""
    rows = {init.name: init.dims[0] for init in proto.graph.initializer if len(init.dims) >= 1}
    reached, found = {input_name}, []
    for node in proto.graph.node:
        if node.op_type in _INDEX_PRESERVING and node.input and node.input[0] in reached:
            reached.update(node.output)
        elif node.op_type == "Gather" and len(node.input) > 1 and node.input[1] in reached and node.input[0] in rows:
            found.append(rows[node.input[0]])
    if found:
        return max(2, min(found))
    gathered = [rows[n.input[0]] for n in proto.graph.node if n.op_type == "Gather" and n.input[0] in rows]
    return max(2, min(gathered)) if gathered else 2


# ---------------------------------------------------------------------------------------------------------
# Preparing the graph for torch-mlir: static shapes, folded shape arithmetic, initializers as arguments.
# ---------------------------------------------------------------------------------------------------------


def every_value(model: OnnxModel) -> dict[str, np.ndarray]:
    """Every named value of the graph on the example inputs (one onnxruntime run, optimisations off)."""
    import onnx
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model.proto)
    known = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for output in node.output:
            if output and output not in known:
                probe.graph.output.append(onnx.ValueInfoProto(name=output))
                known.add(output)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = onnxruntime.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        feeds = {name: t.numpy() for name, t in zip(model.input_names, model.inputs)}
        names = [o.name for o in session.get_outputs()]
        values = dict(zip(names, session.run(names, feeds)))
    except Exception as error:
        raise AttncError(f"onnxruntime cannot run {model.name}: {one_line(error)}") from None
    for init in model.proto.graph.initializer:
        values[init.name] = onnx.numpy_helper.to_array(init)
    return values


def prepared_graph(model: OnnxModel) -> tuple[Any, dict[str, torch.Tensor]]:
    """The graph torch-mlir imports, and the weights by initializer name (see the module docstring)."""
    import onnx
    from onnx import helper, numpy_helper

    values = every_value(model)
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    graph = proto.graph
    initializers = {init.name: init for init in graph.initializer}
    # Values that depend on the inputs' data (a Shape reads only the static shape).
    dependent = set(model.input_names)
    for node in graph.node:
        if node.op_type != "Shape" and any(i in dependent for i in node.input if i):
            dependent.update(o for o in node.output if o)
    nodes = []
    folded: set[str] = set()
    for name, init in list(initializers.items()):  # index tables and scalars are constants, not weights
        if foldable(name, values, dependent):
            nodes.append(constant_node(name, values[name], name))
            del initializers[name]
    for node in graph.node:
        outputs = [o for o in node.output if o]
        if node.op_type != "Constant" and outputs and all(foldable(o, values, dependent) for o in outputs):
            for output in outputs:
                nodes.append(constant_node(output, values[output], node.name or output))
                folded.add(output)
        elif node.op_type == "Constant":
            nodes.append(constant_node(node.output[0], values[node.output[0]], node.name or node.output[0]))
        else:
            nodes.append(node)
    nodes = live_nodes(nodes, [o.name for o in graph.output])
    used = {i for node in nodes for i in node.input} | {o.name for o in graph.output}
    del graph.node[:]
    graph.node.extend(nodes)
    weights = {}
    for name, init in initializers.items():
        if name in used:
            array = numpy_helper.to_array(init)
            weights[name] = torch.from_numpy(np.array(array))
            graph.input.append(helper.make_tensor_value_info(name, init.data_type, list(array.shape)))
    del graph.initializer[:]
    kept_inputs = [i for i in graph.input if i.name in weights or i.name in model.input_names]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    for value, tensor in zip(model.input_names, model.inputs):
        typed = helper.make_tensor_value_info(value, helper.np_dtype_to_tensor_dtype(tensor.numpy().dtype), list(tensor.shape))
        for existing in graph.input:
            if existing.name == value:
                existing.CopyFrom(typed)
    del graph.value_info[:]
    for node in nodes:
        for output in node.output:
            if output and output in values:
                array = np.asarray(values[output])
                graph.value_info.append(helper.make_tensor_value_info(
                    output, helper.np_dtype_to_tensor_dtype(array.dtype), list(array.shape)))
    outputs = []
    for output in graph.output:
        array = np.asarray(values[output.name])
        element = helper.np_dtype_to_tensor_dtype(array.dtype)
        outputs.append(helper.make_tensor_value_info(output.name, element, list(array.shape)))
    del graph.output[:]
    graph.output.extend(outputs)
    return proto, weights


def foldable(name: str, values: Mapping[str, np.ndarray], dependent: set[str]) -> bool:
    """An input-independent integer or boolean value (up to FOLD_LIMIT elements), or scalar."""
    if name in dependent or name not in values:
        return False
    array = np.asarray(values[name])
    return array.size <= 1 or (array.dtype.kind in "biu" and array.size <= FOLD_LIMIT)


def constant_node(output: str, array: np.ndarray, name: str) -> Any:
    """A ``Constant`` node holding ``array`` as typed fields (torch-mlir inlines those as a dense literal)."""
    from onnx import helper

    array = np.asarray(array)
    dtype = helper.np_dtype_to_tensor_dtype(array.dtype)
    values = array.astype(np.int64 if array.dtype == np.bool_ else array.dtype).reshape(-1).tolist()
    tensor = helper.make_tensor(output, dtype, list(array.shape), values, raw=False)
    return helper.make_node("Constant", [], [output], name=name, value=tensor)


def live_nodes(nodes: Sequence[Any], outputs: Sequence[str]) -> list[Any]:
    """The nodes the graph outputs depend on, in order."""
    needed = set(outputs)
    live = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            live.append(node)
            needed.update(i for i in node.input if i)
    return list(reversed(live))


# ---------------------------------------------------------------------------------------------------------
# torch-mlir → xDSL → nn.
# ---------------------------------------------------------------------------------------------------------


def torch_dialect_text(proto: Any) -> str:
    """torch-mlir's ONNX importer on a prepared graph, printed in MLIR's generic form."""
    from torch_mlir.dialects import torch as torch_d
    from torch_mlir.extras import onnx_importer
    from torch_mlir.ir import Context

    context = Context()
    torch_d.register_dialect(context)
    info = onnx_importer.ModelInfo(proto)
    module = info.create_module(context=context).operation
    try:
        onnx_importer.NodeImporter.define_function(info.main_graph, module).import_all()
    except onnx_importer.OnnxImportError as error:
        raise AttncError(f"torch-mlir cannot import the ONNX graph: {one_line(error)}") from None
    return module.get_asm(print_generic_op_form=True, enable_debug_info=True, use_local_scope=True)


def parse_torch_dialect(text: str) -> ModuleOp:
    """torch-mlir's generic-form output as an xDSL module (builtin, func, the partial torch dialect)."""
    ctx = Context()
    ctx.load_dialect(builtin.Builtin)
    ctx.load_dialect(func.Func)
    ctx.load_dialect(TORCH)
    ctx.load_dialect(nn.NN)
    try:
        return Parser(ctx, text, "<torch-mlir>").parse_module()
    except Exception as error:  # torch-mlir wrote a type or op the partial torch dialect does not define
        raise AttncError(f"cannot read torch-mlir's output: {one_line(error)}") from None


def import_onnx(model: OnnxModel) -> ImportedProgram:
    """The ONNX model as an ``nn`` module with its weights (initializers as ``nn.param`` symbols)."""
    from passes.convert_torch_to_nn import ConvertTorchToNnPass

    proto, weights = prepared_graph(model)
    module = parse_torch_dialect(torch_dialect_text(proto))
    ConvertTorchToNnPass().apply(Context(), module)
    function = next(op for op in module.ops if isinstance(op, func.FuncOp))
    block = function.body.block
    user_count = len(model.input_names)
    param_names = [value.name for value in proto.graph.input][user_count:]
    first = block.first_op
    for argument, name in zip(list(block.args[user_count:]), param_names):
        param = nn.ParamOp(name, tensor_type(weights[name].shape, weights[name].dtype))
        param.location = module_location(name.rsplit(".", 1)[0] if "." in name else name)
        param.result.name_hint = sanitized(name)
        block.insert_op_before(param, first) if first is not None else block.add_op(param)
        argument.replace_all_uses_with(param.result)
    for argument in list(block.args[user_count:]):
        block.erase_arg(argument)
    for argument, name in zip(block.args, model.input_names):
        argument.name_hint = sanitized(name)
    outputs = [v.type for v in block.last_op.operands] if block.last_op is not None else []
    function.function_type = builtin.FunctionType.from_lists([a.type for a in block.args], outputs)
    function.sym_name = StringAttr("main")
    for name in [k for k in function.attributes if k.startswith("torch.")]:
        del function.attributes[name]
    module.attributes.pop("torch.debug_module_name", None)
    dce(module)
    module.verify()
    used = {op.key for op in module.walk() if isinstance(op, nn.ParamOp)}
    return ImportedProgram(
        module=module,
        weights={k: v for k, v in weights.items() if k in used},
        input_names=list(model.input_names),
        output_names=[o.name for o in proto.graph.output],
        op_count=sum(1 for _ in function.walk()) - 1,
    )


def sanitized(name: str) -> str | None:
    hint = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name).strip("_")
    return hint if hint.isidentifier() else None

