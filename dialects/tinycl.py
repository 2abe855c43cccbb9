"""The ``tinycl`` dialect: a fixed-point accelerator whose MAC array runs every phase of training.

A value on the accelerator is a tensor of fixed-point codes whose element type names its format:
``!tinycl.fixed<16, 8>`` is a 16-bit two's-complement integer ``c`` holding ``c · 2⁻⁸``. Formats are explicit on
every value, so each change of format is an op (``tinycl.requant``) with its rounding and overflow modes.

```mlir
%xq = tinycl.quantize %x nearest-even saturate : (tensor<8x17x64xf32>) -> tensor<8x17x64x!tinycl.fixed<16, 8>>
%acc = tinycl.mac forward %xq, %wq, %bq : (tensor<8x17x64x!tinycl.fixed<16, 8>>, tensor<192x64x!tinycl.fixed<16, 8>>,
         tensor<192x!tinycl.fixed<40, 16>>) -> tensor<8x17x192x!tinycl.fixed<40, 16>>
%y = tinycl.requant %acc nearest-even saturate : (tensor<8x17x192x!tinycl.fixed<40, 16>>)
         -> tensor<8x17x192x!tinycl.fixed<16, 8>>
%p = tinycl.softmax %s {scale = 0.25 : f64, causal = false} : (...) -> ...
%g = tinycl.lut %y gelu : (...) -> ...
%f = tinycl.dequantize %y : (tensor<8x17x192x!tinycl.fixed<16, 8>>) -> tensor<8x17x192xf32>
```

``tinycl.mac`` is the reconfigurable MAC array; its ``mode`` selects the contraction (TinyCL shares one array
between the phases of a training step):

* ``forward``: ``(…, M, K) × (…, N, K) → (…, M, N)``, ``y = x Wᵀ`` (a 2-d rhs is a weight, shared by the batch);
* ``input-gradient``: ``(…, M, N) × (…, N, K) → (…, M, K)``, ``dx = dy W``;
* ``weight-gradient``: ``(…, M, N) × (…, M, K) → (N, K)``, ``dW = Σ dyᵀ x`` over the batch and M;
* ``update``: element-wise ``a − b`` (``W − η·dW`` with η folded into b's requantisation).

The accumulator is the result type: its fractional bits are the sum of the operands' (the difference's
operands are aligned to the finer format for ``update``), and its width is what the lowering chose so the sum
cannot overflow. An optional third operand (the bias) is already in the accumulator format.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    BoolAttr,
    DenseArrayBase,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    attr_def,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from dialects.shapes import element_type, fmt_shape, is_float, tensor_shape

CONFIG_ATTRIBUTE = "tinycl.config"
CALIBRATED_MAX_ATTRIBUTE = "calibrated_max"  # the max |x| on calibration data that chose a result's format
ROUNDING_MODES = ("nearest-even", "truncate", "stochastic")
OVERFLOW_MODES = ("saturate", "wrap")
MAC_MODES = ("forward", "input-gradient", "weight-gradient", "update")
LUT_FUNCTIONS = ("gelu", "relu")
MAX_BITS = 64  # codes live in int64


def fixed_format_errors(total_bits: int, frac_bits: int) -> list[str]:
    """What is wrong with a fixed-point format (empty when it is valid); shared by the type and the lowering."""
    if not 2 <= total_bits <= MAX_BITS:
        return [f"total bits must be in [2, {MAX_BITS}], got {total_bits}"]
    if not 0 <= frac_bits < total_bits:
        return [f"fractional bits must be in [0, total bits) = [0, {total_bits}), got {frac_bits}"]
    return []


@irdl_attr_definition
class FixedType(ParametrizedAttribute, TypeAttribute):
    """A two's-complement fixed-point number: ``total`` bits, ``frac`` of them fractional."""

    name = "tinycl.fixed"

    total: IntAttr
    frac: IntAttr

    def __init__(self, total: int, frac: int):
        super().__init__(IntAttr(total), IntAttr(frac))

    @property
    def bits(self) -> tuple[int, int]:
        return self.total.data, self.frac.data

    def verify(self) -> None:
        for error in fixed_format_errors(*self.bits):
            raise VerifyException(f"!tinycl.fixed: {error}")

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.total.data}, {self.frac.data}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            total = parser.parse_integer(allow_boolean=False, allow_negative=False)
            parser.parse_punctuation(",")
            frac = parser.parse_integer(allow_boolean=False, allow_negative=False)
        return [IntAttr(total), IntAttr(frac)]


def fixed_of(value: SSAValue | Attribute, what: str) -> FixedType:
    typ = element_type(value)
    if not isinstance(typ, FixedType):
        raise VerifyException(f"{what} must be a tensor of !tinycl.fixed, got {typ}")
    return typ


def check_calibrated_max(op: IRDLOperation, result: SSAValue) -> None:
    """A recorded ``calibrated_max`` is a finite float >= 0 that the result's format holds (unless even its
    integer format cannot: then the format has no fractional bits and the largest values saturate)."""
    recorded = op.attributes.get(CALIBRATED_MAX_ATTRIBUTE)
    if recorded is None:
        return
    if not isinstance(recorded, FloatAttr) or not 0.0 <= recorded.value.data < float("inf"):
        raise VerifyException(f"{CALIBRATED_MAX_ATTRIBUTE} must be a finite float >= 0, got {recorded}")
    fmt = fixed_of(result, "the result")
    largest = ((1 << (fmt.total.data - 1)) - 1) * 2.0**-fmt.frac.data
    if recorded.value.data > largest and fmt.frac.data > 0:
        raise VerifyException(
            f"the result format {fmt} holds at most {largest}, below the {CALIBRATED_MAX_ATTRIBUTE} {recorded.value.data}"
        )


def _check_choice(value: str, choices: Sequence[str], what: str) -> None:
    if value not in choices:
        raise VerifyException(f"unknown {what} '{value}': expected one of {', '.join(choices)}")


def parse_kebab_word(parser: Parser) -> str:
    """A bare word that may hold hyphens (``nearest-even``, ``input-gradient``), as the options spell it."""
    words = [parser.parse_identifier()]
    while parser.parse_optional_punctuation("-") is not None:
        words.append(parser.parse_identifier())
    return "-".join(words)


class _RoundingOp(IRDLOperation):
    """Shared syntax ``op %x ROUNDING OVERFLOW : (in) -> out`` of the ops that round into a fixed format."""

    input = operand_def(TensorType)
    rounding = attr_def(StringAttr)
    overflow = attr_def(StringAttr)
    result = result_def(TensorType)

    def __init__(self, input: SSAValue, result_type: Attribute, rounding: str, overflow: str):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            attributes={"rounding": StringAttr(rounding), "overflow": StringAttr(overflow)},
        )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.input)
        printer.print_string(f" {self.rounding.data} {self.overflow.data}")
        extra = {k: v for k, v in self.attributes.items() if k not in ("rounding", "overflow")}
        printer.print_op_attributes(extra)
        printer.print_string(" : (")
        printer.print_attribute(self.input.type)
        printer.print_string(") -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser):
        unresolved = parser.parse_unresolved_operand()
        rounding = parse_kebab_word(parser)
        overflow = parse_kebab_word(parser)
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        parser.parse_punctuation("(")
        input_type = parser.parse_type()
        parser.parse_punctuation(")")
        parser.parse_punctuation("->")
        result_type = parser.parse_type()
        operand = parser.resolve_operand(unresolved, input_type)
        op = cls(operand, result_type, rounding, overflow)
        op.attributes.update(attributes)
        return op

    def verify_(self) -> None:
        _check_choice(self.rounding.data, ROUNDING_MODES, "rounding mode")
        _check_choice(self.overflow.data, OVERFLOW_MODES, "overflow mode")
        if tensor_shape(self.input) != tensor_shape(self.result):
            raise VerifyException(
                f"result shape {fmt_shape(tensor_shape(self.result))} must equal the input's "
                f"{fmt_shape(tensor_shape(self.input))}"
            )
        fixed_of(self.result, "the result")
        check_calibrated_max(self, self.result)


@irdl_op_definition
class QuantizeOp(_RoundingOp):
    """Float → fixed point: ``round(x · 2^frac)`` with the rounding mode, then the overflow mode."""

    name = "tinycl.quantize"
    traits = traits_def(Pure())

    def verify_(self) -> None:
        super().verify_()
        if not is_float(element_type(self.input)):
            raise VerifyException(f"tinycl.quantize takes a float tensor, got {element_type(self.input)}")


@irdl_op_definition
class RequantOp(_RoundingOp):
    """Fixed → fixed: shift to the result's fractional bits (rounding the dropped bits), then fit its width."""

    name = "tinycl.requant"

    def verify_(self) -> None:
        super().verify_()
        fixed_of(self.input, "the input")


@irdl_op_definition
class DequantizeOp(IRDLOperation):
    """Fixed → float: ``c · 2^-frac`` (exact in f32 up to 24 significant bits)."""

    name = "tinycl.dequantize"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        fixed_of(self.input, "the input")
        if not is_float(element_type(self.result)):
            raise VerifyException(f"tinycl.dequantize produces a float tensor, got {element_type(self.result)}")
        if tensor_shape(self.input) != tensor_shape(self.result):
            raise VerifyException("tinycl.dequantize keeps the shape")


def mac_result_shape(mode: str, lhs: tuple[int, ...], rhs: tuple[int, ...]) -> tuple[int, ...]:
    """The result shape of ``tinycl.mac`` in ``mode``, or a VerifyException saying which dims disagree."""
    if mode == "update":
        if lhs != rhs:
            raise VerifyException(f"update takes operands of one shape, got {fmt_shape(lhs)} and {fmt_shape(rhs)}")
        return lhs
    if len(lhs) < 2 or len(rhs) < 2:
        raise VerifyException(f"{mode} takes operands of rank >= 2, got {fmt_shape(lhs)} and {fmt_shape(rhs)}")
    if len(rhs) != 2 and rhs[:-2] != lhs[:-2]:
        raise VerifyException(f"{mode}: a batched rhs {fmt_shape(rhs)} needs the lhs's batch dims {fmt_shape(lhs[:-2])}")
    if mode == "forward":
        if lhs[-1] != rhs[-1]:
            raise VerifyException(f"forward contracts the last dims: lhs {fmt_shape(lhs)} and rhs {fmt_shape(rhs)} differ")
        return (*lhs[:-1], rhs[-2])
    if mode == "input-gradient":
        if lhs[-1] != rhs[-2]:
            raise VerifyException(f"input-gradient contracts lhs's last dim with rhs's rows: {fmt_shape(lhs)}, {fmt_shape(rhs)}")
        return (*lhs[:-1], rhs[-1])
    if lhs[:-1] != rhs[:-1] and not (len(rhs) == 2 and lhs[-2] == rhs[-2]):
        raise VerifyException(f"weight-gradient needs operands with the same rows, got {fmt_shape(lhs)} and {fmt_shape(rhs)}")
    return (lhs[-1], rhs[-1])


def mac_accumulator_frac(mode: str, lhs: FixedType, rhs: FixedType) -> int:
    return max(lhs.frac.data, rhs.frac.data) if mode == "update" else lhs.frac.data + rhs.frac.data


@irdl_op_definition
class MacOp(IRDLOperation):
    """The MAC array in one of its modes (see the module docstring); the result type is the accumulator."""

    name = "tinycl.mac"
    mode = attr_def(StringAttr)
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    result = result_def(TensorType)

    def __init__(self, mode: str, lhs: SSAValue, rhs: SSAValue, bias: SSAValue | None, result_type: Attribute):
        super().__init__(
            operands=[lhs, rhs, [bias] if bias is not None else []],
            result_types=[result_type],
            attributes={"mode": StringAttr(mode)},
        )

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.mode.data} ")
        printer.print_list(self.operands, printer.print_operand)
        printer.print_op_attributes({k: v for k, v in self.attributes.items() if k != "mode"})
        printer.print_string(" : (")
        printer.print_list([o.type for o in self.operands], printer.print_attribute)
        printer.print_string(") -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> MacOp:
        mode = parse_kebab_word(parser)
        operands = parser.parse_comma_separated_list(Parser.Delimiter.NONE, parser.parse_operand)
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        types = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parser.parse_type)
        parser.parse_punctuation("->")
        result_type = parser.parse_type()
        if len(operands) not in (2, 3) or len(types) != len(operands):
            parser.raise_error("tinycl.mac takes lhs, rhs and an optional bias, with one type each")
        for operand, typ in zip(operands, types):
            if operand.type != typ:
                parser.raise_error(f"operand has type {operand.type}, the signature says {typ}")
        op = cls(mode, operands[0], operands[1], operands[2] if len(operands) == 3 else None, result_type)
        op.attributes.update(attributes)
        return op

    def verify_(self) -> None:
        mode = self.mode.data
        _check_choice(mode, MAC_MODES, "MAC mode")
        lhs, rhs, acc = fixed_of(self.lhs, "lhs"), fixed_of(self.rhs, "rhs"), fixed_of(self.result, "the accumulator")
        expected = mac_result_shape(mode, tensor_shape(self.lhs), tensor_shape(self.rhs))
        if tensor_shape(self.result) != expected:
            raise VerifyException(f"{mode} result must be {fmt_shape(expected)}, got {fmt_shape(tensor_shape(self.result))}")
        frac = mac_accumulator_frac(mode, lhs, rhs)
        if acc.frac.data != frac:
            raise VerifyException(
                f"the accumulator of {mode} has {frac} fractional bits (lhs {lhs.frac.data}, rhs {rhs.frac.data}), "
                f"got {acc.frac.data}"
            )
        if acc.total.data < max(lhs.total.data, rhs.total.data):
            raise VerifyException(f"the accumulator ({acc.total.data} bits) is narrower than an operand")
        if self.bias is not None:
            if mode != "forward":
                raise VerifyException(f"only forward takes a bias, not {mode}")
            if element_type(self.bias) != acc:
                raise VerifyException(f"the bias must be in the accumulator format {acc}, got {element_type(self.bias)}")
            if tensor_shape(self.bias) != (expected[-1],):
                raise VerifyException(f"the bias must have shape {expected[-1]}, got {fmt_shape(tensor_shape(self.bias))}")


def _same_fixed_shape(op: IRDLOperation, input: SSAValue, result: SSAValue, keep_format: bool = True) -> FixedType:
    fmt = fixed_of(input, "the input")
    if keep_format and result.type != input.type:
        raise VerifyException(f"{op.name} keeps the input's type {input.type}, got {result.type}")
    if not keep_format:
        fixed_of(result, "the result")
        if tensor_shape(result) != tensor_shape(input):
            raise VerifyException(f"{op.name} keeps the input's shape {fmt_shape(tensor_shape(input))}, got {result.type}")
    return fmt


@irdl_op_definition
class SoftmaxOp(IRDLOperation):
    """Softmax over the last dim in fixed point: ``exp(scale·(s − max))`` from a table, an integer sum and one
    rounded integer division per element, into the result's format (probabilities may carry more fractional
    bits than the scores). An i1 ``mask`` (broadcast to the input) keeps its true positions;
    ``causal`` drops keys after the query position; a row with no kept key is all zeros."""

    name = "tinycl.softmax"
    input = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    scale = attr_def(FloatAttr)
    causal = attr_def(BoolAttr)
    result = result_def(TensorType)
    assembly_format = "$input (`mask` $mask^)? attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self, input: SSAValue, scale: float, causal: bool, mask: SSAValue | None = None, result_type: Attribute | None = None
    ):
        super().__init__(
            operands=[input, [mask] if mask is not None else []],
            result_types=[result_type or input.type],
            attributes={"scale": FloatAttr(float(scale), 64), "causal": BoolAttr.from_bool(causal)},
        )

    def verify_(self) -> None:
        fixed_of(self.input, "the input")
        fmt = fixed_of(self.result, "the result")
        if tensor_shape(self.result) != tensor_shape(self.input):
            raise VerifyException(f"{self.name} keeps the input's shape {fmt_shape(tensor_shape(self.input))}")
        if not self.scale.value.data > 0:
            raise VerifyException(f"scale must be positive, got {self.scale.value.data}")
        if fmt.frac.data > fmt.total.data - 2:
            raise VerifyException(f"softmax needs 1.0 representable: frac bits <= total bits - 2, got {fmt}")
        if self.mask is not None:
            mask_type = element_type(self.mask)
            if not (isinstance(mask_type, IntegerType) and mask_type.width.data == 1):
                raise VerifyException(f"the mask must be i1 (true keeps a key), got {mask_type}")
            shape, mask = tensor_shape(self.input), tensor_shape(self.mask)
            padded = (1,) * (len(shape) - len(mask)) + mask
            if len(mask) > len(shape) or any(m not in (1, d) for m, d in zip(padded, shape)):
                raise VerifyException(f"the mask {fmt_shape(mask)} does not broadcast to the scores {fmt_shape(shape)}")


@irdl_op_definition
class LayerNormOp(IRDLOperation):
    """Layer normalisation over the last dim in integer arithmetic (exact mean and variance, integer square
    root), then ``γ·y + β`` requantised with the rounding and overflow modes into the result's format. γ, β
    and the result each have their own format (the input's, unless the lowering chose per-tensor formats)."""

    name = "tinycl.layer_norm"
    input = operand_def(TensorType)
    gamma = operand_def(TensorType)
    beta = operand_def(TensorType)
    eps = attr_def(FloatAttr)
    rounding = attr_def(StringAttr)
    overflow = attr_def(StringAttr)
    result = result_def(TensorType)
    assembly_format = "$input `,` $gamma `,` $beta attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self, input: SSAValue, gamma: SSAValue, beta: SSAValue, eps: float, rounding: str, overflow: str,
        result_type: Attribute | None = None,
    ):
        super().__init__(
            operands=[input, gamma, beta],
            result_types=[result_type or input.type],
            attributes={
                "eps": FloatAttr(float(eps), 64),
                "rounding": StringAttr(rounding),
                "overflow": StringAttr(overflow),
            },
        )

    def verify_(self) -> None:
        _same_fixed_shape(self, self.input, self.result, keep_format=False)
        _check_choice(self.rounding.data, ROUNDING_MODES, "rounding mode")
        _check_choice(self.overflow.data, OVERFLOW_MODES, "overflow mode")
        width = tensor_shape(self.input)[-1:]
        for operand, what in ((self.gamma, "gamma"), (self.beta, "beta")):
            if tensor_shape(operand) != width or not isinstance(element_type(operand), FixedType):
                raise VerifyException(f"{what} must be {fmt_shape(width)} of !tinycl.fixed, got {operand.type}")
        if not self.eps.value.data > 0:
            raise VerifyException(f"eps must be positive, got {self.eps.value.data}")
        check_calibrated_max(self, self.result)


@irdl_op_definition
class LutOp(IRDLOperation):
    """An element-wise function by table over every code of the format (GELU, ReLU), entries rounded to nearest
    even and saturated into the result's format (the input's, unless the lowering chose per-tensor formats);
    formats wider than 16 bits index the table by their top 16 bits."""

    name = "tinycl.lut"
    input = operand_def(TensorType)
    function = attr_def(StringAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, function: str, result_type: Attribute | None = None):
        super().__init__(
            operands=[input], result_types=[result_type or input.type], attributes={"function": StringAttr(function)}
        )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.input)
        printer.print_string(f" {self.function.data}")
        printer.print_op_attributes({k: v for k, v in self.attributes.items() if k != "function"})
        printer.print_string(" : (")
        printer.print_attribute(self.input.type)
        printer.print_string(") -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> LutOp:
        unresolved = parser.parse_unresolved_operand()
        function = parse_kebab_word(parser)
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        parser.parse_punctuation("(")
        input_type = parser.parse_type()
        parser.parse_punctuation(")")
        parser.parse_punctuation("->")
        result_type = parser.parse_type()
        operand = parser.resolve_operand(unresolved, input_type)
        return cls.create(
            operands=[operand], result_types=[result_type], attributes={"function": StringAttr(function), **attributes}
        )

    def verify_(self) -> None:
        _same_fixed_shape(self, self.input, self.result, keep_format=False)
        _check_choice(self.function.data, LUT_FUNCTIONS, "table function")
        check_calibrated_max(self, self.result)


@irdl_op_definition
class L2NormalizeOp(IRDLOperation):
    """Each row (last dim) divided by its L2 norm, in integers (exact sum of squares, integer square root with
    guard bits, one rounded division per element); a zero row stays zero."""

    name = "tinycl.l2_normalize"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue):
        super().__init__(operands=[input], result_types=[input.type])

    def verify_(self) -> None:
        fmt = _same_fixed_shape(self, self.input, self.result)
        if fmt.frac.data > fmt.total.data - 2:
            raise VerifyException(f"a unit vector needs 1.0 representable: frac bits <= total bits - 2, got {fmt}")


@irdl_op_definition
class HeadScaleOp(IRDLOperation):
    """Cosine attention's per-head divisor: ``x / max(1, length^sigmoid(m))`` over (batch, heads, ...) codes; the
    factor is computed from the float ``m`` (one per head) on the host, quantized to ``total`` bits with
    ``total − 2`` fractional bits, and the product requantised with the rounding and overflow modes."""

    name = "tinycl.head_scale"
    input = operand_def(TensorType)
    m = operand_def(TensorType)
    length = attr_def(IntegerAttr)
    rounding = attr_def(StringAttr)
    overflow = attr_def(StringAttr)
    result = result_def(TensorType)
    assembly_format = "$input `,` $m attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, m: SSAValue, length: int, rounding: str, overflow: str):
        super().__init__(
            operands=[input, m],
            result_types=[input.type],
            attributes={
                "length": IntegerAttr(length, 64),
                "rounding": StringAttr(rounding),
                "overflow": StringAttr(overflow),
            },
        )

    def verify_(self) -> None:
        _same_fixed_shape(self, self.input, self.result)
        _check_choice(self.rounding.data, ROUNDING_MODES, "rounding mode")
        _check_choice(self.overflow.data, OVERFLOW_MODES, "overflow mode")
        shape = tensor_shape(self.input)
        if len(shape) < 2 or tensor_shape(self.m) != (shape[1],) or not is_float(element_type(self.m)):
            raise VerifyException(
                f"m must be a float tensor with one value per head ({shape[1] if len(shape) > 1 else '?'}), got {self.m.type}"
            )
        if self.length.value.data < 0:
            raise VerifyException(f"length must be >= 0, got {self.length.value.data}")


class _RoundedResultOp(IRDLOperation):
    """Base of the element-wise units of the training step: an exact integer computation, then the result's
    format reached by one requantisation with ``rounding`` and ``overflow``."""

    rounding = attr_def(StringAttr)
    overflow = attr_def(StringAttr)

    def _check_modes(self) -> None:
        _check_choice(self.rounding.data, ROUNDING_MODES, "rounding mode")
        _check_choice(self.overflow.data, OVERFLOW_MODES, "overflow mode")


def _broadcast_shape(lhs: tuple[int, ...], rhs: tuple[int, ...]) -> tuple[int, ...] | None:
    rank = max(len(lhs), len(rhs))
    a, b = (1,) * (rank - len(lhs)) + lhs, (1,) * (rank - len(rhs)) + rhs
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        return None
    return tuple(max(x, y) for x, y in zip(a, b))


class _BinaryOp(_RoundedResultOp):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute, rounding: str, overflow: str):
        super().__init__(
            operands=[lhs, rhs],
            result_types=[result_type],
            attributes={"rounding": StringAttr(rounding), "overflow": StringAttr(overflow)},
        )

    def verify_(self) -> None:
        self._check_modes()
        fixed_of(self.lhs, "lhs"), fixed_of(self.rhs, "rhs"), fixed_of(self.result, "the result")
        shape = _broadcast_shape(tensor_shape(self.lhs), tensor_shape(self.rhs))
        if shape != tensor_shape(self.result):
            raise VerifyException(
                f"operands {fmt_shape(tensor_shape(self.lhs))} and {fmt_shape(tensor_shape(self.rhs))} do not broadcast "
                f"to the result {fmt_shape(tensor_shape(self.result))}"
            )


@irdl_op_definition
class AddOp(_BinaryOp):
    """``a + b`` (broadcast): both aligned to the finer format (exact), summed in int64, then requantised."""

    name = "tinycl.add"


@irdl_op_definition
class MulOp(_BinaryOp):
    """``a · b`` (broadcast): the exact product (fractional bits add up), then requantised."""

    name = "tinycl.mul"


@irdl_op_definition
class ReduceSumOp(_RoundedResultOp):
    """The exact int64 sum over ``dims``, then requantised."""

    name = "tinycl.reduce_sum"
    input = operand_def(TensorType)
    dims = attr_def(DenseArrayBase.constr(i64))
    keepdim = attr_def(BoolAttr)
    result = result_def(TensorType)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self, input: SSAValue, dims: Sequence[int], keepdim: bool, result_type: Attribute, rounding: str, overflow: str
    ):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            attributes={
                "dims": DenseArrayBase.from_list(i64, list(dims)),
                "keepdim": BoolAttr.from_bool(keepdim),
                "rounding": StringAttr(rounding),
                "overflow": StringAttr(overflow),
            },
        )

    def verify_(self) -> None:
        self._check_modes()
        fixed_of(self.input, "the input"), fixed_of(self.result, "the result")
        shape = tensor_shape(self.input)
        dims = {d % len(shape) for d in self.dims.get_values()} if shape else set()
        keep = bool(self.keepdim.value.data)
        expected = tuple(1 if i in dims else n for i, n in enumerate(shape) if keep or i not in dims)
        if tensor_shape(self.result) != expected:
            got = fmt_shape(tensor_shape(self.result))
            raise VerifyException(f"the sum over {sorted(dims)} is {fmt_shape(expected)}, got {got}")


@irdl_op_definition
class SoftmaxBackwardOp(_RoundedResultOp):
    """``dx = y · (dy − Σ dy·y)`` over the last dim: the row sum and both products exact, one requantisation."""

    name = "tinycl.softmax_backward"
    output = operand_def(TensorType)
    grad_output = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$output `,` $grad_output attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, output: SSAValue, grad_output: SSAValue, result_type: Attribute, rounding: str, overflow: str):
        super().__init__(
            operands=[output, grad_output],
            result_types=[result_type],
            attributes={"rounding": StringAttr(rounding), "overflow": StringAttr(overflow)},
        )

    def verify_(self) -> None:
        self._check_modes()
        fixed_of(self.output, "the softmax output"), fixed_of(self.grad_output, "the gradient")
        fixed_of(self.result, "the result")
        if not tensor_shape(self.output) == tensor_shape(self.grad_output) == tensor_shape(self.result):
            raise VerifyException("the softmax output, its gradient and the result must have one shape")


@irdl_op_definition
class LayerNormBackwardOp(_RoundedResultOp):
    """The input gradient of a layer norm over the last dim, ``(n·g − Σg − x̂·Σ(g·x̂)) / (n·σ)`` with ``g = dy·γ``:
    the statistics as ``tinycl.layer_norm`` computes them (exact sums, integer square root with guard bits), x̂
    and g rounded to the gradient's fractional bits, the bracket exact, one rounded division by ``n·σ``, then
    the result's format."""

    name = "tinycl.layer_norm_backward"
    input = operand_def(TensorType)
    grad_output = operand_def(TensorType)
    gamma = operand_def(TensorType)
    eps = attr_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = "$input `,` $grad_output `,` $gamma attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self, input: SSAValue, grad_output: SSAValue, gamma: SSAValue, eps: float, result_type: Attribute, rounding: str,
        overflow: str,
    ):
        super().__init__(
            operands=[input, grad_output, gamma],
            result_types=[result_type],
            attributes={"eps": FloatAttr(float(eps), 64), "rounding": StringAttr(rounding), "overflow": StringAttr(overflow)},
        )

    def verify_(self) -> None:
        self._check_modes()
        for value, what in ((self.input, "the input"), (self.grad_output, "the gradient"), (self.gamma, "gamma")):
            fixed_of(value, what)
        fixed_of(self.result, "the result")
        shape = tensor_shape(self.input)
        if not shape or tensor_shape(self.grad_output) != shape or tensor_shape(self.result) != shape:
            raise VerifyException("the input, its gradient and the result must have one shape")
        if tensor_shape(self.gamma) != shape[-1:]:
            raise VerifyException(f"gamma must be {fmt_shape(shape[-1:])}, got {fmt_shape(tensor_shape(self.gamma))}")
        if not self.eps.value.data > 0:
            raise VerifyException(f"eps must be positive, got {self.eps.value.data}")


@irdl_op_definition
class ActivationBackwardOp(_RoundedResultOp):
    """``dx = f'(x) · dy`` with ``f'`` from a table over the input's codes (entries with ``total − 2`` fractional
    bits, rounded to nearest even), the product exact, then requantised."""

    name = "tinycl.activation_backward"
    input = operand_def(TensorType)
    grad_output = operand_def(TensorType)
    function = attr_def(StringAttr)
    result = result_def(TensorType)
    assembly_format = "$input `,` $grad_output attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self, input: SSAValue, grad_output: SSAValue, function: str, result_type: Attribute, rounding: str, overflow: str
    ):
        super().__init__(
            operands=[input, grad_output],
            result_types=[result_type],
            attributes={"function": StringAttr(function), "rounding": StringAttr(rounding), "overflow": StringAttr(overflow)},
        )

    def verify_(self) -> None:
        self._check_modes()
        _check_choice(self.function.data, LUT_FUNCTIONS, "table function")
        fixed_of(self.input, "the input"), fixed_of(self.grad_output, "the gradient"), fixed_of(self.result, "the result")
        if not tensor_shape(self.input) == tensor_shape(self.grad_output) == tensor_shape(self.result):
            raise VerifyException("the activation input, its gradient and the result must have one shape")


@irdl_op_definition
class CrossEntropyBackwardOp(_RoundedResultOp):
    """The gradient of the cross-entropy on its logits, ``(softmax(logits) − onehot(labels)) · scale / divisor``
    (``divisor`` the count of labels: the mean, times a loss ``scale``): the softmax unit's table with 8 guard
    bits beyond the result's fractional bits, the one-hot subtracted exactly, the exact product by ``scale``,
    one rounded division by ``divisor``, then requantised."""

    name = "tinycl.cross_entropy_backward"
    logits = operand_def(TensorType)
    labels = operand_def(TensorType)
    scale = attr_def(IntegerAttr)
    divisor = attr_def(IntegerAttr)
    result = result_def(TensorType)
    assembly_format = "$logits `,` $labels attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self, logits: SSAValue, labels: SSAValue, scale: int, divisor: int, result_type: Attribute, rounding: str,
        overflow: str,
    ):
        super().__init__(
            operands=[logits, labels],
            result_types=[result_type],
            attributes={
                "scale": IntegerAttr(scale, 64),
                "divisor": IntegerAttr(divisor, 64),
                "rounding": StringAttr(rounding),
                "overflow": StringAttr(overflow),
            },
        )

    def verify_(self) -> None:
        self._check_modes()
        fixed_of(self.logits, "the logits"), fixed_of(self.result, "the result")
        if self.divisor.value.data < 1 or self.scale.value.data < 1:
            raise VerifyException(f"scale and divisor must be >= 1, got {self.scale.value.data}, {self.divisor.value.data}")
        labels = element_type(self.labels)
        if not isinstance(labels, IntegerType):
            raise VerifyException(f"labels must be integers, got {labels}")
        shape = tensor_shape(self.logits)
        if not shape or tensor_shape(self.labels) != shape[:-1] or tensor_shape(self.result) != shape:
            raise VerifyException(
                f"logits {fmt_shape(shape)}, labels {fmt_shape(tensor_shape(self.labels))} and the result "
                f"{fmt_shape(tensor_shape(self.result))} do not match"
            )


@irdl_op_definition
class EmbeddingBackwardOp(_RoundedResultOp):
    """The table gradient of an embedding: the ``grad_output`` rows summed exactly (int64) into the rows their
    ``indices`` name, then requantised to the result's format."""

    name = "tinycl.embedding_backward"
    grad_output = operand_def(TensorType)
    indices = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$grad_output `,` $indices attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, grad_output: SSAValue, indices: SSAValue, result_type: Attribute, rounding: str, overflow: str):
        super().__init__(
            operands=[grad_output, indices],
            result_types=[result_type],
            attributes={"rounding": StringAttr(rounding), "overflow": StringAttr(overflow)},
        )

    def verify_(self) -> None:
        self._check_modes()
        fixed_of(self.grad_output, "the gradient"), fixed_of(self.result, "the result")
        if not isinstance(element_type(self.indices), IntegerType):
            raise VerifyException(f"indices must be integers, got {element_type(self.indices)}")
        table = tensor_shape(self.result)
        if len(table) != 2 or tensor_shape(self.grad_output) != (*tensor_shape(self.indices), table[1]):
            raise VerifyException(
                f"gradient {fmt_shape(tensor_shape(self.grad_output))} must be indices "
                f"{fmt_shape(tensor_shape(self.indices))} by the table width of {fmt_shape(table)}"
            )


@irdl_op_definition
class L2NormalizeBackwardOp(_RoundedResultOp):
    """The input gradient of ``tinycl.l2_normalize`` over the last dim, ``dx = (dn − n·Σ(n·dn)) / ‖x‖``: the norm as
    the forward computes it (exact sum of squares, integer square root with guard bits), ``n`` and ``dn`` at the
    result's fractional bits, the bracket exact, one rounded division by the norm, then the result's format; a
    zero row has a zero gradient."""

    name = "tinycl.l2_normalize_backward"
    input = operand_def(TensorType)
    grad_output = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input `,` $grad_output attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, grad_output: SSAValue, result_type: Attribute, rounding: str, overflow: str):
        super().__init__(
            operands=[input, grad_output],
            result_types=[result_type],
            attributes={"rounding": StringAttr(rounding), "overflow": StringAttr(overflow)},
        )

    def verify_(self) -> None:
        self._check_modes()
        fixed_of(self.input, "the input"), fixed_of(self.grad_output, "the gradient"), fixed_of(self.result, "the result")
        shape = tensor_shape(self.input)
        if not shape or not tensor_shape(self.grad_output) == tensor_shape(self.result) == shape:
            raise VerifyException("the input, its gradient and the result must have one shape (rank >= 1)")


@irdl_op_definition
class HeadScaleBackwardOp(_RoundedResultOp):
    """The gradient of cosine attention's per-head ``m`` through ``tinycl.head_scale``: per head (dim 1),
    ``−ln(max(1, length)) · s(1 − s) · Σ lhs·rhs`` over every other dim, s = sigmoid(m) from the float ``m`` (one per
    head). With ``lhs`` = dO and ``rhs`` = O this is dL/dm; the lowering passes ``N(Q)ᵀ·dO/f`` and ``N(K)ᵀV``, whose
    element-wise product sums to the same. The sum is exact, the factor quantized on the host (``total`` + 4 bits,
    ``total`` fractional), the product requantised to the result's format."""

    name = "tinycl.head_scale_backward"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    m = operand_def(TensorType)
    length = attr_def(IntegerAttr)
    result = result_def(TensorType)
    assembly_format = "$lhs `,` $rhs `,` $m attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self, lhs: SSAValue, rhs: SSAValue, m: SSAValue, length: int, result_type: Attribute, rounding: str, overflow: str
    ):
        super().__init__(
            operands=[lhs, rhs, m],
            result_types=[result_type],
            attributes={
                "length": IntegerAttr(length, 64),
                "rounding": StringAttr(rounding),
                "overflow": StringAttr(overflow),
            },
        )

    def verify_(self) -> None:
        self._check_modes()
        fixed_of(self.lhs, "lhs"), fixed_of(self.rhs, "rhs"), fixed_of(self.result, "the result")
        shape = tensor_shape(self.lhs)
        if len(shape) < 2 or tensor_shape(self.rhs) != shape:
            raise VerifyException(
                f"lhs {fmt_shape(shape)} and rhs {fmt_shape(tensor_shape(self.rhs))} must have one shape of rank >= 2"
            )
        if tensor_shape(self.m) != (shape[1],) or not is_float(element_type(self.m)):
            raise VerifyException(f"m must be a float tensor with one value per head ({shape[1]}), got {self.m.type}")
        if tensor_shape(self.result) != (shape[1],):
            raise VerifyException(f"the result holds one value per head ({shape[1]}), got {fmt_shape(tensor_shape(self.result))}")
        if self.length.value.data < 0:
            raise VerifyException(f"length must be >= 0, got {self.length.value.data}")


TINYCL = Dialect(
    "tinycl",
    [
        QuantizeOp,
        RequantOp,
        DequantizeOp,
        MacOp,
        SoftmaxOp,
        LayerNormOp,
        LutOp,
        L2NormalizeOp,
        HeadScaleOp,
        AddOp,
        MulOp,
        ReduceSumOp,
        SoftmaxBackwardOp,
        LayerNormBackwardOp,
        ActivationBackwardOp,
        CrossEntropyBackwardOp,
        EmbeddingBackwardOp,
        L2NormalizeBackwardOp,
        HeadScaleBackwardOp,
    ],
    [FixedType],
)
