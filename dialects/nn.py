"""The ``nn`` dialect: tensor-level neural-network ops, one per ATen operator family the frontend imports.

Values are ranked tensors with static shapes. Parameters are named symbols (``nn.param``) backed by a
safetensors file next to the IR, never inlined. Every op carries the module path it came from as its
location (``loc("encoder.layer.0.attention.self")``; print it with ``--print-debuginfo``).

```mlir
%w = nn.param @encoder.layer.0.attention.self.query.weight : tensor<384x384xf32>
%b = nn.param @encoder.layer.0.attention.self.query.bias : tensor<384xf32>
%q = nn.linear %h, %w, %b : (tensor<2x9x384xf32>, tensor<384x384xf32>, tensor<384xf32>) -> tensor<2x9x384xf32>
%s = nn.softmax %x {dim = -1 : i64} : (tensor<2x12x9x9xf32>) -> tensor<2x12x9x9xf32>
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    BoolAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    SymbolRefAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    AnyAttr,
    IRDLOperation,
    ParamAttrConstraint,
    VarConstraint,
    attr_def,
    irdl_op_definition,
    operand_def,
    opt_attr_def,
    opt_operand_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import ConstantLike, Pure
from xdsl.utils.exceptions import VerifyException

from dialects.shapes import (
    broadcast_shapes,
    element_type,
    expect_result_shape,
    expect_same_element_type,
    fmt_shape,
    int_list,
    is_bool,
    is_float,
    is_integer,
    matmul_shape,
    normalize_dim,
    tensor_shape,
)

# ---------------------------------------------------------------------------------------------------------
# Shape helpers shared by the verifiers of this dialect and of ``attn``.
# ---------------------------------------------------------------------------------------------------------

FUNCTIONAL_FORMAT = "$input attr-dict `:` functional-type(operands, results)"



# ---------------------------------------------------------------------------------------------------------
# Sources: parameters, constants, generated tensors.
# ---------------------------------------------------------------------------------------------------------


@irdl_op_definition
class ParamOp(IRDLOperation):
    """A named parameter or buffer, read from the module's weights file.

    A pass that creates a parameter gives it an ``init`` value: until the weights file holds the name, the
    parameter is that value everywhere (and saving writes it out). A pass that creates a parameter meant to
    be fitted marks it ``trainable`` with a group name; the fitting layer finds what to fit by that mark.

    ```mlir
    %w = nn.param @encoder.layer.0.attention.self.query.weight : tensor<384x384xf32>
    %m = nn.param @encoder.layer.0.attention.self.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"}
           : tensor<12xf32>
    ```
    """

    name = "nn.param"
    param_name = attr_def(SymbolRefAttr)
    init = opt_attr_def(FloatAttr)
    trainable = opt_attr_def(StringAttr)
    result = result_def(TensorType)
    assembly_format = "$param_name attr-dict `:` type($result)"
    traits = traits_def(Pure())

    def __init__(
        self, param_name: str, result_type: TensorType, init: float | None = None, trainable: str | None = None
    ):
        attributes: dict[str, Attribute] = {"param_name": SymbolRefAttr(param_name)}
        if init is not None:
            attributes["init"] = FloatAttr(float(init), 64)
        if trainable is not None:
            attributes["trainable"] = StringAttr(trainable)
        super().__init__(result_types=[result_type], attributes=attributes)

    @property
    def key(self) -> str:
        """The parameter's name in the weights file."""
        return self.param_name.root_reference.data

    def verify_(self) -> None:
        if not self.key:
            raise VerifyException("parameter name must not be empty")
        if self.trainable is not None and not self.trainable.data:
            raise VerifyException(f"parameter '{self.key}': trainable needs a non-empty group name")


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A small literal tensor: scalars of the traced program, fill values, short index lists.

    ```mlir
    %c = nn.constant dense<0.125> : tensor<f32>
    ```
    """

    name = "nn.constant"
    _T: ClassVar = VarConstraint("T", AnyAttr())
    value = attr_def(ParamAttrConstraint(DenseIntOrFPElementsAttr, (_T, AnyAttr())))
    result = result_def(_T)
    assembly_format = "attr-dict $value"
    traits = traits_def(Pure(), ConstantLike())

    def __init__(self, value: DenseIntOrFPElementsAttr):
        super().__init__(result_types=[value.type], attributes={"value": value})

    def splat_value(self) -> float | int | None:
        """The single value of a splat constant, else None."""
        values = self.value.get_values()
        if values and all(v == values[0] for v in values):
            return values[0]
        return None


@irdl_op_definition
class FullOp(IRDLOperation):
    """A tensor filled with one value (``zeros``, ``ones``, ``full``, ``new_ones``).

    ```mlir
    %z = nn.full {value = 0.0 : f64} : tensor<2x3xf32>
    ```
    """

    name = "nn.full"
    value = attr_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = "attr-dict `:` type($result)"
    traits = traits_def(Pure())

    def __init__(self, value: float, result_type: TensorType):
        super().__init__(result_types=[result_type], attributes={"value": FloatAttr(float(value), 64)})


@irdl_op_definition
class ArangeOp(IRDLOperation):
    """``start, start+step, ...`` up to (excluding) ``end``.

    ```mlir
    %r = nn.arange {start = 0.0 : f64, end = 9.0 : f64, step = 1.0 : f64} : tensor<9xi64>
    ```
    """

    name = "nn.arange"
    start = attr_def(FloatAttr)
    end = attr_def(FloatAttr)
    step = attr_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = "attr-dict `:` type($result)"
    traits = traits_def(Pure())

    def __init__(self, start: float, end: float, step: float, result_type: TensorType):
        super().__init__(
            result_types=[result_type],
            attributes={n: FloatAttr(float(v), 64) for n, v in (("start", start), ("end", end), ("step", step))},
        )

    def verify_(self) -> None:
        start, end, step = (a.value.data for a in (self.start, self.end, self.step))
        if step == 0:
            raise VerifyException("arange step must be non-zero")
        import math

        count = max(0, math.ceil((end - start) / step))
        shape = tensor_shape(self.result)
        if shape != (count,):
            raise VerifyException(f"arange from {start} to {end} by {step} has {count} elements, result is {fmt_shape(shape)}")


# ---------------------------------------------------------------------------------------------------------
# Elementwise ops.
# ---------------------------------------------------------------------------------------------------------


class UnaryOp(IRDLOperation):
    """Base: one tensor in, one tensor of the same type out."""

    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, result_type: Attribute | None = None, attributes=None):
        super().__init__(
            operands=[input], result_types=[result_type or input.type], attributes=attributes or {}
        )

    def verify_(self) -> None:
        if self.input.type != self.result.type:
            raise VerifyException(
                f"result type {self.result.type} must equal the operand type {self.input.type}"
            )


@irdl_op_definition
class NegOp(UnaryOp):
    """``-x``. ``%y = nn.neg %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.neg"


@irdl_op_definition
class ExpOp(UnaryOp):
    """``exp(x)``. ``%y = nn.exp %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.exp"


@irdl_op_definition
class SqrtOp(UnaryOp):
    """``sqrt(x)``. ``%y = nn.sqrt %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.sqrt"


@irdl_op_definition
class RsqrtOp(UnaryOp):
    """``1/sqrt(x)``. ``%y = nn.rsqrt %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.rsqrt"


@irdl_op_definition
class TanhOp(UnaryOp):
    """``tanh(x)``. ``%y = nn.tanh %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.tanh"


@irdl_op_definition
class SigmoidOp(UnaryOp):
    """``1/(1+exp(-x))``. ``%y = nn.sigmoid %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.sigmoid"


@irdl_op_definition
class ReluOp(UnaryOp):
    """``max(x, 0)``. ``%y = nn.relu %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.relu"


@irdl_op_definition
class SiluOp(UnaryOp):
    """``x·sigmoid(x)``. ``%y = nn.silu %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.silu"


@irdl_op_definition
class CosOp(UnaryOp):
    """``cos(x)``. ``%y = nn.cos %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.cos"


@irdl_op_definition
class SinOp(UnaryOp):
    """``sin(x)``. ``%y = nn.sin %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.sin"


@irdl_op_definition
class LogicalNotOp(UnaryOp):
    """Boolean negation. ``%y = nn.logical_not %m : (tensor<4xi1>) -> tensor<4xi1>``"""

    name = "nn.logical_not"

    def verify_(self) -> None:
        super().verify_()
        if not is_bool(element_type(self.input)):
            raise VerifyException(f"logical_not expects a boolean (i1) tensor, got {element_type(self.input)}")


@irdl_op_definition
class GeluOp(UnaryOp):
    """GELU, exact (``erf``) or the ``tanh`` approximation.

    ``%y = nn.gelu %x {approximate = "none"} : (tensor<4xf32>) -> tensor<4xf32>``
    """

    name = "nn.gelu"
    approximate = attr_def(StringAttr)

    def __init__(self, input: SSAValue, approximate: str = "none"):
        super().__init__(input, attributes={"approximate": StringAttr(approximate)})

    def verify_(self) -> None:
        super().verify_()
        if self.approximate.data not in ("none", "tanh"):
            raise VerifyException(f'gelu approximate must be "none" or "tanh", got "{self.approximate.data}"')


@irdl_op_definition
class DropoutOp(UnaryOp):
    """Dropout with probability ``p``; the identity at inference (the executor runs in eval mode).

    ``%y = nn.dropout %x {p = 0.1 : f64} : (tensor<4xf32>) -> tensor<4xf32>``
    """

    name = "nn.dropout"
    p = attr_def(FloatAttr)

    def __init__(self, input: SSAValue, p: float):
        super().__init__(input, attributes={"p": FloatAttr(float(p), 64)})

    def verify_(self) -> None:
        super().verify_()
        if not 0.0 <= self.p.value.data < 1.0:
            raise VerifyException(f"dropout probability must be in [0, 1), got {self.p.value.data}")


@irdl_op_definition
class ClampOp(UnaryOp):
    """Clamps to ``[min, max]``; either bound may be absent.

    ``%y = nn.clamp %x {min = 1.0e-09 : f64} : (tensor<4xf32>) -> tensor<4xf32>``
    """

    name = "nn.clamp"
    min = opt_attr_def(FloatAttr)
    max = opt_attr_def(FloatAttr)

    def __init__(self, input: SSAValue, min: float | None = None, max: float | None = None):
        attributes = {}
        if min is not None:
            attributes["min"] = FloatAttr(float(min), 64)
        if max is not None:
            attributes["max"] = FloatAttr(float(max), 64)
        super().__init__(input, attributes=attributes)

    def verify_(self) -> None:
        super().verify_()
        if self.min is None and self.max is None:
            raise VerifyException("clamp needs at least one of min and max")
        if self.min is not None and self.max is not None and self.min.value.data > self.max.value.data:
            raise VerifyException(f"clamp min {self.min.value.data} exceeds max {self.max.value.data}")


@irdl_op_definition
class CastOp(IRDLOperation):
    """Element type conversion, shape unchanged.

    ``%y = nn.cast %m : (tensor<2x9xi64>) -> tensor<2x9xf32>``
    """

    name = "nn.cast"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, result_type: TensorType):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        if tensor_shape(self.input) != tensor_shape(self.result):
            raise VerifyException(
                f"cast changes only the element type; shape {fmt_shape(tensor_shape(self.input))} "
                f"became {fmt_shape(tensor_shape(self.result))}"
            )


class BinaryOp(IRDLOperation):
    """Base: two tensors combined elementwise with NumPy broadcasting."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())
    PRODUCES_BOOL: ClassVar[bool] = False

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self) -> None:
        lhs, rhs = tensor_shape(self.lhs), tensor_shape(self.rhs)
        shape = broadcast_shapes(lhs, rhs)
        if shape is None:
            raise VerifyException(f"operand shapes {fmt_shape(lhs)} and {fmt_shape(rhs)} do not broadcast")
        expect_result_shape(self, shape, "the broadcast of the operands")
        result = element_type(self.result)
        if self.PRODUCES_BOOL and not is_bool(result):
            raise VerifyException(f"a comparison produces i1, not {result}")
        if not self.PRODUCES_BOOL and is_bool(result) != (
            is_bool(element_type(self.lhs)) and is_bool(element_type(self.rhs))
        ):
            raise VerifyException(f"result element type {result} is inconsistent with the operands")


@irdl_op_definition
class AddOp(BinaryOp):
    """``lhs + rhs``. ``%z = nn.add %x, %y : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>``"""

    name = "nn.add"


@irdl_op_definition
class SubOp(BinaryOp):
    """``lhs - rhs``. ``%z = nn.sub %x, %y : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>``"""

    name = "nn.sub"


@irdl_op_definition
class MulOp(BinaryOp):
    """``lhs * rhs``. ``%z = nn.mul %x, %c : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>``"""

    name = "nn.mul"


@irdl_op_definition
class DivOp(BinaryOp):
    """True division. ``%z = nn.div %x, %c : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>``"""

    name = "nn.div"


@irdl_op_definition
class PowOp(BinaryOp):
    """``lhs ** rhs``. ``%z = nn.pow %x, %c : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>``"""

    name = "nn.pow"


@irdl_op_definition
class MaximumOp(BinaryOp):
    """Elementwise maximum. ``%z = nn.maximum %x, %y : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.maximum"


@irdl_op_definition
class MinimumOp(BinaryOp):
    """Elementwise minimum. ``%z = nn.minimum %x, %y : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.minimum"


@irdl_op_definition
class LogicalAndOp(BinaryOp):
    """Boolean and. ``%z = nn.logical_and %a, %b : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xi1>``"""

    name = "nn.logical_and"
    PRODUCES_BOOL: ClassVar[bool] = True


class CompareOp(BinaryOp):
    PRODUCES_BOOL: ClassVar[bool] = True


@irdl_op_definition
class EqOp(CompareOp):
    """``lhs == rhs``. ``%z = nn.eq %x, %y : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>``"""

    name = "nn.eq"


@irdl_op_definition
class NeOp(CompareOp):
    """``lhs != rhs``. ``%z = nn.ne %x, %y : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>``"""

    name = "nn.ne"


@irdl_op_definition
class GeOp(CompareOp):
    """``lhs >= rhs``. ``%z = nn.ge %x, %y : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>``"""

    name = "nn.ge"


@irdl_op_definition
class GtOp(CompareOp):
    """``lhs > rhs``. ``%z = nn.gt %x, %y : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>``"""

    name = "nn.gt"


@irdl_op_definition
class LeOp(CompareOp):
    """``lhs <= rhs``. ``%z = nn.le %x, %y : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>``"""

    name = "nn.le"


@irdl_op_definition
class LtOp(CompareOp):
    """``lhs < rhs``. ``%z = nn.lt %x, %y : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>``"""

    name = "nn.lt"


@irdl_op_definition
class WhereOp(IRDLOperation):
    """``cond ? lhs : rhs`` with broadcasting (``torch.where``, ``masked_fill``).

    ``%z = nn.where %m, %x, %y : (tensor<2x1x1x9xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x1x9xf32>``
    """

    name = "nn.where"
    condition = operand_def(TensorType)
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$condition `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, condition: SSAValue, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[condition, lhs, rhs], result_types=[result_type])

    def verify_(self) -> None:
        if not is_bool(element_type(self.condition)):
            raise VerifyException(f"where condition must be i1, got {element_type(self.condition)}")
        shape = broadcast_shapes(tensor_shape(self.condition), tensor_shape(self.lhs))
        shape = None if shape is None else broadcast_shapes(shape, tensor_shape(self.rhs))
        if shape is None:
            raise VerifyException("condition and operand shapes do not broadcast")
        expect_result_shape(self, shape, "the broadcast of the operands")


# ---------------------------------------------------------------------------------------------------------
# Linear algebra and normalisation.
# ---------------------------------------------------------------------------------------------------------



@irdl_op_definition
class MatmulOp(IRDLOperation):
    """``torch.matmul`` on rank >= 2 tensors, batch dimensions broadcast.

    ``%s = nn.matmul %q, %kt : (tensor<2x12x9x32xf32>, tensor<2x12x32x9xf32>) -> tensor<2x12x9x9xf32>``
    """

    name = "nn.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self) -> None:
        expect_result_shape(self, matmul_shape(tensor_shape(self.lhs), tensor_shape(self.rhs)))
        expect_same_element_type(self, self.lhs, self.rhs)


@irdl_op_definition
class LinearOp(IRDLOperation):
    """``y = x Wᵀ + b`` over the last dimension (``torch.nn.functional.linear``).

    ``%y = nn.linear %x, %w, %b : (tensor<2x9x384xf32>, tensor<1536x384xf32>, tensor<1536xf32>) -> tensor<2x9x1536xf32>``
    """

    name = "nn.linear"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue | None, result_type: Attribute):
        super().__init__(operands=[input, weight, [bias] if bias else []], result_types=[result_type])

    def verify_(self) -> None:
        x, w = tensor_shape(self.input), tensor_shape(self.weight)
        if len(w) != 2:
            raise VerifyException(f"linear weight must be 2-d (out x in), got {fmt_shape(w)}")
        if not x or x[-1] != w[1]:
            raise VerifyException(f"linear input feature size {x[-1] if x else 0} does not match weight {fmt_shape(w)}")
        if self.bias is not None and tensor_shape(self.bias) != (w[0],):
            raise VerifyException(f"linear bias must have shape {w[0]}, got {fmt_shape(tensor_shape(self.bias))}")
        expect_result_shape(self, (*x[:-1], w[0]))
        expect_same_element_type(self, self.input, self.weight)


@irdl_op_definition
class EmbeddingOp(IRDLOperation):
    """Row lookup ``weight[indices]``.

    ``%e = nn.embedding %w, %ids : (tensor<30522x384xf32>, tensor<2x9xi64>) -> tensor<2x9x384xf32>``
    """

    name = "nn.embedding"
    weight = operand_def(TensorType)
    indices = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$weight `,` $indices attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, weight: SSAValue, indices: SSAValue, result_type: Attribute):
        super().__init__(operands=[weight, indices], result_types=[result_type])

    def verify_(self) -> None:
        if not is_integer(element_type(self.indices)):
            raise VerifyException(f"embedding indices must be integers, got {element_type(self.indices)}")
        w = tensor_shape(self.weight)
        if len(w) != 2:
            raise VerifyException(f"embedding table must be 2-d, got {fmt_shape(w)}")
        expect_result_shape(self, (*tensor_shape(self.indices), w[1]))


@irdl_op_definition
class SoftmaxOp(IRDLOperation):
    """Softmax along ``dim``.

    ``%p = nn.softmax %s {dim = -1 : i64} : (tensor<2x12x9x9xf32>) -> tensor<2x12x9x9xf32>``
    """

    name = "nn.softmax"
    input = operand_def(TensorType)
    dim = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, dim: int, result_type: Attribute | None = None):
        super().__init__(
            operands=[input], result_types=[result_type or input.type], attributes={"dim": IntegerAttr(dim, i64)}
        )

    def verify_(self) -> None:
        normalize_dim(self.dim.value.data, len(tensor_shape(self.input)), "softmax dim")
        expect_result_shape(self, tensor_shape(self.input))


@irdl_op_definition
class LayerNormOp(IRDLOperation):
    """Layer normalisation over the trailing ``normalized_shape`` dims, with an optional affine weight and bias.

    ``%y = nn.layer_norm %x affine %g, %b {normalized_shape = array<i64: 384>, eps = 1.0e-12 : f64}
            : (tensor<2x9x384xf32>, tensor<384xf32>, tensor<384xf32>) -> tensor<2x9x384xf32>``
    """

    name = "nn.layer_norm"
    input = operand_def(TensorType)
    affine = var_operand_def(TensorType)
    normalized_shape = attr_def(DenseArrayBase.constr(i64))
    eps = attr_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = "$input (`affine` $affine^)? attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self,
        input: SSAValue,
        weight: SSAValue | None,
        bias: SSAValue | None,
        normalized_shape: Sequence[int],
        eps: float,
    ):
        if (weight is None) != (bias is None):
            raise ValueError("layer_norm takes both weight and bias or neither")
        super().__init__(
            operands=[input, [weight, bias] if weight is not None and bias is not None else []],
            result_types=[input.type],
            attributes={
                "normalized_shape": DenseArrayBase.from_list(i64, list(normalized_shape)),
                "eps": FloatAttr(float(eps), 64),
            },
        )

    @property
    def weight(self) -> SSAValue | None:
        return self.affine[0] if self.affine else None

    @property
    def bias(self) -> SSAValue | None:
        return self.affine[1] if self.affine else None

    def verify_(self) -> None:
        x = tensor_shape(self.input)
        norm = int_list(self.normalized_shape)
        if not norm or x[len(x) - len(norm) :] != norm:
            raise VerifyException(f"normalized_shape {fmt_shape(norm)} is not a suffix of the input shape {fmt_shape(x)}")
        if len(self.affine) not in (0, 2):
            raise VerifyException(f"layer_norm takes a weight and a bias or neither, got {len(self.affine)} affine operands")
        for operand, what in ((self.weight, "weight"), (self.bias, "bias")):
            if operand is not None and tensor_shape(operand) != norm:
                raise VerifyException(
                    f"layer_norm {what} shape {fmt_shape(tensor_shape(operand))} must equal normalized_shape {fmt_shape(norm)}"
                )
        if self.eps.value.data <= 0:
            raise VerifyException(f"layer_norm eps must be positive, got {self.eps.value.data}")
        expect_result_shape(self, x)


@irdl_op_definition
class SdpaOp(IRDLOperation):
    """``torch.nn.functional.scaled_dot_product_attention`` as traced, before ``attn-raise``.

    ``scale`` absent means PyTorch's default ``1/sqrt(E)``; a boolean mask keeps the ``True`` positions, a
    float mask is added to the scores.

    ``%o = nn.sdpa %q, %k, %v {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x9x16xf32>, ...) -> tensor<2x4x9x16xf32>``
    """

    name = "nn.sdpa"
    query = operand_def(TensorType)
    key = operand_def(TensorType)
    value = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    scale = opt_attr_def(FloatAttr)
    causal = attr_def(BoolAttr)
    dropout_p = attr_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = (
        "$query `,` $key `,` $value (`mask` $mask^)? attr-dict `:` functional-type(operands, results)"
    )
    traits = traits_def(Pure())

    def __init__(
        self,
        query: SSAValue,
        key: SSAValue,
        value: SSAValue,
        mask: SSAValue | None,
        result_type: Attribute,
        scale: float | None = None,
        causal: bool = False,
        dropout_p: float = 0.0,
    ):
        attributes: dict[str, Attribute] = {
            "causal": BoolAttr.from_bool(causal),
            "dropout_p": FloatAttr(float(dropout_p), 64),
        }
        if scale is not None:
            attributes["scale"] = FloatAttr(float(scale), 64)
        super().__init__(
            operands=[query, key, value, [mask] if mask else []], result_types=[result_type], attributes=attributes
        )

    def verify_(self) -> None:
        verify_attention_operands(self, self.query, self.key, self.value, self.mask)
        if not 0.0 <= self.dropout_p.value.data < 1.0:
            raise VerifyException(f"dropout_p must be in [0, 1), got {self.dropout_p.value.data}")


def verify_attention_operands(
    op: IRDLOperation, query: SSAValue, key: SSAValue, value: SSAValue, mask: SSAValue | None
) -> None:
    """Checks q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev), mask broadcastable to (..., Lq, Lk)."""
    q, k, v = tensor_shape(query), tensor_shape(key), tensor_shape(value)
    if min(len(q), len(k), len(v)) < 2:
        raise VerifyException(f"query, key and value must have rank >= 2, got {fmt_shape(q)}, {fmt_shape(k)}, {fmt_shape(v)}")
    if q[-1] != k[-1]:
        raise VerifyException(f"query head size {q[-1]} does not match key head size {k[-1]}")
    if k[-2] != v[-2]:
        raise VerifyException(f"key length {k[-2]} does not match value length {v[-2]}")
    batch = broadcast_shapes(q[:-2], k[:-2])
    batch = None if batch is None else broadcast_shapes(batch, v[:-2])
    if batch is None:
        raise VerifyException(f"batch dims of query {fmt_shape(q)}, key {fmt_shape(k)}, value {fmt_shape(v)} do not broadcast")
    if mask is not None:
        m = tensor_shape(mask)
        if broadcast_shapes(m, (*batch, q[-2], k[-2])) != (*batch, q[-2], k[-2]):
            scores = fmt_shape((*batch, q[-2], k[-2]))
            raise VerifyException(f"mask shape {fmt_shape(m)} does not broadcast to the scores {scores}")
        mask_type = element_type(mask)
        if not (is_bool(mask_type) or mask_type == element_type(query)):
            raise VerifyException(f"mask must be i1 (keep) or {element_type(query)} (additive), got {mask_type}")
    expect_result_shape(op, (*batch, q[-2], v[-1]), "batch x query length x value size")
    expect_same_element_type(op, query, key, value)
    scale = getattr(op, "scale", None)
    if scale is not None and not scale.value.data > 0:
        raise VerifyException(f"scale must be positive, got {scale.value.data}")


# ---------------------------------------------------------------------------------------------------------
# Shape manipulation, indexing and reductions.
# ---------------------------------------------------------------------------------------------------------


@irdl_op_definition
class ReshapeOp(IRDLOperation):
    """Reshape to the result type's shape (``view``, ``reshape``, ``unsqueeze``, ``squeeze``, ``flatten``).

    ``%y = nn.reshape %x : (tensor<2x9x384xf32>) -> tensor<2x9x12x32xf32>``
    """

    name = "nn.reshape"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        import math

        a, b = tensor_shape(self.input), tensor_shape(self.result)
        if math.prod(a) != math.prod(b):
            raise VerifyException(f"reshape from {fmt_shape(a)} to {fmt_shape(b)} changes the element count")
        expect_same_element_type(self, self.input)


@irdl_op_definition
class TransposeOp(IRDLOperation):
    """Swaps two dimensions.

    ``%kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x12x9x32xf32>) -> tensor<2x12x32x9xf32>``
    """

    name = "nn.transpose"
    input = operand_def(TensorType)
    dim0 = attr_def(IntegerAttr[I64])
    dim1 = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, dim0: int, dim1: int, result_type: Attribute | None = None):
        if result_type is None:
            shape = list(tensor_shape(input))
            shape[dim0], shape[dim1] = shape[dim1], shape[dim0]
            result_type = TensorType(element_type(input), shape)
        super().__init__(
            operands=[input],
            result_types=[result_type],
            attributes={"dim0": IntegerAttr(dim0, i64), "dim1": IntegerAttr(dim1, i64)},
        )

    def swapped_dims(self) -> tuple[int, int]:
        """The two dimensions, normalised to [0, rank) and sorted."""
        rank = len(tensor_shape(self.input))
        a = normalize_dim(self.dim0.value.data, rank, "transpose dim0")
        b = normalize_dim(self.dim1.value.data, rank, "transpose dim1")
        return (min(a, b), max(a, b))

    def verify_(self) -> None:
        a, b = self.swapped_dims()
        shape = list(tensor_shape(self.input))
        if a != b:
            shape[a], shape[b] = shape[b], shape[a]
        expect_result_shape(self, shape)
        expect_same_element_type(self, self.input)


@irdl_op_definition
class PermuteOp(IRDLOperation):
    """Reorders all dimensions.

    ``%y = nn.permute %x {dims = array<i64: 0, 2, 1, 3>} : (tensor<2x9x12x32xf32>) -> tensor<2x12x9x32xf32>``
    """

    name = "nn.permute"
    input = operand_def(TensorType)
    dims = attr_def(DenseArrayBase.constr(i64))
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, dims: Sequence[int], result_type: Attribute):
        super().__init__(
            operands=[input], result_types=[result_type], attributes={"dims": DenseArrayBase.from_list(i64, list(dims))}
        )

    def verify_(self) -> None:
        shape = tensor_shape(self.input)
        dims = [normalize_dim(d, len(shape), "permute dim") for d in int_list(self.dims)]
        if sorted(dims) != list(range(len(shape))):
            raise VerifyException(f"dims {list(int_list(self.dims))} are not a permutation of 0..{len(shape) - 1}")
        expect_result_shape(self, [shape[d] for d in dims])


@irdl_op_definition
class BroadcastToOp(IRDLOperation):
    """Broadcasts to the result type's shape (``expand``).

    ``%y = nn.broadcast_to %x : (tensor<1x9xi64>) -> tensor<2x9xi64>``
    """

    name = "nn.broadcast_to"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        a, b = tensor_shape(self.input), tensor_shape(self.result)
        if broadcast_shapes(a, b) != b:
            raise VerifyException(f"shape {fmt_shape(a)} does not broadcast to {fmt_shape(b)}")
        expect_same_element_type(self, self.input)


@irdl_op_definition
class SliceOp(IRDLOperation):
    """``x[start:end:step]`` along ``dim`` (``end`` already clamped to the dimension).

    ``%y = nn.slice %x {dim = 1 : i64, start = 0 : i64, end = 9 : i64, step = 1 : i64} : (tensor<1x512xi64>) -> tensor<1x9xi64>``
    """

    name = "nn.slice"
    input = operand_def(TensorType)
    dim = attr_def(IntegerAttr[I64])
    start = attr_def(IntegerAttr[I64])
    end = attr_def(IntegerAttr[I64])
    step = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, dim: int, start: int, end: int, step: int, result_type: Attribute):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            attributes={n: IntegerAttr(v, i64) for n, v in (("dim", dim), ("start", start), ("end", end), ("step", step))},
        )

    def verify_(self) -> None:
        shape = list(tensor_shape(self.input))
        dim = normalize_dim(self.dim.value.data, len(shape), "slice dim", scalar_ok=False)
        start, end, step = self.start.value.data, self.end.value.data, self.step.value.data
        if step < 1:
            raise VerifyException(f"slice step must be >= 1, got {step}")
        if not 0 <= start <= end <= shape[dim]:
            raise VerifyException(f"slice [{start}:{end}] is out of bounds for dimension {dim} of size {shape[dim]}")
        shape[dim] = (end - start + step - 1) // step
        expect_result_shape(self, shape)


@irdl_op_definition
class SelectOp(IRDLOperation):
    """``x[..., index, ...]`` along ``dim``, dropping that dimension.

    ``%y = nn.select %x {dim = 1 : i64, index = 0 : i64} : (tensor<3x17x64xf32>) -> tensor<3x64xf32>``
    """

    name = "nn.select"
    input = operand_def(TensorType)
    dim = attr_def(IntegerAttr[I64])
    index = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, dim: int, index: int, result_type: Attribute):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            attributes={"dim": IntegerAttr(dim, i64), "index": IntegerAttr(index, i64)},
        )

    def verify_(self) -> None:
        shape = list(tensor_shape(self.input))
        dim = normalize_dim(self.dim.value.data, len(shape), "select dim", scalar_ok=False)
        if not -shape[dim] <= self.index.value.data < shape[dim]:
            raise VerifyException(f"select index {self.index.value.data} is out of bounds for size {shape[dim]}")
        del shape[dim]
        expect_result_shape(self, shape)


@irdl_op_definition
class ConcatOp(IRDLOperation):
    """Concatenation along ``dim``.

    ``%y = nn.concat %a, %b {dim = 1 : i64} : (tensor<3x1x64xf32>, tensor<3x16x64xf32>) -> tensor<3x17x64xf32>``
    """

    name = "nn.concat"
    inputs = var_operand_def(TensorType)
    dim = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = "$inputs attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, inputs: Sequence[SSAValue], dim: int, result_type: Attribute):
        super().__init__(operands=[list(inputs)], result_types=[result_type], attributes={"dim": IntegerAttr(dim, i64)})

    def verify_(self) -> None:
        if not self.inputs:
            raise VerifyException("concat needs at least one input")
        shapes = [list(tensor_shape(v)) for v in self.inputs]
        dim = normalize_dim(self.dim.value.data, len(shapes[0]), "concat dim", scalar_ok=False)
        total = 0
        for shape in shapes:
            if len(shape) != len(shapes[0]) or shape[:dim] + shape[dim + 1 :] != shapes[0][:dim] + shapes[0][dim + 1 :]:
                raise VerifyException(
                    f"concat inputs differ outside dimension {dim}: {fmt_shape(shape)} vs {fmt_shape(shapes[0])}"
                )
            total += shape[dim]
        expected = list(shapes[0])
        expected[dim] = total
        expect_result_shape(self, expected)


@irdl_op_definition
class GatherOp(IRDLOperation):
    """``torch.gather`` along ``dim``.

    ``%y = nn.gather %x, %idx {dim = 1 : i64} : (tensor<1x512xi64>, tensor<1x9xi64>) -> tensor<1x9xi64>``
    """

    name = "nn.gather"
    input = operand_def(TensorType)
    indices = operand_def(TensorType)
    dim = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = "$input `,` $indices attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, indices: SSAValue, dim: int, result_type: Attribute):
        super().__init__(operands=[input, indices], result_types=[result_type], attributes={"dim": IntegerAttr(dim, i64)})

    def verify_(self) -> None:
        normalize_dim(self.dim.value.data, len(tensor_shape(self.input)), "gather dim")
        if not is_integer(element_type(self.indices)):
            raise VerifyException(f"gather indices must be integers, got {element_type(self.indices)}")
        expect_result_shape(self, tensor_shape(self.indices), "the indices' shape")


@irdl_op_definition
class IndexOp(IRDLOperation):
    """Advanced indexing ``x[..., i0, ..., i1, ...]`` with integer index tensors on the dims listed in ``dims``.

    ``%y = nn.index %m[%b, %j] {dims = array<i64: 0, 1>}
    : (tensor<2x9xi1>, tensor<2x1x1x1xi64>, tensor<1x1x1x9xi64>) -> tensor<2x1x1x9xi1>``
    """

    name = "nn.index"
    input = operand_def(TensorType)
    indices = var_operand_def(TensorType)
    dims = attr_def(DenseArrayBase.constr(i64))
    result = result_def(TensorType)
    assembly_format = "$input `[` $indices `]` attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, indices: Sequence[SSAValue], dims: Sequence[int], result_type: Attribute):
        super().__init__(
            operands=[input, list(indices)],
            result_types=[result_type],
            attributes={"dims": DenseArrayBase.from_list(i64, list(dims))},
        )

    def verify_(self) -> None:
        dims = int_list(self.dims)
        rank = len(tensor_shape(self.input))
        if len(dims) != len(self.indices) or not self.indices:
            raise VerifyException(f"{len(self.indices)} index tensors but dims lists {len(dims)} dimensions")
        if list(dims) != sorted(set(dims)) or any(not 0 <= d < rank for d in dims):
            raise VerifyException(f"dims {list(dims)} must be increasing and within rank {rank}")
        for index in self.indices:
            if not is_integer(element_type(index)):
                raise VerifyException(f"index tensors must be integers, got {element_type(index)}")
        expect_same_element_type(self, self.input)


class ReductionOp(IRDLOperation):
    """Base: reduce over ``dims`` (all dims if empty), keeping them as size 1 when ``keepdim``."""

    input = operand_def(TensorType)
    dims = attr_def(DenseArrayBase.constr(i64))
    keepdim = attr_def(BoolAttr)
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, dims: Sequence[int], keepdim: bool, result_type: Attribute, attributes=None):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            attributes={
                "dims": DenseArrayBase.from_list(i64, list(dims)),
                "keepdim": BoolAttr.from_bool(keepdim),
                **(attributes or {}),
            },
        )

    def reduced_dims(self) -> list[int]:
        shape = tensor_shape(self.input)
        dims = int_list(self.dims) or tuple(range(len(shape)))
        return sorted({normalize_dim(d, len(shape), "reduction dim") for d in dims})

    def verify_(self) -> None:
        shape = tensor_shape(self.input)
        dims = self.reduced_dims()
        keep = bool(self.keepdim.value.data)
        expected = [1 if i in dims else s for i, s in enumerate(shape)] if keep else [
            s for i, s in enumerate(shape) if i not in dims
        ]
        expect_result_shape(self, expected)


@irdl_op_definition
class ReduceSumOp(ReductionOp):
    """Sum. ``%y = nn.reduce_sum %x {dims = array<i64: 1>, keepdim = false} : (tensor<2x9x384xf32>) -> tensor<2x384xf32>``"""

    name = "nn.reduce_sum"


@irdl_op_definition
class ReduceMeanOp(ReductionOp):
    """Mean. ``%y = nn.reduce_mean %x {dims = array<i64: -1>, keepdim = true} : (tensor<2x9x64xf32>) -> tensor<2x9x1xf32>``"""

    name = "nn.reduce_mean"


@irdl_op_definition
class VectorNormOp(ReductionOp):
    """p-norm over ``dims``.

    ``%n = nn.vector_norm %x {ord = 2.0 : f64, dims = array<i64: 1>, keepdim = true} : (tensor<4x384xf32>) -> tensor<4x1xf32>``
    """

    name = "nn.vector_norm"
    ord = attr_def(FloatAttr)

    def __init__(self, input: SSAValue, ord: float, dims: Sequence[int], keepdim: bool, result_type: Attribute):
        super().__init__(input, dims, keepdim, result_type, {"ord": FloatAttr(float(ord), 64)})


@irdl_op_definition
class CumsumOp(IRDLOperation):
    """Running sum along ``dim``. ``%y = nn.cumsum %x {dim = -1 : i64} : (tensor<2x9xi64>) -> tensor<2x9xi64>``"""

    name = "nn.cumsum"
    input = operand_def(TensorType)
    dim = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, dim: int, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type], attributes={"dim": IntegerAttr(dim, i64)})

    def verify_(self) -> None:
        normalize_dim(self.dim.value.data, len(tensor_shape(self.input)), "cumsum dim")
        expect_result_shape(self, tensor_shape(self.input))


# ---------------------------------------------------------------------------------------------------------
# Model-zoo ops: what mainstream architectures need beyond the ops above (relative-position buckets, ALiBi,
# rotary interleaving, convolutional patch embeddings and audio front ends, window padding).
# ---------------------------------------------------------------------------------------------------------


@irdl_op_definition
class AbsOp(UnaryOp):
    """``|x|``. ``%y = nn.abs %x : (tensor<4xi64>) -> tensor<4xi64>``"""

    name = "nn.abs"


@irdl_op_definition
class SignOp(UnaryOp):
    """-1, 0 or 1 by the sign of ``x``, in ``x``'s element type. ``%y = nn.sign %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.sign"


class FloatUnaryOp(UnaryOp):
    """Base: a unary op defined on floating-point tensors only."""

    def verify_(self) -> None:
        super().verify_()
        if not is_float(element_type(self.input)):
            raise VerifyException(f"{self.name} expects a floating-point tensor, got {element_type(self.input)}")


@irdl_op_definition
class LogOp(FloatUnaryOp):
    """Natural logarithm. ``%y = nn.log %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.log"


@irdl_op_definition
class CeilOp(FloatUnaryOp):
    """Rounds up to an integral value, element type unchanged. ``%y = nn.ceil %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.ceil"


@irdl_op_definition
class FloorOp(FloatUnaryOp):
    """Rounds down to an integral value, element type unchanged. ``%y = nn.floor %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.floor"


@irdl_op_definition
class ErfOp(FloatUnaryOp):
    """The error function. ``%y = nn.erf %x : (tensor<4xf32>) -> tensor<4xf32>``"""

    name = "nn.erf"


def _int_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


@irdl_op_definition
class ConvOp(IRDLOperation):
    """N-d convolution (``conv1d``, ``conv2d``, ``conv3d``) on a batched ``N x C x spatial...`` input.

    ``stride``, ``padding`` (zeros, both sides) and ``dilation`` have one entry per spatial dimension; the
    weight is ``C_out x C_in/groups x kernel...``; the optional bias has ``C_out`` entries.

    ```mlir
    %y = nn.conv %x, %w, %b {stride = array<i64: 4, 4>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64}
           : (tensor<2x3x16x16xf32>, tensor<32x3x4x4xf32>, tensor<32xf32>) -> tensor<2x32x4x4xf32>
    ```
    """

    name = "nn.conv"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    stride = attr_def(DenseArrayBase.constr(i64))
    padding = attr_def(DenseArrayBase.constr(i64))
    dilation = attr_def(DenseArrayBase.constr(i64))
    groups = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self,
        input: SSAValue,
        weight: SSAValue,
        bias: SSAValue | None,
        stride: Sequence[int],
        padding: Sequence[int],
        dilation: Sequence[int],
        groups: int,
        result_type: Attribute,
    ):
        super().__init__(
            operands=[input, weight, [bias] if bias else []],
            result_types=[result_type],
            attributes={
                "stride": _int_array(stride),
                "padding": _int_array(padding),
                "dilation": _int_array(dilation),
                "groups": IntegerAttr(groups, i64),
            },
        )

    @property
    def spatial_rank(self) -> int:
        return len(tensor_shape(self.weight)) - 2

    def verify_(self) -> None:
        x, w = tensor_shape(self.input), tensor_shape(self.weight)
        n = len(w) - 2
        if n < 1:
            raise VerifyException(f"conv weight must be C_out x C_in/groups x kernel..., got {fmt_shape(w)}")
        if len(x) != n + 2:
            raise VerifyException(f"conv{n}d input must be {n + 2}-d (batch, channels, {n} spatial), got {fmt_shape(x)}")
        stride, padding, dilation = (int_list(a) for a in (self.stride, self.padding, self.dilation))
        for what, values, low in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
            if len(values) != n:
                raise VerifyException(f"conv {what} needs {n} entries (one per spatial dimension), got {len(values)}")
            if any(v < low for v in values):
                raise VerifyException(f"conv {what} entries must be >= {low}, got {list(values)}")
        groups = self.groups.value.data
        if groups < 1 or w[0] % groups:
            raise VerifyException(f"conv groups {groups} must be >= 1 and divide the {w[0]} output channels")
        if x[1] != w[1] * groups:
            raise VerifyException(
                f"conv input has {x[1]} channels, weight {fmt_shape(w)} with groups={groups} expects {w[1] * groups}"
            )
        if self.bias is not None and tensor_shape(self.bias) != (w[0],):
            raise VerifyException(f"conv bias must have shape {w[0]}, got {fmt_shape(tensor_shape(self.bias))}")
        spatial = []
        for size, kernel, s, p, d in zip(x[2:], w[2:], stride, padding, dilation):
            extent = size + 2 * p - d * (kernel - 1)
            if extent < 1:
                raise VerifyException(
                    f"conv kernel {fmt_shape(w[2:])} (dilation {list(dilation)}) does not fit input {fmt_shape(x[2:])}"
                )
            spatial.append((extent - 1) // s + 1)
        expect_result_shape(self, (x[0], w[0], *spatial))
        expect_same_element_type(self, self.input, self.weight)


@irdl_op_definition
class PadOp(IRDLOperation):
    """Constant padding, ``torch.nn.functional.pad`` order: ``(before, after)`` pairs from the last dimension
    backwards; a negative entry crops.

    ``%y = nn.pad %x {pads = array<i64: 0, 0, 1, 2>, value = 0.0 : f64} : (tensor<1x5x5x8xf32>) -> tensor<1x8x5x8xf32>``
    """

    name = "nn.pad"
    input = operand_def(TensorType)
    pads = attr_def(DenseArrayBase.constr(i64))
    value = attr_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, pads: Sequence[int], value: float, result_type: Attribute):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            attributes={"pads": _int_array(pads), "value": FloatAttr(float(value), 64)},
        )

    def verify_(self) -> None:
        shape = list(tensor_shape(self.input))
        pads = int_list(self.pads)
        if len(pads) % 2 or len(pads) // 2 > len(shape):
            raise VerifyException(
                f"pad needs (before, after) pairs for at most {len(shape)} dimensions, got {len(pads)} entries"
            )
        for pair in range(len(pads) // 2):
            dim = len(shape) - 1 - pair
            shape[dim] += pads[2 * pair] + pads[2 * pair + 1]
            if shape[dim] < 0:
                raise VerifyException(f"pad {list(pads)} crops dimension {dim} below zero")
        expect_result_shape(self, shape)
        expect_same_element_type(self, self.input)


@irdl_op_definition
class RepeatOp(IRDLOperation):
    """``Tensor.repeat``: tiles the input ``repeats[i]`` times along dimension ``i`` (leading 1s added when
    ``repeats`` is longer than the rank).

    ``%y = nn.repeat %x {repeats = array<i64: 2, 1>} : (tensor<4x3xf32>) -> tensor<8x3xf32>``
    """

    name = "nn.repeat"
    input = operand_def(TensorType)
    repeats = attr_def(DenseArrayBase.constr(i64))
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, repeats: Sequence[int], result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type], attributes={"repeats": _int_array(repeats)})

    def verify_(self) -> None:
        shape = tensor_shape(self.input)
        repeats = int_list(self.repeats)
        if len(repeats) < len(shape):
            raise VerifyException(f"repeat needs at least one count per dimension ({len(shape)}), got {len(repeats)}")
        if any(r < 0 for r in repeats):
            raise VerifyException(f"repeat counts must be >= 0, got {list(repeats)}")
        padded = (1,) * (len(repeats) - len(shape)) + shape
        expect_result_shape(self, [s * r for s, r in zip(padded, repeats)])
        expect_same_element_type(self, self.input)


@irdl_op_definition
class RepeatInterleaveOp(IRDLOperation):
    """``repeat_interleave`` with one count: each slice along ``dim`` is repeated ``repeats`` times in place
    (``[a, b]`` → ``[a, a, b, b]``).

    ``%y = nn.repeat_interleave %x {repeats = 2 : i64, dim = 1 : i64} : (tensor<2x4xf32>) -> tensor<2x8xf32>``
    """

    name = "nn.repeat_interleave"
    input = operand_def(TensorType)
    repeats = attr_def(IntegerAttr[I64])
    dim = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = FUNCTIONAL_FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, repeats: int, dim: int, result_type: Attribute):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            attributes={"repeats": IntegerAttr(repeats, i64), "dim": IntegerAttr(dim, i64)},
        )

    def verify_(self) -> None:
        shape = list(tensor_shape(self.input))
        dim = normalize_dim(self.dim.value.data, len(shape), "repeat_interleave dim", scalar_ok=False)
        repeats = self.repeats.value.data
        if repeats < 0:
            raise VerifyException(f"repeat_interleave count must be >= 0, got {repeats}")
        shape[dim] *= repeats
        expect_result_shape(self, shape)
        expect_same_element_type(self, self.input)


NN_OPS: list[type[Operation]] = [
    ParamOp,
    ConstantOp,
    FullOp,
    ArangeOp,
    NegOp,
    ExpOp,
    SqrtOp,
    RsqrtOp,
    TanhOp,
    SigmoidOp,
    ReluOp,
    SiluOp,
    CosOp,
    SinOp,
    LogicalNotOp,
    GeluOp,
    DropoutOp,
    ClampOp,
    CastOp,
    AddOp,
    SubOp,
    MulOp,
    DivOp,
    PowOp,
    MaximumOp,
    MinimumOp,
    LogicalAndOp,
    EqOp,
    NeOp,
    GeOp,
    GtOp,
    LeOp,
    LtOp,
    WhereOp,
    MatmulOp,
    LinearOp,
    EmbeddingOp,
    SoftmaxOp,
    LayerNormOp,
    SdpaOp,
    ReshapeOp,
    TransposeOp,
    PermuteOp,
    BroadcastToOp,
    SliceOp,
    SelectOp,
    ConcatOp,
    GatherOp,
    IndexOp,
    ReduceSumOp,
    ReduceMeanOp,
    VectorNormOp,
    CumsumOp,
    AbsOp,
    SignOp,
    LogOp,
    CeilOp,
    FloorOp,
    ErfOp,
    ConvOp,
    PadOp,
    RepeatOp,
    RepeatInterleaveOp,
]

NN = Dialect("nn", NN_OPS, [])
