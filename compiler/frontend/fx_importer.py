"""FX importer: a ``torch.export`` program (nothing decomposed) → an ``nn`` module plus its weights.

Every ATen op is translated by one handler; an op without a handler is an ``UnsupportedOpError`` naming the
op and the module path, never a silent drop. Ops that only assert or copy (``clone``, ``alias``,
``_assert_tensor_metadata``) carry no computation and are elided. Each created op gets the FX node's module
path as its location and the node's name as the SSA name hint.

Input-independent boolean tensors and scalars are folded to ``nn.constant``: a mask computed only from positions
(``arange`` comparisons, a causal buffer) does not depend on the model's inputs, and as a constant the passes
can read it (``attn-raise`` turns a causal triangle into ``causal = true``, ``attn-cosine`` keeps the padding
part), and a scale computed as ``sqrt(d * 3)`` is a number. Lifted 0-d constants
(``torch.tensor(finfo.min)`` inside ``forward``) become ``nn.constant`` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp, TensorType
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.transforms.dead_code_elimination import dce

from compiler.errors import AttncError
from dialects import nn
from dialects.locations import module_location
from runtime.dtypes import tensor_type


class UnsupportedOpError(AttncError):
    """The traced program uses an ATen op (or a variant of one) the importer does not translate."""


@dataclass
class ImportedProgram:
    """The result of importing: the IR module, the weights keyed by parameter name, and I/O names."""

    module: ModuleOp
    weights: dict[str, torch.Tensor]
    input_names: list[str]
    output_names: list[str]
    op_count: int = 0


def module_path(node: torch.fx.Node) -> str:
    """The dotted path of the innermost ``nn.Module`` that produced ``node`` ("" at top level)."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return path.replace("L['self'].", "").replace("L__self__.", "")


def _static_shape(value: torch.Tensor, node: torch.fx.Node) -> list[int]:
    shape = []
    for dim in value.shape:
        if not isinstance(dim, int):
            raise UnsupportedOpError(
                f"dynamic dimension {dim} in '{node.name}' at '{module_path(node) or '<top>'}': "
                "export with static shapes"
            )
        shape.append(dim)
    return shape


FOLD_LIMIT = 1 << 22  # elements: a folded mask this large (a 2048² causal triangle) still prints compactly
NEVER_FOLDED = {"aten.dropout.default", "aten.native_dropout.default", "aten.rand.default", "aten.randn.default"}

def _foldable(value: torch.Tensor) -> bool:
    """Input-independent values emitted as constants: boolean masks (up to FOLD_LIMIT) and 0-d scalars."""
    return value.dim() == 0 or (value.dtype == torch.bool and value.numel() <= FOLD_LIMIT)


Handler = Callable[["FxImporter", torch.fx.Node, tuple, dict], Any]
HANDLERS: dict[str, Handler] = {}


def handles(*targets: str) -> Callable[[Handler], Handler]:
    """Registers a handler for the ATen overloads named (``"aten.linear.default"``)."""

    def register(handler: Handler) -> Handler:
        for target in targets:
            HANDLERS[target] = handler
        return handler

    return register


@dataclass
class FxImporter:
    """Translates one ExportedProgram; see ``import_exported_program``."""

    program: torch.export.ExportedProgram
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    env: dict[torch.fx.Node, Any] = field(default_factory=dict)
    params: dict[str, SSAValue] = field(default_factory=dict)
    current: torch.fx.Node | None = None
    # Concrete values of input-independent nodes (buffers, constants and what is computed from them alone).
    static: dict[torch.fx.Node, Any] = field(default_factory=dict)

    def run(self) -> ImportedProgram:
        signature = self.program.graph_signature
        state = {**self.program.state_dict, **self.program.constants}
        lifted, static_kinds = {}, {}
        for spec in signature.input_specs:
            if spec.kind.name in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
                lifted[spec.arg.name] = spec.target
                static_kinds[spec.arg.name] = spec.kind.name
        user_inputs = [n for n in self.program.graph.nodes if n.op == "placeholder" and n.name not in lifted]
        input_types = [tensor_type(_static_shape(n.meta["val"], n), n.meta["val"].dtype) for n in user_inputs]
        block = Block(arg_types=input_types)
        for arg, node in zip(block.args, user_inputs):
            arg.name_hint = node.name
            self.env[node] = arg
        self.builder = Builder(InsertPoint.at_end(block))
        outputs: list[SSAValue] = []
        output_names: list[str] = []
        for node in self.program.graph.nodes:
            self.current = node
            if node.op == "placeholder":
                if node.name in lifted:
                    tensor = state[lifted[node.name]]
                    if static_kinds[node.name] != "PARAMETER":
                        self.static[node] = tensor
                    if static_kinds[node.name] == "CONSTANT_TENSOR" and tensor.dim() == 0:
                        self.env[node] = self.constant(tensor)
                    else:
                        self.env[node] = ("param", lifted[node.name], tensor)
            elif node.op == "call_function":
                self.evaluate_static(node)
                folded = self.static.get(node)
                if isinstance(folded, torch.Tensor) and _foldable(folded):
                    self.env[node] = self.constant(folded)
                else:
                    self.env[node] = self.convert(node)
            elif node.op == "output":
                for value in torch.utils._pytree.tree_leaves(node.args[0]):
                    if isinstance(value, torch.fx.Node):
                        outputs.append(self.value(value))
                        output_names.append(value.name)
            else:
                raise UnsupportedOpError(f"FX node kind '{node.op}' ({node.name}) is not supported")
        self.builder.insert(func.ReturnOp(*outputs))
        function = func.FuncOp("main", (input_types, [v.type for v in outputs]), Region(block))
        module = ModuleOp([function])
        dce(module)
        module.verify()
        return ImportedProgram(
            module=module,
            weights=self.weights,
            input_names=[n.name for n in user_inputs],
            output_names=output_names,
            op_count=sum(1 for _ in function.walk()) - 1,
        )

    # -- values ----------------------------------------------------------------------------------------

    def value(self, arg: Any) -> SSAValue:
        """The SSA value for an FX argument (materialising parameters on first use)."""
        if isinstance(arg, torch.fx.Node):
            entry = self.env[arg]
            if isinstance(entry, tuple) and entry and entry[0] == "param":
                return self.param(entry[1], entry[2])
            if not isinstance(entry, SSAValue):
                raise UnsupportedOpError(f"'{arg.name}' is used as a tensor but is not one")
            return entry
        raise UnsupportedOpError(f"expected a tensor argument, got {arg!r} in '{self.node.name}'")

    def param(self, name: str, tensor: torch.Tensor) -> SSAValue:
        if name not in self.params:
            self.weights[name] = tensor.detach().contiguous()
            owner = name.rsplit(".", 1)[0] if "." in name else ""
            op = nn.ParamOp(name, tensor_type(tensor.shape, tensor.dtype))
            op.location = module_location(owner)
            op.result.name_hint = name.replace(".", "_")
            self.builder.insert(op)
            self.params[name] = op.result
        return self.params[name]

    @property
    def node(self) -> torch.fx.Node:
        """The FX node being translated (set for the whole of each handler call)."""
        assert self.current is not None, "no FX node is being translated"
        return self.current

    def meta(self, node: torch.fx.Node | None = None) -> torch.Tensor:
        return (node or self.node).meta["val"]

    def result_type(self, node: torch.fx.Node | None = None) -> TensorType:
        value = self.meta(node)
        return tensor_type(_static_shape(value, node or self.node), value.dtype)

    def emit(self, op: Operation, hint: str | None = None) -> SSAValue:
        """Inserts ``op`` located at the current node's module path; returns its (single) result."""
        path = module_path(self.node)
        if path:
            op.location = module_location(path)
        self.builder.insert(op)
        result = op.results[0]
        name = hint or self.node.name
        result.name_hint = name if name.isidentifier() else None
        return result

    def scalar(self, value: float | int | bool, dtype: torch.dtype) -> SSAValue:
        """A 0-d ``nn.constant`` holding a traced Python scalar."""
        typ = tensor_type([], dtype)
        if dtype == torch.bool:
            value = int(bool(value))
        elif not dtype.is_floating_point:
            value = int(value)
        else:
            value = float(value)
        attr = DenseIntOrFPElementsAttr.from_list(typ, [value])  # type: ignore[type-var]
        return self.emit(nn.ConstantOp(attr), hint="cst")  # type: ignore[arg-type]

    def constant(self, tensor: torch.Tensor) -> SSAValue:
        """An ``nn.constant`` holding a concrete tensor."""
        typ = tensor_type(list(tensor.shape), tensor.dtype)
        flat = tensor.detach().reshape(-1)
        values = flat.to(torch.int64).tolist() if not tensor.dtype.is_floating_point else flat.to(torch.float64).tolist()
        attr = DenseIntOrFPElementsAttr.from_list(typ, values)  # type: ignore[type-var]
        return self.emit(nn.ConstantOp(attr), hint=self.node.name)  # type: ignore[arg-type]

    def evaluate_static(self, node: torch.fx.Node) -> None:
        """Records ``node``'s concrete value when every tensor it reads is input-independent."""
        inputs = [a for a in node.all_input_nodes]
        if not all(a in self.static for a in inputs) or str(node.target) in NEVER_FOLDED or not callable(node.target):
            return
        args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda a: self.static[a])
        try:
            with torch.no_grad():
                self.static[node] = node.target(*args, **kwargs)
        except Exception:  # an op torch cannot run eagerly here stays an op: folding is an optimisation
            return

    def operand(self, arg: Any, like_dtype: torch.dtype) -> SSAValue:
        """A tensor operand, turning a Python scalar into a constant of dtype ``like_dtype``."""
        if isinstance(arg, torch.fx.Node):
            return self.value(arg)
        if isinstance(arg, (int, float, bool)):
            return self.scalar(arg, like_dtype)
        raise UnsupportedOpError(f"unsupported argument {arg!r} in '{self.node.name}'")

    def convert(self, node: torch.fx.Node) -> Any:
        target = str(node.target)
        handler = HANDLERS.get(target)
        if handler is None:
            raise UnsupportedOpError(
                f"unsupported ATen op '{target}' (node '{node.name}') at '{module_path(node) or '<top>'}'"
            )
        return handler(self, node, node.args, node.kwargs)


def import_exported_program(program: torch.export.ExportedProgram) -> ImportedProgram:
    """Imports a ``torch.export`` program (call ``run_decompositions({})`` first) into the ``nn`` dialect."""
    return FxImporter(program).run()


# ---------------------------------------------------------------------------------------------------------
# Handlers.
# ---------------------------------------------------------------------------------------------------------


@handles("aten.clone.default", "aten.alias.default", "aten.contiguous.default", "aten.detach.default",
         "aten.lift_fresh_copy.default")
def _passthrough(im: FxImporter, node, args, kwargs):
    return im.value(args[0])


@handles("aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten.sym_constrain_range_for_size.default")
def _assertion(im: FxImporter, node, args, kwargs):
    return None


@handles("<built-in function getitem>")
def _getitem(im: FxImporter, node, args, kwargs):
    container = im.env[args[0]]
    if not isinstance(container, list):
        raise UnsupportedOpError(f"getitem on '{args[0].name}', which is not a list of tensors")
    return container[args[1]]


@handles("aten.linear.default")
def _linear(im: FxImporter, node, args, kwargs):
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    return im.emit(
        nn.LinearOp(im.value(args[0]), im.value(args[1]), im.value(bias) if bias is not None else None, im.result_type())
    )


@handles("aten.matmul.default", "aten.bmm.default", "aten.mm.default")
def _matmul(im: FxImporter, node, args, kwargs):
    lhs, rhs = im.value(args[0]), im.value(args[1])
    if len(nn.tensor_shape(lhs)) < 2 or len(nn.tensor_shape(rhs)) < 2:
        raise UnsupportedOpError(f"matmul with a 1-d operand ('{node.name}') is not supported")
    return im.emit(nn.MatmulOp(lhs, rhs, im.result_type()))


@handles("aten.addmm.default", "aten.baddbmm.default")
def _addmm(im: FxImporter, node, args, kwargs):
    beta, alpha = kwargs.get("beta", 1), kwargs.get("alpha", 1)
    lhs, rhs = im.value(args[1]), im.value(args[2])
    dtype = im.meta().dtype
    product_type = TensorType(im.result_type().get_element_type(), nn.matmul_shape(nn.tensor_shape(lhs), nn.tensor_shape(rhs)))
    product = im.emit(nn.MatmulOp(lhs, rhs, product_type), hint=f"{node.name}_mm")
    if alpha != 1:  # BLOOM's ALiBi scores: baddbmm(alibi, q, k, beta=1, alpha=1/sqrt(d))
        product = im.emit(nn.MulOp(product, im.scalar(alpha, dtype), product_type), hint=f"{node.name}_alpha")
    addend = im.value(args[0])
    if beta == 0:
        return product if product.type == im.result_type() else im.emit(nn.BroadcastToOp(product, im.result_type()))
    if beta != 1:
        addend = im.emit(nn.MulOp(addend, im.scalar(beta, dtype), addend.type), hint=f"{node.name}_beta")
    return im.emit(nn.AddOp(product, addend, im.result_type()))


_BINARY = {
    "add": nn.AddOp,
    "sub": nn.SubOp,
    "mul": nn.MulOp,
    "div": nn.DivOp,
    "pow": nn.PowOp,
    "maximum": nn.MaximumOp,
    "minimum": nn.MinimumOp,
    "__and__": nn.LogicalAndOp,
    "bitwise_and": nn.LogicalAndOp,
    "logical_and": nn.LogicalAndOp,
    "eq": nn.EqOp,
    "ne": nn.NeOp,
    "ge": nn.GeOp,
    "gt": nn.GtOp,
    "le": nn.LeOp,
    "lt": nn.LtOp,
}


def _binary(im: FxImporter, node, args, kwargs):
    family = str(node.target).split(".")[1]
    op_type = _BINARY[family]
    if kwargs.get("rounding_mode") is not None:
        raise UnsupportedOpError(f"div with rounding_mode={kwargs['rounding_mode']!r} ('{node.name}') is not supported")
    lhs_arg, rhs_arg = args[0], args[1]
    if op_type is nn.LogicalAndOp and any(
        isinstance(a, torch.fx.Node) and a.meta["val"].dtype != torch.bool for a in (lhs_arg, rhs_arg)
    ):
        raise UnsupportedOpError(f"bitwise and on non-boolean tensors ('{node.name}') is not supported")
    tensors = [a.meta["val"] for a in (lhs_arg, rhs_arg) if isinstance(a, torch.fx.Node)]
    scalars = [a for a in (lhs_arg, rhs_arg) if not isinstance(a, torch.fx.Node)]
    scalar_dtype = torch.result_type(tensors[0], scalars[0]) if scalars and tensors else im.meta().dtype
    lhs = im.operand(lhs_arg, scalar_dtype)
    rhs = im.operand(rhs_arg, scalar_dtype)
    alpha = kwargs.get("alpha", 1)
    if alpha != 1:
        if family not in ("add", "sub"):
            raise UnsupportedOpError(f"alpha on {node.target} is not supported")
        rhs = im.emit(nn.MulOp(rhs, im.scalar(alpha, scalar_dtype), rhs.type), hint=f"{node.name}_alpha")
    return im.emit(op_type(lhs, rhs, im.result_type()))


for _family in _BINARY:
    for _overload in ("Tensor", "Scalar", "default", "Tensor_Scalar", "Tensor_Tensor"):
        handles(f"aten.{_family}.{_overload}")(_binary)


@handles("aten.rsub.Scalar", "aten.rsub.Tensor")
def _rsub(im: FxImporter, node, args, kwargs):
    dtype = im.meta().dtype
    return im.emit(nn.SubOp(im.operand(args[1], dtype), im.operand(args[0], dtype), im.result_type()))


_UNARY = {
    "neg": nn.NegOp,
    "exp": nn.ExpOp,
    "sqrt": nn.SqrtOp,
    "rsqrt": nn.RsqrtOp,
    "tanh": nn.TanhOp,
    "sigmoid": nn.SigmoidOp,
    "relu": nn.ReluOp,
    "silu": nn.SiluOp,
    "cos": nn.CosOp,
    "sin": nn.SinOp,
    "logical_not": nn.LogicalNotOp,
    "bitwise_not": nn.LogicalNotOp,
}


def _unary(im: FxImporter, node, args, kwargs):
    op_type = _UNARY[str(node.target).split(".")[1]]
    return im.emit(op_type(im.value(args[0]), im.result_type()))


for _family in _UNARY:
    handles(f"aten.{_family}.default")(_unary)


@handles("aten.gelu.default")
def _gelu(im: FxImporter, node, args, kwargs):
    return im.emit(nn.GeluOp(im.value(args[0]), kwargs.get("approximate", args[1] if len(args) > 1 else "none")))


@handles("aten.dropout.default")
def _dropout(im: FxImporter, node, args, kwargs):
    return im.emit(nn.DropoutOp(im.value(args[0]), args[1]))


@handles("aten.clamp.default", "aten.clamp_min.default", "aten.clamp_max.default")
def _clamp(im: FxImporter, node, args, kwargs):
    family = str(node.target).split(".")[1]
    bounds = list(args[1:]) + [None, None]
    low, high = {"clamp": (bounds[0], bounds[1]), "clamp_min": (bounds[0], None), "clamp_max": (None, bounds[0])}[family]
    low, high = kwargs.get("min", low), kwargs.get("max", high)
    return im.emit(nn.ClampOp(im.value(args[0]), low, high))


@handles("aten._to_copy.default", "aten.to.dtype", "aten.type_as.default")
def _cast(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    if source.type == im.result_type():
        return source
    return im.emit(nn.CastOp(source, im.result_type()))


@handles("aten.softmax.int", "aten._softmax.default")
def _softmax(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    result = im.result_type()
    if source.type != result:
        source = im.emit(nn.CastOp(source, TensorType(result.get_element_type(), result.get_shape())), hint=f"{node.name}_in")
    return im.emit(nn.SoftmaxOp(source, args[1], result))


@handles("aten.layer_norm.default")
def _layer_norm(im: FxImporter, node, args, kwargs):
    weight = args[2] if len(args) > 2 else kwargs.get("weight")
    bias = args[3] if len(args) > 3 else kwargs.get("bias")
    eps = args[4] if len(args) > 4 else kwargs.get("eps", 1e-5)
    x = im.value(args[0])
    w = im.value(weight) if weight is not None else None
    b = im.value(bias) if bias is not None else None
    if (w is None) != (b is None):
        missing_shape = list(args[1])
        fill = im.emit(nn.FullOp(1.0 if w is None else 0.0, tensor_type(missing_shape, im.meta().dtype)), hint="ln_affine")
        w, b = (fill, b) if w is None else (w, fill)
    return im.emit(nn.LayerNormOp(x, w, b, list(args[1]), eps))


@handles("aten.embedding.default")
def _embedding(im: FxImporter, node, args, kwargs):
    return im.emit(nn.EmbeddingOp(im.value(args[0]), im.value(args[1]), im.result_type()))


@handles("aten.scaled_dot_product_attention.default")
def _sdpa(im: FxImporter, node, args, kwargs):
    names = ["query", "key", "value", "attn_mask", "dropout_p", "is_causal"]
    params = {**dict(zip(names, args)), **kwargs}
    if params.get("enable_gqa"):
        raise UnsupportedOpError(f"scaled_dot_product_attention with enable_gqa ('{node.name}') is not supported")
    mask = params.get("attn_mask")
    return im.emit(
        nn.SdpaOp(
            im.value(params["query"]),
            im.value(params["key"]),
            im.value(params["value"]),
            im.value(mask) if mask is not None else None,
            im.result_type(),
            scale=params.get("scale"),
            causal=bool(params.get("is_causal", False)),
            dropout_p=float(params.get("dropout_p", 0.0)),
        )
    )


@handles(
    "aten.view.default",
    "aten._unsafe_view.default",
    "aten.reshape.default",
    "aten.unsqueeze.default",
    "aten.squeeze.dim",
    "aten.squeeze.dims",
    "aten.squeeze.default",
    "aten.flatten.using_ints",
    "aten.unflatten.int",
)
def _reshape(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    if source.type == im.result_type():
        return source
    return im.emit(nn.ReshapeOp(source, im.result_type()))


@handles("aten.transpose.int")
def _transpose(im: FxImporter, node, args, kwargs):
    return im.emit(nn.TransposeOp(im.value(args[0]), args[1], args[2], im.result_type()))


@handles("aten.t.default")
def _t(im: FxImporter, node, args, kwargs):
    return im.emit(nn.TransposeOp(im.value(args[0]), 0, 1, im.result_type()))


@handles("aten.permute.default")
def _permute(im: FxImporter, node, args, kwargs):
    return im.emit(nn.PermuteOp(im.value(args[0]), list(args[1]), im.result_type()))


@handles("aten.expand.default", "aten.expand_as.default")
def _expand(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    if source.type == im.result_type():
        return source
    return im.emit(nn.BroadcastToOp(source, im.result_type()))


def _slice_bounds(size: int, start: int | None, end: int | None) -> tuple[int, int]:
    start = 0 if start is None else start
    end = size if end is None else end
    start = start + size if start < 0 else start
    end = end + size if end < 0 else end
    start = min(max(start, 0), size)
    end = min(max(end, start), size)
    return start, end


@handles("aten.slice.Tensor")
def _slice(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    shape = nn.tensor_shape(source)
    dim = (args[1] if len(args) > 1 else kwargs.get("dim", 0)) % len(shape)
    start = args[2] if len(args) > 2 else kwargs.get("start")
    end = args[3] if len(args) > 3 else kwargs.get("end")
    step = args[4] if len(args) > 4 else kwargs.get("step", 1)
    start, end = _slice_bounds(shape[dim], start, end)
    if (start, end, step) == (0, shape[dim], 1):
        return source
    return im.emit(nn.SliceOp(source, dim, start, end, step, im.result_type()))


@handles("aten.select.int")
def _select(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    dim = args[1] % len(nn.tensor_shape(source))
    index = args[2] % nn.tensor_shape(source)[dim]
    return im.emit(nn.SelectOp(source, dim, index, im.result_type()))


@handles("aten.cat.default")
def _cat(im: FxImporter, node, args, kwargs):
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    rank = len(im.result_type().get_shape())
    # torch.cat skips 1-d empty tensors whatever their rank (an empty KV cache is one)
    inputs = [im.value(a) for a in args[0] if not (rank != 1 and tuple(a.meta["val"].shape) == (0,))]
    if len(inputs) == 1:
        return inputs[0]
    return im.emit(nn.ConcatOp(inputs, dim % rank, im.result_type()))


@handles("aten.split.Tensor", "aten.split_with_sizes.default", "aten.chunk.default")
def _split(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    shape = nn.tensor_shape(source)
    dim = (args[2] if len(args) > 2 else kwargs.get("dim", 0)) % len(shape)
    pieces: list[SSAValue] = []
    start = 0
    for index, value in enumerate(im.meta()):
        length = value.shape[dim]
        pieces.append(
            im.emit(
                nn.SliceOp(source, dim, start, start + length, 1, tensor_type(_static_shape(value, node), value.dtype)),
                hint=f"{node.name}_{index}",
            )
        )
        start += length
    return pieces


@handles("aten.gather.default")
def _gather(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    dim = args[1] % len(nn.tensor_shape(source))
    return im.emit(nn.GatherOp(source, im.value(args[2]), dim, im.result_type()))


@handles("aten.index.Tensor")
def _index(im: FxImporter, node, args, kwargs):
    dims = [d for d, index in enumerate(args[1]) if index is not None]
    indices = [im.value(args[1][d]) for d in dims]
    if any(nn.is_bool(nn.element_type(i)) for i in indices):
        raise UnsupportedOpError(f"boolean-mask indexing ('{node.name}') is not supported")
    return im.emit(nn.IndexOp(im.value(args[0]), indices, dims, im.result_type()))


def _reduction_dims(args, kwargs, rank: int) -> tuple[list[int], bool]:
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if dims is None:
        dims = list(range(rank))
    if isinstance(dims, int):
        dims = [dims]
    return [d % rank for d in dims], bool(keepdim)


@handles("aten.sum.dim_IntList", "aten.sum.default", "aten.mean.dim", "aten.mean.default")
def _reduce(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    result = im.result_type()
    if kwargs.get("dtype") is not None and nn.element_type(source) != result.get_element_type():
        source = im.emit(
            nn.CastOp(source, TensorType(result.get_element_type(), nn.tensor_shape(source))), hint=f"{node.name}_in"
        )
    dims, keepdim = _reduction_dims(args, kwargs, len(nn.tensor_shape(source)))
    op_type = nn.ReduceSumOp if "sum" in str(node.target) else nn.ReduceMeanOp
    return im.emit(op_type(source, dims, keepdim, result))


@handles("aten.linalg_vector_norm.default")
def _vector_norm(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    order = args[1] if len(args) > 1 else kwargs.get("ord", 2)
    rest = (args[0],) + tuple(args[2:])
    dims, keepdim = _reduction_dims(rest, kwargs, len(nn.tensor_shape(source)))
    return im.emit(nn.VectorNormOp(source, float(order), dims, keepdim, im.result_type()))


@handles("aten.cumsum.default")
def _cumsum(im: FxImporter, node, args, kwargs):
    source = im.value(args[0])
    result = im.result_type()
    if nn.element_type(source) != result.get_element_type():
        source = im.emit(nn.CastOp(source, result), hint=f"{node.name}_in")
    return im.emit(nn.CumsumOp(source, args[1] % len(nn.tensor_shape(source)), result))


@handles("aten.diff.default")
def _diff(im: FxImporter, node, args, kwargs):
    names = ["input", "n", "dim", "prepend", "append"]
    params = {"n": 1, "dim": -1, "prepend": None, "append": None, **dict(zip(names, args)), **kwargs}
    if params["n"] != 1:
        raise UnsupportedOpError(f"diff with n={params['n']} ('{node.name}') is not supported")
    source = im.value(params["input"])
    shape = list(nn.tensor_shape(source))
    dim = params["dim"] % len(shape)
    parts = [im.value(params["prepend"])] if params["prepend"] is not None else []
    parts.append(source)
    if params["append"] is not None:
        parts.append(im.value(params["append"]))
    if len(parts) > 1:
        shape[dim] = sum(nn.tensor_shape(p)[dim] for p in parts)
        source = im.emit(nn.ConcatOp(parts, dim, TensorType(nn.element_type(source), shape)), hint=f"{node.name}_cat")
    length = shape[dim]
    piece_shape = list(shape)
    piece_shape[dim] = length - 1
    piece_type = TensorType(nn.element_type(source), piece_shape)
    upper = im.emit(nn.SliceOp(source, dim, 1, length, 1, piece_type), hint=f"{node.name}_hi")
    lower = im.emit(nn.SliceOp(source, dim, 0, length - 1, 1, piece_type), hint=f"{node.name}_lo")
    return im.emit(nn.SubOp(upper, lower, im.result_type()))


@handles("aten.where.self", "aten.where.ScalarOther", "aten.where.ScalarSelf", "aten.where.Scalar")
def _where(im: FxImporter, node, args, kwargs):
    dtype = im.meta().dtype
    return im.emit(
        nn.WhereOp(im.value(args[0]), im.operand(args[1], dtype), im.operand(args[2], dtype), im.result_type())
    )


@handles("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")
def _masked_fill(im: FxImporter, node, args, kwargs):
    dtype = im.meta().dtype
    fill = im.operand(args[2], dtype)
    return im.emit(nn.WhereOp(im.value(args[1]), fill, im.value(args[0]), im.result_type()))


@handles("aten.arange.default", "aten.arange.start", "aten.arange.start_step")
def _arange(im: FxImporter, node, args, kwargs):
    values = list(args) + [None] * 3
    if str(node.target).endswith("default"):
        start, end, step = 0, values[0], 1
    else:
        start, end, step = values[0], values[1], values[2] if values[2] is not None else kwargs.get("step", 1)
    return im.emit(nn.ArangeOp(start, end, step, im.result_type()))


@handles(
    "aten.zeros.default",
    "aten.ones.default",
    "aten.full.default",
    "aten.new_ones.default",
    "aten.new_zeros.default",
    "aten.new_full.default",
    "aten.zeros_like.default",
    "aten.ones_like.default",
    "aten.full_like.default",
    "aten.scalar_tensor.default",
)
def _full(im: FxImporter, node, args, kwargs):
    family = str(node.target).split(".")[1]
    if family in ("zeros", "new_zeros", "zeros_like"):
        value = 0.0
    elif family in ("ones", "new_ones", "ones_like"):
        value = 1.0
    elif family == "scalar_tensor":
        value = args[0]
    elif family == "new_full":
        value = args[2]
    else:
        value = args[1]
    return im.emit(nn.FullOp(float(value), im.result_type()))


# ---------------------------------------------------------------------------------------------------------
# Model-zoo handlers: ops mainstream architectures emit beyond the core set (relative-position buckets in
# T5/MPNet/DeBERTa-v2, ALiBi in BLOOM, interleaved rotary in GPT-J, convolutional patch embeddings in ViT,
# DeiT, CLIP and Swin, Whisper's audio front end, Swin's window padding, q/k/v unpacking).
# ---------------------------------------------------------------------------------------------------------

_ZOO_UNARY = {
    "abs": nn.AbsOp,
    "sign": nn.SignOp,
    "log": nn.LogOp,
    "ceil": nn.CeilOp,
    "floor": nn.FloorOp,
    "erf": nn.ErfOp,
}


def _zoo_unary(im: FxImporter, node, args, kwargs):
    family = str(node.target).split(".")[1]
    source = im.value(args[0])
    result = im.result_type()
    if family in ("ceil", "floor") and not nn.is_float(nn.element_type(source)):
        return source  # rounding an integer tensor is the identity
    if source.type != result:  # log/erf of an integer tensor compute in the promoted float type
        source = im.emit(nn.CastOp(source, result), hint=f"{node.name}_in")
    return im.emit(_ZOO_UNARY[family](source, result))


for _family in _ZOO_UNARY:
    handles(f"aten.{_family}.default")(_zoo_unary)


@handles("aten.min.other", "aten.max.other", "aten.fmin.default", "aten.fmax.default")
def _min_max_other(im: FxImporter, node, args, kwargs):
    family = str(node.target).split(".")[1]
    op_type = nn.MinimumOp if family in ("min", "fmin") else nn.MaximumOp
    return im.emit(op_type(im.value(args[0]), im.value(args[1]), im.result_type()))


def _per_spatial(value, rank: int, what: str, node) -> list[int]:
    values = [value] * rank if isinstance(value, int) else list(value)
    if len(values) == 1 and rank > 1:
        values = values * rank
    if len(values) != rank or not all(isinstance(v, int) for v in values):
        raise UnsupportedOpError(f"convolution {what}={value!r} ('{node.name}') is not supported")
    return values


@handles(
    "aten.conv1d.default", "aten.conv2d.default", "aten.conv3d.default",
    "aten.conv1d.padding", "aten.conv2d.padding", "aten.conv3d.padding",
    "aten.convolution.default",
)
def _conv(im: FxImporter, node, args, kwargs):
    if str(node.target) == "aten.convolution.default":
        names = ["input", "weight", "bias", "stride", "padding", "dilation", "transposed", "output_padding", "groups"]
    else:
        names = ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]
    params = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1, **dict(zip(names, args)), **kwargs}
    where = f"'{node.name}' at '{module_path(node) or '<top>'}'"
    if params.get("transposed"):
        raise UnsupportedOpError(f"transposed convolution ({where}) is not supported")
    source, weight = im.value(params["input"]), im.value(params["weight"])
    rank = len(nn.tensor_shape(weight)) - 2
    if len(nn.tensor_shape(source)) != rank + 2:
        raise UnsupportedOpError(f"unbatched conv{rank}d ({where}) is not supported: give the input a batch dimension")
    stride = _per_spatial(params["stride"], rank, "stride", node)
    dilation = _per_spatial(params["dilation"], rank, "dilation", node)
    padding = params["padding"]
    if padding == "valid":
        padding = [0] * rank
    elif padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, nn.tensor_shape(weight)[2:])]
        if any(t % 2 for t in total):
            raise UnsupportedOpError(f"padding='same' with an even kernel ({where}) is not supported")
        padding = [t // 2 for t in total]
    padding = _per_spatial(padding, rank, "padding", node)
    bias = im.value(params["bias"]) if params["bias"] is not None else None
    return im.emit(nn.ConvOp(source, weight, bias, stride, padding, dilation, int(params["groups"]), im.result_type()))


@handles("aten.pad.default", "aten.constant_pad_nd.default")
def _pad(im: FxImporter, node, args, kwargs):
    if str(node.target) == "aten.pad.default":
        params = {"mode": "constant", "value": None, **dict(zip(["input", "pad", "mode", "value"], args)), **kwargs}
        if params["mode"] != "constant":
            raise UnsupportedOpError(f"pad mode '{params['mode']}' ('{node.name}') is not supported, only 'constant'")
    else:
        params = {"value": 0, **dict(zip(["input", "pad", "value"], args)), **kwargs}
    value = 0.0 if params["value"] is None else float(params["value"])
    return im.emit(nn.PadOp(im.value(params["input"]), list(params["pad"]), value, im.result_type()))


@handles("aten.repeat.default")
def _repeat(im: FxImporter, node, args, kwargs):
    return im.emit(nn.RepeatOp(im.value(args[0]), list(args[1]), im.result_type()))


@handles("aten.repeat_interleave.self_int")
def _repeat_interleave(im: FxImporter, node, args, kwargs):
    params = {"dim": None, **dict(zip(["input", "repeats", "dim", "output_size"], args)), **kwargs}
    source = im.value(params["input"])
    dim = params["dim"]
    if dim is None:  # repeats the flattened tensor
        shape = nn.tensor_shape(source)
        count = 1
        for size in shape:
            count *= size
        source = im.emit(nn.ReshapeOp(source, TensorType(nn.element_type(source), [count])), hint=f"{node.name}_flat")
        dim = 0
    dim %= len(nn.tensor_shape(source))
    return im.emit(nn.RepeatInterleaveOp(source, int(params["repeats"]), dim, im.result_type()))


@handles("aten.stack.default")
def _stack(im: FxImporter, node, args, kwargs):
    """``stack`` = unsqueeze each input at ``dim`` (a reshape), then concatenate."""
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    rank = len(im.result_type().get_shape())
    dim %= rank
    pieces = []
    for index, arg in enumerate(args[0]):
        piece = im.value(arg)
        shape = list(nn.tensor_shape(piece))
        shape.insert(dim, 1)
        pieces.append(im.emit(nn.ReshapeOp(piece, TensorType(nn.element_type(piece), shape)), hint=f"{node.name}_{index}"))
    return im.emit(nn.ConcatOp(pieces, dim, im.result_type()))


@handles("aten.unbind.int")
def _unbind(im: FxImporter, node, args, kwargs):
    """``unbind`` (``q, k, v = qkv.unbind(0)``, iterating over a tensor) = one ``nn.select`` per index."""
    source = im.value(args[0])
    shape = nn.tensor_shape(source)
    dim = (args[1] if len(args) > 1 else kwargs.get("dim", 0)) % len(shape)
    return [
        im.emit(
            nn.SelectOp(source, dim, index, tensor_type(_static_shape(value, node), value.dtype)),
            hint=f"{node.name}_{index}",
        )
        for index, value in enumerate(im.meta())
    ]


def supported_ops() -> list[str]:
    """The ATen overloads the importer translates, sorted."""
    return sorted(HANDLERS)


__all__: Sequence[str] = ["ImportedProgram", "UnsupportedOpError", "import_exported_program", "supported_ops"]


@handles("aten.einsum.default")
def _einsum(im: FxImporter, node, args, kwargs):
    """Two-operand ``einsum`` as permute → reshape → ``nn.matmul`` → reshape → permute.

    Letters in both operands and the output are batch dims, in both operands only are contracted, in one
    operand and the output are its free dims. Attention's ``bhid,bhjd->bhij`` becomes ``matmul(q, kᵀ)`` (a
    transpose of the last two dims, which attn-raise recognises) and ``bhij,bhjd->bhid`` a plain matmul.
    """
    equation, operands = args[0], args[1]
    where = f"einsum '{equation}' ('{node.name}')"
    if len(operands) != 2 or "->" not in equation or "." in equation:
        raise UnsupportedOpError(f"{where}: only two operands with an explicit output and no '...' are supported")
    inputs, output = equation.replace(" ", "").split("->")
    lhs_letters, rhs_letters = inputs.split(",")
    if any(len(set(s)) != len(s) for s in (lhs_letters, rhs_letters, output)):
        raise UnsupportedOpError(f"{where}: repeated letters (diagonals) are not supported")
    if not set(output) <= set(lhs_letters) | set(rhs_letters) or not (set(lhs_letters) ^ set(rhs_letters)) <= set(output):
        raise UnsupportedOpError(f"{where}: a letter summed within one operand is not supported")
    lhs, rhs = im.value(operands[0]), im.value(operands[1])
    sizes = dict(zip(lhs_letters, nn.tensor_shape(lhs))) | dict(zip(rhs_letters, nn.tensor_shape(rhs)))
    batch = [c for c in output if c in lhs_letters and c in rhs_letters]
    contracted = [c for c in lhs_letters if c in rhs_letters and c not in output]
    lhs_free = [c for c in lhs_letters if c not in rhs_letters]
    rhs_free = [c for c in rhs_letters if c not in lhs_letters]
    element = nn.element_type(lhs)

    def arrange(value: SSAValue, letters: str, order: list[str], groups: list[list[str]], hint: str) -> SSAValue:
        if list(letters) != order:
            dims = [letters.index(c) for c in order]
            shape = [sizes[c] for c in order]
            swap_last = dims == [*range(len(dims) - 2), len(dims) - 1, len(dims) - 2]
            op = (nn.TransposeOp(value, len(dims) - 2, len(dims) - 1) if swap_last
                  else nn.PermuteOp(value, dims, TensorType(element, shape)))
            value = im.emit(op, hint=f"{node.name}_{hint}")
        merged = [math.prod(sizes[c] for c in group) for group in groups]
        if merged != list(nn.tensor_shape(value)):
            value = im.emit(nn.ReshapeOp(value, TensorType(element, merged)), hint=f"{node.name}_{hint}_flat")
        return value

    lhs = arrange(lhs, lhs_letters, [*batch, *lhs_free, *contracted], [[c] for c in batch] + [lhs_free, contracted], "lhs")
    rhs_order = [c for c in rhs_letters if c not in batch]
    if rhs_free and contracted and rhs_order.index(contracted[0]) > rhs_order.index(rhs_free[0]):
        # k laid out (..., keys, head): arrange it so, then transpose the last two, as q·kᵀ is written
        key = arrange(rhs, rhs_letters, [*batch, *rhs_free, *contracted], [[c] for c in batch] + [rhs_free, contracted], "key")
        key_shape = nn.tensor_shape(key)
        rank = len(key_shape)
        rhs = im.emit(nn.TransposeOp(key, rank - 2, rank - 1), hint=f"{node.name}_rhs")
    else:
        rhs = arrange(rhs, rhs_letters, [*batch, *contracted, *rhs_free], [[c] for c in batch] + [contracted, rhs_free], "rhs")
    product_shape = [sizes[c] for c in batch] + [math.prod(sizes[c] for c in lhs_free), math.prod(sizes[c] for c in rhs_free)]
    product = im.emit(nn.MatmulOp(lhs, rhs, TensorType(element, product_shape)), hint=f"{node.name}_mm")
    natural = [*batch, *lhs_free, *rhs_free]
    if [sizes[c] for c in natural] != product_shape:
        product = im.emit(nn.ReshapeOp(product, TensorType(element, [sizes[c] for c in natural])), hint=f"{node.name}_split")
    if natural != list(output):
        product = im.emit(nn.PermuteOp(product, [natural.index(c) for c in output], im.result_type()))
    return product
