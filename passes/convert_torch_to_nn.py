"""``convert-torch-to-nn``: torch-mlir's ONNX form (``torch.operator "onnx.<Op>"``) → the ``nn`` dialect.

The ONNX frontend imports a model through torch-mlir's ONNX importer, which writes every ONNX node as a
``torch.operator`` on ``!torch.vtensor`` values (``dialects/torch.py``). This pass rewrites each one into the
``nn`` ops the FX frontend produces for the same computation (``MatMul`` → ``nn.matmul``, ``Softmax`` →
``nn.softmax``, ``Transpose`` → ``nn.permute``, ``Gather`` on a 2-d table → ``nn.embedding``, ...), converts
the function's value tensors to builtin tensors (``si64`` → ``i64``) and keeps each op's location, which the
importer sets to the ONNX node's name.

Invariants: every value must have a static shape (the ONNX frontend fixes the input dimensions first);
shape-computing operands (``Reshape``'s shape, ``Unsqueeze``'s axes, ``Expand``'s shape) are read from the
result type, and ``Slice``'s starts/ends/axes/steps and ``ReduceMean``'s axes must be constants. An ONNX op
without a rule is a pass failure naming the op and its node, never a silent drop.

```mlir
// before
%s = "torch.operator"(%q, %kt) <{name = "onnx.MatMul"}> : (!torch.vtensor<[1,12,16,32],f32>,
       !torch.vtensor<[1,12,32,16],f32>) -> !torch.vtensor<[1,12,16,16],f32> loc("/attention/self/MatMul")
// after
%s = nn.matmul %q, %kt : (tensor<1x12x16x32xf32>, tensor<1x12x32x16xf32>) -> tensor<1x12x16x16xf32>
       loc("/attention/self/MatMul")
```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    FunctionType,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    NameLoc,
    Signedness,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from dialects import nn, torch
from dialects.diagnostics import pass_failure

PASS_NAME = "convert-torch-to-nn"
INT64_MAX = (1 << 63) - 1


def builtin_element_type(element_type: Attribute) -> Attribute:
    """torch-mlir's signed integers (``si64``) as the signless ones ``nn`` uses (``i64``)."""
    if isinstance(element_type, IntegerType) and element_type.signedness.data != Signedness.SIGNLESS:
        return IntegerType(element_type.width.data)
    return element_type


def builtin_type(typ: Attribute, where: Operation | None = None) -> Attribute:
    """``!torch.vtensor<[2,3],si64>`` → ``tensor<2x3xi64>``; other types unchanged."""
    if not isinstance(typ, torch.ValueTensorType):
        return typ
    if not typ.is_static():
        raise pass_failure(PASS_NAME, f"dynamic shape {typ} in {_describe(where)}: fix the input dimensions first", where)
    return TensorType(builtin_element_type(typ.element_type), typ.get_shape())


def _node_name(op: Operation | None) -> str:
    return op.location.desc.data if op is not None and isinstance(op.location, NameLoc) else "<unnamed>"


def _describe(op: Operation | None) -> str:
    if isinstance(op, torch.OperatorOp):
        return f"'{op.op_name.data}' (node '{_node_name(op)}')"
    return "the function signature"


# ---------------------------------------------------------------------------------------------------------
# Reading ONNX attributes and constant operands.
# ---------------------------------------------------------------------------------------------------------


def attribute(op: torch.OperatorOp, name: str) -> Attribute | None:
    return op.attributes.get(f"torch.onnx.{name}")


def int_attribute(op: torch.OperatorOp, name: str, default: int | None = None) -> int | None:
    value = attribute(op, name)
    return value.value.data if isinstance(value, IntegerAttr) else default


def float_attribute(op: torch.OperatorOp, name: str, default: float) -> float:
    value = attribute(op, name)
    return float(value.value.data) if isinstance(value, FloatAttr) else default


def ints_attribute(op: torch.OperatorOp, name: str) -> list[int] | None:
    value = attribute(op, name)
    if isinstance(value, ArrayAttr):
        return [item.value.data for item in value.data if isinstance(item, IntegerAttr)]
    return None


def constant_values(value: SSAValue) -> list[int | float] | None:
    """The elements of a value defined by an ``nn.constant`` (or an ``onnx.Constant`` still to convert)."""
    owner = value.owner
    dense: Attribute | None = None
    if isinstance(owner, nn.ConstantOp):
        dense = owner.value
    elif isinstance(owner, torch.OperatorOp) and owner.op_name.data == "onnx.Constant":
        dense = attribute(owner, "value")
    if not isinstance(dense, DenseIntOrFPElementsAttr):
        return None
    values: list[int | float] = list(dense.get_values())
    count = 1
    for dim in nn.tensor_shape(dense.get_type()):
        count *= dim
    return values * count if len(values) == 1 and count != 1 else values


def is_none(value: SSAValue) -> bool:
    return isinstance(value.owner, torch.ConstantNoneOp)


# ---------------------------------------------------------------------------------------------------------
# Rules: one per ONNX op, each returning the nn ops to insert (the last one's results replace the node's).
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Context_:
    op: torch.OperatorOp
    operands: list[SSAValue]
    result_type: Attribute

    def fail(self, message: str) -> Exception:
        return pass_failure(PASS_NAME, f"{_describe(self.op)}: {message}", self.op)

    def constant_operand(self, index: int, what: str) -> list[int | float]:
        values = constant_values(self.operands[index])
        if values is None:
            raise self.fail(f"its {what} must be a constant")
        return values


Rule = Callable[[Context_], list[Operation]]
RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    def register(function: Rule) -> Rule:
        for name in names:
            RULES[f"onnx.{name}"] = function
        return function

    return register


def _binary(op_class: type[nn.BinaryOp]) -> Rule:
    return lambda c: [op_class(c.operands[0], c.operands[1], c.result_type)]


for _name, _class in {
    "Add": nn.AddOp, "Sub": nn.SubOp, "Mul": nn.MulOp, "Div": nn.DivOp, "Pow": nn.PowOp, "Max": nn.MaximumOp,
    "Min": nn.MinimumOp, "And": nn.LogicalAndOp, "Equal": nn.EqOp, "Greater": nn.GtOp, "Less": nn.LtOp,
    "GreaterOrEqual": nn.GeOp, "LessOrEqual": nn.LeOp,
}.items():
    RULES[f"onnx.{_name}"] = _binary(_class)


def _unary(op_class: type[nn.UnaryOp]) -> Rule:
    return lambda c: [op_class(c.operands[0], c.result_type)]


for _name, _unary_class in {
    "Sqrt": nn.SqrtOp, "Tanh": nn.TanhOp, "Erf": nn.ErfOp, "Exp": nn.ExpOp, "Neg": nn.NegOp, "Relu": nn.ReluOp,
    "Sigmoid": nn.SigmoidOp, "Not": nn.LogicalNotOp, "Abs": nn.AbsOp, "Log": nn.LogOp, "Cos": nn.CosOp, "Sin": nn.SinOp,
}.items():
    RULES[f"onnx.{_name}"] = _unary(_unary_class)


@rule("Identity", "Dropout")
def _identity(c: Context_) -> list[Operation]:
    return []  # the node's first result is its first operand (Dropout is the identity at inference)


@rule("Constant")
def _constant(c: Context_) -> list[Operation]:
    value = attribute(c.op, "value")
    if not isinstance(value, DenseIntOrFPElementsAttr):
        scalar = attribute(c.op, "value_float") or attribute(c.op, "value_int")
        if not isinstance(scalar, (FloatAttr, IntegerAttr)) or not isinstance(c.result_type, TensorType):
            raise c.fail("only tensor, value_float and value_int constants are supported")
        return [nn.ConstantOp(DenseIntOrFPElementsAttr.from_list(c.result_type, [scalar.value.data]))]
    assert isinstance(c.result_type, TensorType)
    values = value.get_values()
    return [nn.ConstantOp(DenseIntOrFPElementsAttr.from_list(c.result_type, list(values)))]


@rule("MatMul")
def _matmul(c: Context_) -> list[Operation]:
    if any(len(nn.tensor_shape(v)) < 2 for v in c.operands):
        raise c.fail("a 1-d operand is not supported")
    return [nn.MatmulOp(c.operands[0], c.operands[1], c.result_type)]


@rule("Gemm")
def _gemm(c: Context_) -> list[Operation]:
    scales = (float_attribute(c.op, "alpha", 1.0), float_attribute(c.op, "beta", 1.0))
    if int_attribute(c.op, "transA", 0) or scales != (1.0, 1.0):
        raise c.fail("only transA = 0, alpha = beta = 1 is supported")
    bias = c.operands[2] if len(c.operands) > 2 and not is_none(c.operands[2]) else None
    if int_attribute(c.op, "transB", 0):
        return [nn.LinearOp(c.operands[0], c.operands[1], bias, c.result_type)]
    product = nn.MatmulOp(c.operands[0], c.operands[1], c.result_type)
    return [product] if bias is None else [product, nn.AddOp(product.result, bias, c.result_type)]


@rule("Softmax")
def _softmax(c: Context_) -> list[Operation]:
    return [nn.SoftmaxOp(c.operands[0], int_attribute(c.op, "axis", -1) or 0, c.result_type)]


@rule("Reshape", "Unsqueeze", "Squeeze", "Flatten")
def _reshape(c: Context_) -> list[Operation]:
    return [nn.ReshapeOp(c.operands[0], c.result_type)]


@rule("Expand")
def _expand(c: Context_) -> list[Operation]:
    return [nn.BroadcastToOp(c.operands[0], c.result_type)]


@rule("Transpose")
def _transpose(c: Context_) -> list[Operation]:
    rank = len(nn.tensor_shape(c.operands[0]))
    perm = ints_attribute(c.op, "perm") or list(reversed(range(rank)))
    swap = [*range(rank - 2), rank - 1, rank - 2]
    if rank < 2 or perm[-1] > perm[-2] or perm == swap:
        return [nn.PermuteOp(c.operands[0], perm, c.result_type)]
    # A permutation that also swaps the last two dimensions (ONNX exporters fold kᵀ into the heads split)
    # becomes permute-then-transpose, the form q·kᵀ has in the FX frontend and attn-raise recognises.
    assert isinstance(c.result_type, TensorType)
    layout = [*perm[:-2], perm[-1], perm[-2]]
    shape = nn.tensor_shape(c.operands[0])
    heads = nn.PermuteOp(c.operands[0], layout, TensorType(c.result_type.element_type, [shape[d] for d in layout]))
    return [heads, nn.TransposeOp(heads.result, rank - 2, rank - 1, c.result_type)]


@rule("Cast")
def _cast(c: Context_) -> list[Operation]:
    assert isinstance(c.result_type, TensorType)
    if c.operands[0].type == c.result_type:
        return []
    return [nn.CastOp(c.operands[0], c.result_type)]


@rule("Where")
def _where(c: Context_) -> list[Operation]:
    return [nn.WhereOp(c.operands[0], c.operands[1], c.operands[2], c.result_type)]


@rule("Concat")
def _concat(c: Context_) -> list[Operation]:
    return [nn.ConcatOp(c.operands, int_attribute(c.op, "axis", 0) or 0, c.result_type)]


@rule("Gather")
def _gather(c: Context_) -> list[Operation]:
    data, indices = c.operands
    axis = int_attribute(c.op, "axis", 0) or 0
    rank = len(nn.tensor_shape(data))
    axis %= rank
    index_values = constant_values(indices)
    if index_values is not None and not nn.tensor_shape(indices):
        index = int(index_values[0])
        return [nn.SelectOp(data, axis, index % nn.tensor_shape(data)[axis], c.result_type)]
    if axis == 0 and rank == 2:
        return [nn.EmbeddingOp(data, indices, c.result_type)]
    return [nn.IndexOp(data, [indices], [axis], c.result_type)]


@rule("GatherElements")
def _gather_elements(c: Context_) -> list[Operation]:
    rank = len(nn.tensor_shape(c.operands[0]))
    return [nn.GatherOp(c.operands[0], c.operands[1], (int_attribute(c.op, "axis", 0) or 0) % rank, c.result_type)]


@rule("GatherND")
def _gather_nd(c: Context_) -> list[Operation]:
    """``data[i0, i1, ...]`` with the index tuples a constant holds: one index constant per leading dimension."""
    if int_attribute(c.op, "batch_dims", 0):
        raise c.fail("only batch_dims = 0 is supported")
    values = c.constant_operand(1, "indices")
    shape = nn.tensor_shape(c.operands[1])
    depth, leading = shape[-1], list(shape[:-1])
    index_type = TensorType(IntegerType(64), leading)
    ops: list[Operation] = [
        nn.ConstantOp(DenseIntOrFPElementsAttr.from_list(index_type, [int(v) for v in values[d::depth]]))
        for d in range(depth)
    ]
    ops.append(nn.IndexOp(c.operands[0], [op.results[0] for op in ops], list(range(depth)), c.result_type))
    return ops


@rule("Slice")
def _slice(c: Context_) -> list[Operation]:
    starts = c.constant_operand(1, "starts")
    ends = c.constant_operand(2, "ends")
    shape = list(nn.tensor_shape(c.operands[0]))
    axes = c.constant_operand(3, "axes") if len(c.operands) > 3 and not is_none(c.operands[3]) else range(len(starts))
    steps = c.constant_operand(4, "steps") if len(c.operands) > 4 and not is_none(c.operands[4]) else [1] * len(starts)
    ops: list[Operation] = []
    value = c.operands[0]
    assert isinstance(c.result_type, TensorType)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis, start, end, step = int(axis) % len(shape), int(start), int(end), int(step)
        if step <= 0:
            raise c.fail("only positive steps are supported")
        size = shape[axis]
        start = max(0, min(size, start + size if start < 0 else start))
        end = max(0, min(size, end + size if end < 0 else end))
        shape[axis] = max(0, (end - start + step - 1) // step)
        op = nn.SliceOp(value, axis, start, end, step, TensorType(c.result_type.element_type, shape))
        ops.append(op)
        value = op.result
    return ops


def _reduction(op_class: type[nn.ReductionOp]) -> Rule:
    def convert(c: Context_) -> list[Operation]:
        axes = ints_attribute(c.op, "axes")
        if axes is None and len(c.operands) > 1 and not is_none(c.operands[1]):
            axes = [int(a) for a in c.constant_operand(1, "axes")]
        if axes is None:
            axes = list(range(len(nn.tensor_shape(c.operands[0]))))
        return [op_class(c.operands[0], axes, bool(int_attribute(c.op, "keepdims", 1)), c.result_type)]

    return convert


RULES["onnx.ReduceMean"] = _reduction(nn.ReduceMeanOp)


@rule("ReduceL2")
def _reduce_l2(c: Context_) -> list[Operation]:
    axes = ints_attribute(c.op, "axes")
    if axes is None and len(c.operands) > 1 and not is_none(c.operands[1]):
        axes = [int(a) for a in c.constant_operand(1, "axes")]
    if axes is None:
        axes = list(range(len(nn.tensor_shape(c.operands[0]))))
    return [nn.VectorNormOp(c.operands[0], 2.0, axes, bool(int_attribute(c.op, "keepdims", 1)), c.result_type)]


@rule("Clip")
def _clip(c: Context_) -> list[Operation]:
    bounds: list[float | None] = []
    for index, what in ((1, "min"), (2, "max")):
        if len(c.operands) > index and not is_none(c.operands[index]):
            bounds.append(float(c.constant_operand(index, what)[0]))
        else:
            bounds.append(None)
    if bounds == [None, None]:
        return []
    return [nn.ClampOp(c.operands[0], bounds[0], bounds[1])]
RULES["onnx.ReduceSum"] = _reduction(nn.ReduceSumOp)


@rule("LayerNormalization")
def _layer_norm(c: Context_) -> list[Operation]:
    shape = nn.tensor_shape(c.operands[0])
    axis = (int_attribute(c.op, "axis", -1) or 0) % len(shape)
    scale = c.operands[1]
    bias = c.operands[2] if len(c.operands) > 2 and not is_none(c.operands[2]) else None
    ops: list[Operation] = []
    if bias is None:  # nn.layer_norm takes both or neither: an absent bias is a zero one
        zero = nn.FullOp(0.0, scale.type)  # type: ignore[arg-type]
        ops.append(zero)
        bias = zero.result
    ops.append(nn.LayerNormOp(c.operands[0], scale, bias, shape[axis:], float_attribute(c.op, "epsilon", 1e-5)))
    return ops


@rule("Gelu")
def _gelu(c: Context_) -> list[Operation]:
    approximate = attribute(c.op, "approximate")
    return [nn.GeluOp(c.operands[0], approximate.data if isinstance(approximate, StringAttr) else "none")]


@rule("Shape")
def _shape(c: Context_) -> list[Operation]:
    assert isinstance(c.result_type, TensorType)
    shape = list(nn.tensor_shape(c.operands[0]))
    start, end = int_attribute(c.op, "start", 0) or 0, int_attribute(c.op, "end")
    return [nn.ConstantOp(DenseIntOrFPElementsAttr.from_list(c.result_type, shape[start:end]))]


@rule("ConstantOfShape")
def _constant_of_shape(c: Context_) -> list[Operation]:
    assert isinstance(c.result_type, TensorType)
    value = attribute(c.op, "value")
    fill = float(value.get_values()[0]) if isinstance(value, DenseIntOrFPElementsAttr) else 0.0
    return [nn.FullOp(fill, c.result_type)]


# ---------------------------------------------------------------------------------------------------------
# The pass.
# ---------------------------------------------------------------------------------------------------------


def convert_operator(op: torch.OperatorOp, rewriter: Rewriter) -> None:
    name = op.op_name.data
    convert = RULES.get(name)
    if convert is None:
        supported = ", ".join(sorted(n.removeprefix("onnx.") for n in RULES))
        raise pass_failure(
            PASS_NAME, f"unsupported ONNX op '{name.removeprefix('onnx.')}' (node '{_node_name(op)}'); supported: {supported}", op
        )
    if len(op.results) != 1 and name not in ("onnx.Dropout",):
        raise pass_failure(PASS_NAME, f"{_describe(op)}: only single-result nodes are supported", op)
    result_type = builtin_type(op.results[0].type, op)
    created = convert(Context_(op, list(op.operands), result_type))
    for new in created:
        new.location = op.location
        rewriter.insert_op(new, InsertPoint.before(op))
    replacement = created[-1].results[0] if created else op.operands[0]
    if created and replacement.type != result_type:
        raise pass_failure(PASS_NAME, f"{_describe(op)}: converted to {replacement.type}, expected {result_type}", op)
    if isinstance(replacement.type, torch.ValueTensorType) and replacement.type != op.results[0].type:
        raise pass_failure(PASS_NAME, f"{_describe(op)}: operand and result types differ", op)
    hint = op.results[0].name_hint
    op.results[0].replace_all_uses_with(replacement)
    if created and hint:
        replacement.name_hint = hint
    for extra in op.results[1:]:
        if extra.uses:
            raise pass_failure(PASS_NAME, f"{_describe(op)}: its second result is used", op)
    rewriter.erase_op(op)


@dataclass(frozen=True)
class ConvertTorchToNnPass(ModulePass):
    """Rewrites torch-mlir's ONNX ops and value tensors into the ``nn`` dialect (see the module docstring)."""

    name = "convert-torch-to-nn"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        rewriter = Rewriter()
        for function in [f for f in op.walk() if isinstance(f, func.FuncOp)]:
            for argument in list(function.body.block.args):
                if isinstance(argument.type, torch.ValueTensorType):
                    Rewriter.replace_value_with_new_type(argument, builtin_type(argument.type))
            for inner in list(function.body.block.ops):
                if isinstance(inner, torch.OperatorOp):
                    convert_operator(inner, rewriter)
            for inner in list(function.body.block.ops):
                if isinstance(inner, torch.ConstantNoneOp) and not inner.result.uses:
                    rewriter.erase_op(inner)
            outputs = [builtin_type(t) for t in function.function_type.outputs.data]
            function.function_type = FunctionType.from_lists(
                [a.type for a in function.body.block.args], outputs
            )
            for inner in function.body.block.ops:
                if isinstance(inner, func.ReturnOp):
                    for value in inner.operands:
                        if isinstance(value.type, torch.ValueTensorType):
                            raise pass_failure(PASS_NAME, "a returned value was not converted", inner)

