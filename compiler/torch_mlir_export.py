"""``attnc export --format torch-mlir``: a compiled module as torch-mlir's ``torch`` dialect.

Each ``nn`` op becomes the ATen op it was imported from (``nn.linear`` → ``torch.aten.linear``) and
``attn.sdpa`` becomes ``torch.aten.scaled_dot_product_attention``, on ``!torch.vtensor`` values, so the
result sits in torch-mlir's own flow: its Python bindings parse and verify it, and its
``torch-backend-to-linalg-on-tensors-backend-pipeline`` lowers it. The text is written in MLIR's generic
form, parsed and verified by torch-mlir, and printed by torch-mlir (its custom assembly).

Parameters are not inlined: ``@main`` takes the model's inputs, then one argument per parameter, each
marked ``{attnc.param = "name"}`` with the name of its tensor in the artifact's ``weights.safetensors``
(inputs are marked ``{attnc.input = "name"}``). Small constants become ``torch.vtensor.literal``.

Ops with no ATen form (``attn.cosine``, ``attn.kv_clip``, ``attn.softmax``, a soft-capped ``attn.sdpa``, and
anything a target lowering produced) are one error naming the op and its location: export before the pass
that introduced them. Needs torch-mlir (the ``onnx`` extra).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
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
from xdsl.ir import Attribute, Operation, SSAValue

from compiler.errors import AttncError, one_line
from dialects import attn, nn
from dialects.locations import module_path_of
from dialects.shapes import int_list, tensor_shape

# torch's ScalarType codes, as ``torch.aten.to.dtype`` takes them.
_SCALAR_TYPE = {"ui8": 0, "si8": 1, "si16": 2, "si32": 3, "si64": 4, "f16": 5, "f32": 6, "f64": 7, "i1": 11, "bf16": 15}
_NUMPY = {"f16": np.float16, "f32": np.float32, "f64": np.float64}

_UNARY: dict[type[Operation], str] = {
    nn.NegOp: "neg", nn.ExpOp: "exp", nn.SqrtOp: "sqrt", nn.RsqrtOp: "rsqrt", nn.TanhOp: "tanh",
    nn.SigmoidOp: "sigmoid", nn.ReluOp: "relu", nn.SiluOp: "silu", nn.CosOp: "cos", nn.SinOp: "sin",
    nn.LogicalNotOp: "logical_not", nn.AbsOp: "abs", nn.SignOp: "sign", nn.LogOp: "log", nn.CeilOp: "ceil",
    nn.FloorOp: "floor", nn.ErfOp: "erf",
}
_BINARY: dict[type[Operation], str] = {
    nn.MulOp: "mul.Tensor", nn.DivOp: "div.Tensor", nn.PowOp: "pow.Tensor_Tensor", nn.MaximumOp: "maximum",
    nn.MinimumOp: "minimum", nn.LogicalAndOp: "logical_and", nn.EqOp: "eq.Tensor", nn.NeOp: "ne.Tensor",
    nn.GeOp: "ge.Tensor", nn.GtOp: "gt.Tensor", nn.LeOp: "le.Tensor", nn.LtOp: "lt.Tensor",
}
_WHY_NOT = {
    "attn.cosine": "cosine attention has no ATen op",
    "attn.kv_clip": "ClipFormer's clipping has no ATen op",
    "attn.softmax": "it is what remains of attention after a target lowering",
}


class ExportError(AttncError):
    """The module holds an op that torch-mlir's ``torch`` dialect cannot express."""


def element_name(typ: Attribute) -> str:
    """torch-mlir's spelling of an element type: ``f32``, ``si64``, ``i1``."""
    if isinstance(typ, IntegerType):
        width = typ.width.data
        return "i1" if width == 1 else f"si{width}"
    for kind, name in ((Float32Type, "f32"), (Float64Type, "f64"), (Float16Type, "f16"), (BFloat16Type, "bf16")):
        if isinstance(typ, kind):
            return name
    raise ExportError(f"element type {typ} has no torch-mlir form")


def vtensor(typ: Attribute) -> str:
    assert isinstance(typ, TensorType)
    return f"!torch.vtensor<[{','.join(str(d) for d in typ.get_shape())}],{element_name(typ.element_type)}>"


def builtin_tensor(typ: TensorType) -> str:
    """The builtin tensor type a ``torch.vtensor.literal`` of this type holds (``tensor<2x3xsi64>``)."""
    return f"tensor<{''.join(f'{d}x' for d in typ.get_shape())}{element_name(typ.element_type)}>"


def dense_literal(values: Sequence[float | int | bool], typ: TensorType) -> str:
    """``dense<...>`` for a literal of ``typ``: floats as their exact little-endian bytes, integers and
    booleans as numbers (a single value is a splat)."""
    element = element_name(typ.element_type)
    if element in _NUMPY:
        data = np.asarray(values, dtype=_NUMPY[element]).astype(f"<{np.dtype(_NUMPY[element]).str[1:]}")
        if data.size > 1 and np.all(data.view(f"u{data.itemsize}") == data.view(f"u{data.itemsize}")[0]):
            data = data[:1]
        return f'dense<"0x{data.tobytes().hex().upper()}"> : {builtin_tensor(typ)}'
    text = [("true" if v else "false") if element == "i1" else str(int(v)) for v in values]
    body = text[0] if len(set(text)) == 1 else nested(text, typ.get_shape())
    return f"dense<{body}> : {builtin_tensor(typ)}"


def nested(flat: Sequence[str], shape: Sequence[int]) -> str:
    if not shape:
        return flat[0]
    step = len(flat) // shape[0] if shape[0] else 0
    return "[" + ", ".join(nested(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"


@dataclass
class TorchEmitter:
    """Writes one ``@main`` in torch-mlir's generic form, value by value."""

    lines: list[str] = field(default_factory=list)
    names: dict[SSAValue, str] = field(default_factory=dict)
    constants: dict[tuple[str, str], str] = field(default_factory=dict)
    counter: int = 0

    def fresh(self) -> str:
        self.counter += 1
        return f"%v{self.counter}"

    def value(self, ssa: SSAValue) -> tuple[str, str]:
        return self.names[ssa], vtensor(ssa.type)

    def scalar(self, kind: str, value: object) -> tuple[str, str]:
        """A ``torch.constant.{int,float,bool,str,none}``, emitted once per value."""
        if kind == "none":
            attribute = ""
        elif kind == "float":
            bits = struct.unpack("<Q", struct.pack("<d", float(value)))[0]  # type: ignore[arg-type]
            attribute = f" <{{value = 0x{bits:016X} : f64}}>"  # exact, infinities included
        elif kind == "int":
            attribute = f" <{{value = {int(value)} : i64}}>"  # type: ignore[call-overload]
        elif kind == "bool":
            attribute = f" <{{value = {'true' if value else 'false'}}}>"
        else:
            attribute = f' <{{value = "{value}"}}>'
        key = (kind, attribute)
        if key not in self.constants:
            name = self.fresh()
            self.lines.append(f'{name} = "torch.constant.{kind}"(){attribute} : () -> !torch.{kind}')
            self.constants[key] = name
        return self.constants[key], f"!torch.{kind}"

    def int_list(self, values: Sequence[int]) -> tuple[str, str]:
        items = [self.scalar("int", v) for v in values]
        return self.op("torch.prim.ListConstruct", items, "!torch.list<int>")

    def op(self, name: str, operands: Sequence[tuple[str, str]], result_type: str, attributes: str = "") -> tuple[str, str]:
        result = self.fresh()
        names = ", ".join(n for n, _ in operands)
        types = ", ".join(t for _, t in operands)
        self.lines.append(f'{result} = "{name}"({names}){attributes} : ({types}) -> {result_type}')
        return result, result_type

    def aten(self, op: Operation, name: str, *operands: tuple[str, str]) -> None:
        self.names[op.results[0]] = self.op(f"torch.aten.{name}", operands, vtensor(op.results[0].type))[0]

    def literal(self, op: Operation, values: Sequence[float | int | bool]) -> None:
        typ = op.results[0].type
        assert isinstance(typ, TensorType)
        self.names[op.results[0]] = self.op("torch.vtensor.literal", [], vtensor(typ),
                                            f" <{{value = {dense_literal(values, typ)}}}>")[0]


def optional(emitter: TorchEmitter, ssa: SSAValue | None) -> tuple[str, str]:
    return emitter.scalar("none", None) if ssa is None else emitter.value(ssa)


def emit_attention(e: TorchEmitter, op: Operation, q: SSAValue, k: SSAValue, v: SSAValue, mask: SSAValue | None,
                   scale: float | None, causal: bool) -> None:
    """``scaled_dot_product_attention``. torch-mlir 20261001's lowering (``tm_tensor.attention`` to loops)
    drops an explicit scale when a mask is given or ``is_causal`` is set, and uses 1/sqrt(E); a scale other
    than that default is then folded into the query (``q · scale·sqrt(E)``), which gives the same scores."""
    query = e.value(q)
    head_dim = tensor_shape(q)[-1]
    default = 1.0 / math.sqrt(head_dim)
    if scale is not None and math.isclose(scale, default, rel_tol=1e-12):
        scale = None
    if scale is not None and (mask is not None or causal):
        factor_type = TensorType(q.type.element_type, [])  # type: ignore[attr-defined]
        factor = e.op("torch.vtensor.literal", [], vtensor(factor_type),
                      f" <{{value = {dense_literal([scale / default], factor_type)}}}>")
        query = e.op("torch.aten.mul.Tensor", [query, factor], query[1])
        scale = None
    grouped = len(tensor_shape(q)) > 2 and tensor_shape(q)[-3] != tensor_shape(k)[-3]  # fewer K/V heads than Q heads
    e.aten(op, "scaled_dot_product_attention", query, e.value(k), e.value(v), optional(e, mask),
           e.scalar("float", 0.0), e.scalar("bool", causal),
           e.scalar("none", None) if scale is None else e.scalar("float", scale), e.scalar("bool", grouped))


def emit_op(e: TorchEmitter, op: Operation) -> None:
    """One op of ``@main`` in ATen form; an op with none is an ``ExportError``."""
    if type(op) in _UNARY:
        e.aten(op, _UNARY[type(op)], e.value(op.operands[0]))
    elif type(op) in _BINARY:
        e.aten(op, _BINARY[type(op)], e.value(op.operands[0]), e.value(op.operands[1]))
    elif isinstance(op, (nn.AddOp, nn.SubOp)):
        e.aten(op, "add.Tensor" if isinstance(op, nn.AddOp) else "sub.Tensor", e.value(op.lhs), e.value(op.rhs),
               e.scalar("int", 1))
    elif isinstance(op, nn.ConstantOp):
        e.literal(op, constant_values(op.value))
    elif isinstance(op, nn.FullOp):
        e.literal(op, [op.value.value.data])
    elif isinstance(op, nn.ArangeOp):
        start, end, step = (a.value.data for a in (op.start, op.end, op.step))
        dtype = torch.float64 if element_name(op.result.type.element_type)[0] == "f" else torch.int64
        e.literal(op, torch.arange(start, end, step, dtype=dtype).tolist())
    elif isinstance(op, nn.DropoutOp):
        e.names[op.result] = e.names[op.input]  # the identity at inference
    elif isinstance(op, nn.GeluOp):
        e.aten(op, "gelu", e.value(op.input), e.scalar("str", op.approximate.data))
    elif isinstance(op, nn.ClampOp):
        bounds = [e.scalar("none", None) if b is None else e.scalar("float", b.value.data) for b in (op.min, op.max)]
        e.aten(op, "clamp", e.value(op.input), *bounds)
    elif isinstance(op, nn.CastOp):
        code = _SCALAR_TYPE[element_name(op.result.type.element_type)]
        e.aten(op, "to.dtype", e.value(op.input), e.scalar("int", code), e.scalar("bool", False), e.scalar("bool", False),
               e.scalar("none", None))
    elif isinstance(op, nn.WhereOp):
        e.aten(op, "where.self", e.value(op.condition), e.value(op.lhs), e.value(op.rhs))
    elif isinstance(op, nn.MatmulOp):
        e.aten(op, "matmul", e.value(op.lhs), e.value(op.rhs))
    elif isinstance(op, nn.LinearOp):
        e.aten(op, "linear", e.value(op.input), e.value(op.weight), optional(e, op.bias))
    elif isinstance(op, nn.EmbeddingOp):
        e.aten(op, "embedding", e.value(op.weight), e.value(op.indices), e.scalar("int", -1), e.scalar("bool", False),
               e.scalar("bool", False))
    elif isinstance(op, nn.SoftmaxOp):
        e.aten(op, "softmax.int", e.value(op.input), e.scalar("int", op.dim.value.data), e.scalar("none", None))
    elif isinstance(op, nn.LayerNormOp):
        e.aten(op, "layer_norm", e.value(op.input), e.int_list(int_list(op.normalized_shape)), optional(e, op.weight),
               optional(e, op.bias), e.scalar("float", op.eps.value.data), e.scalar("bool", False))
    elif isinstance(op, nn.SdpaOp):
        if op.dropout_p.value.data != 0.0:
            raise ExportError(f"{describe(op)} has dropout {op.dropout_p.value.data}: only inference attention exports")
        emit_attention(e, op, op.query, op.key, op.value, op.mask, None if op.scale is None else op.scale.value.data,
                       bool(op.causal.value.data))
    elif isinstance(op, attn.SdpaOp):
        if op.softcap is not None:
            raise ExportError(f"cannot express {describe(op)} in torch-mlir: scaled_dot_product_attention has no soft-cap")
        emit_attention(e, op, op.query, op.key, op.value, op.mask, op.scale.value.data, bool(op.causal.value.data))
    elif isinstance(op, nn.ReshapeOp):
        e.aten(op, "reshape", e.value(op.input), e.int_list(tensor_shape(op.result)))
    elif isinstance(op, nn.BroadcastToOp):
        e.aten(op, "broadcast_to", e.value(op.input), e.int_list(tensor_shape(op.result)))
    elif isinstance(op, nn.TransposeOp):
        e.aten(op, "transpose.int", e.value(op.input), e.scalar("int", op.dim0.value.data), e.scalar("int", op.dim1.value.data))
    elif isinstance(op, nn.PermuteOp):
        e.aten(op, "permute", e.value(op.input), e.int_list(int_list(op.dims)))
    elif isinstance(op, nn.SliceOp):
        numbers = [e.scalar("int", a.value.data) for a in (op.dim, op.start, op.end, op.step)]
        e.aten(op, "slice.Tensor", e.value(op.input), *numbers)
    elif isinstance(op, nn.SelectOp):
        e.aten(op, "select.int", e.value(op.input), e.scalar("int", op.dim.value.data), e.scalar("int", op.index.value.data))
    elif isinstance(op, nn.ConcatOp):
        tensors = e.op("torch.prim.ListConstruct", [e.value(v) for v in op.inputs], "!torch.list<vtensor>")
        e.aten(op, "cat", tensors, e.scalar("int", op.dim.value.data))
    elif isinstance(op, nn.GatherOp):
        e.aten(op, "gather", e.value(op.input), e.scalar("int", op.dim.value.data), e.value(op.indices), e.scalar("bool", False))
    elif isinstance(op, nn.IndexOp):
        dims = int_list(op.dims)
        by_dim = dict(zip(dims, op.indices))
        items = [e.value(by_dim[d]) if d in by_dim else e.scalar("none", None) for d in range(max(dims) + 1)]
        indices = e.op("torch.prim.ListConstruct", items, "!torch.list<optional<vtensor>>")
        e.aten(op, "index.Tensor", e.value(op.input), indices)
    elif isinstance(op, (nn.ReduceSumOp, nn.ReduceMeanOp)):
        dims = int_list(op.dims)
        e.aten(op, "sum.dim_IntList" if isinstance(op, nn.ReduceSumOp) else "mean.dim", e.value(op.input),
               e.int_list(dims) if dims else e.scalar("none", None), e.scalar("bool", bool(op.keepdim.value.data)),
               e.scalar("none", None))
    elif isinstance(op, nn.VectorNormOp):
        dims = int_list(op.dims)
        e.aten(op, "linalg_vector_norm", e.value(op.input), e.scalar("float", op.ord.value.data),
               e.int_list(dims) if dims else e.scalar("none", None), e.scalar("bool", bool(op.keepdim.value.data)),
               e.scalar("none", None))
    elif isinstance(op, nn.CumsumOp):
        e.aten(op, "cumsum", e.value(op.input), e.scalar("int", op.dim.value.data), e.scalar("none", None))
    elif isinstance(op, nn.ConvOp):
        spatial = op.spatial_rank
        e.aten(op, "convolution", e.value(op.input), e.value(op.weight), optional(e, op.bias), e.int_list(int_list(op.stride)),
               e.int_list(int_list(op.padding)), e.int_list(int_list(op.dilation)), e.scalar("bool", False),
               e.int_list([0] * spatial), e.scalar("int", op.groups.value.data))
    elif isinstance(op, nn.PadOp):
        e.aten(op, "constant_pad_nd", e.value(op.input), e.int_list(int_list(op.pads)), e.scalar("float", op.value.value.data))
    elif isinstance(op, nn.RepeatOp):
        e.aten(op, "repeat", e.value(op.input), e.int_list(int_list(op.repeats)))
    elif isinstance(op, nn.RepeatInterleaveOp):
        e.aten(op, "repeat_interleave.self_int", e.value(op.input), e.scalar("int", op.repeats.value.data),
               e.scalar("int", op.dim.value.data), e.scalar("none", None))
    else:
        why = _WHY_NOT.get(op.name, "it has no ATen form")
        raise ExportError(f"cannot express {describe(op)} in torch-mlir: {why}; export before the pass that introduced it")


def describe(op: Operation) -> str:
    where = module_path_of(op)
    return f"'{op.name}'" + (f" at '{where}'" if where else "")


def constant_values(value: DenseIntOrFPElementsAttr) -> list[float | int | bool]:
    values: list[float | int | bool] = [v for v in value.get_values()]  # type: ignore[misc]
    count = math.prod(value.get_shape() or ())
    return values * count if len(values) == 1 and count > 1 else values


def module_text(module: ModuleOp, input_names: Sequence[str]) -> tuple[str, list[str]]:
    """``@main`` in torch-mlir's generic form, and the parameter names its trailing arguments hold."""
    function = next((op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "main"), None)
    if function is None:
        raise ExportError("the module holds no function @main")
    e = TorchEmitter()
    arguments = []
    for index, argument in enumerate(function.body.block.args):
        name = input_names[index] if index < len(input_names) else f"input_{index}"
        e.names[argument] = f"%arg{index}"
        arguments.append(f'%arg{index}: {vtensor(argument.type)} {{attnc.input = "{name}"}}')
    parameters: dict[str, str] = {}
    results: list[str] = []
    for op in function.body.block.ops:
        if isinstance(op, nn.ParamOp):
            if op.key not in parameters:
                parameters[op.key] = f"%arg{len(arguments)}"
                arguments.append(f'{parameters[op.key]}: {vtensor(op.result.type)} {{attnc.param = "{op.key}"}}')
            e.names[op.result] = parameters[op.key]
        elif isinstance(op, func.ReturnOp):
            results = [e.names[v] for v in op.operands]
            types = [vtensor(v.type) for v in op.operands]
            e.lines.append(f'"func.return"({", ".join(results)}) : ({", ".join(types)}) -> ()')
        else:
            emit_op(e, op)
    result_types = ", ".join(vtensor(t) for t in function.function_type.outputs.data)
    body = "\n    ".join(e.lines)
    text = (f"module {{\n  func.func @main({', '.join(arguments)}) -> ({result_types}) {{\n    {body}\n  }}\n}}\n")
    return text, list(parameters)


@dataclass
class TorchMlirExport:
    """The exported text and what ``@main``'s arguments hold: the inputs, then the parameters, by name."""

    text: str
    input_names: list[str]
    parameter_names: list[str]

    def arguments(self, inputs: Sequence[torch.Tensor], weights: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The tensors to call ``@main`` with: ``inputs``, then each parameter's tensor."""
        return [*inputs, *(weights[name] for name in self.parameter_names)]


def export_torch_mlir(module: ModuleOp, input_names: Sequence[str]) -> TorchMlirExport:
    """The module in torch-mlir's ``torch`` dialect, parsed and verified by torch-mlir and printed by it."""
    from compiler.frontend.onnx_importer import require_extra

    require_extra()
    text, parameters = module_text(module, input_names)
    return TorchMlirExport(str(parse_torch_mlir(text)), list(input_names), parameters)


def parse_torch_mlir(text: str):
    """Parses and verifies ``text`` with torch-mlir's bindings (the ``torch`` dialect registered)."""
    from torch_mlir import ir
    from torch_mlir.dialects import torch as torch_dialect

    context = ir.Context()
    torch_dialect.register_dialect(context)
    with context:
        try:
            parsed = ir.Module.parse(text)
        except Exception as error:
            raise AttncError(f"torch-mlir does not accept the exported module: {one_line(error)}") from None
        if not parsed.operation.verify():
            raise AttncError("torch-mlir's verifier rejects the exported module")
    return parsed
