"""The ``grad`` dialect: the loss, the backward ops with no ``nn`` equivalent, and the SGD update.

The ``training-step`` pass writes the backward program of a forward ``nn``/``attn`` program with ``nn`` ops
where one exists (the two GEMMs of a linear's backward are ``nn.matmul``s, a broadcast's backward is an
``nn.reduce_sum``) and with these ops for the rest.

```mlir
%loss = grad.cross_entropy %logits, %labels : (tensor<32x10xf32>, tensor<32xi64>) -> tensor<f32>
%dx = grad.softmax_backward %y, %dy {dim = -1 : i64} : (tensor<2x4x9x9xf32>, tensor<2x4x9x9xf32>) -> tensor<2x4x9x9xf32>
%w1, %v1 = grad.sgd %w, %g velocity %v {lr = 0.05 : f64, momentum = 0.9 : f64}
             : (tensor<10x64xf32>, tensor<10x64xf32>, tensor<10x64xf32>) -> (tensor<10x64xf32>, tensor<10x64xf32>)
```
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import I64, BoolAttr, DenseArrayBase, FloatAttr, IntegerAttr, StringAttr, TensorType, i64
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    attr_def,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from dialects.shapes import element_type, fmt_shape, int_list, is_float, is_integer, normalize_dim, tensor_shape

FORMAT = "operands attr-dict `:` functional-type(operands, results)"


def _same_shape(op: IRDLOperation, what: str, *values: SSAValue) -> None:
    shapes = {tensor_shape(v) for v in values}
    if len(shapes) != 1:
        raise VerifyException(f"{what} must have one shape, got {', '.join(fmt_shape(tensor_shape(v)) for v in values)}")


def _labels_check(logits: SSAValue, labels: SSAValue) -> None:
    shape = tensor_shape(logits)
    if not shape or not is_float(element_type(logits)):
        raise VerifyException(f"logits must be a float tensor of rank >= 1, got {logits.type}")
    if not is_integer(element_type(labels)):
        raise VerifyException(f"labels must be integers, got {element_type(labels)}")
    if tensor_shape(labels) != shape[:-1]:
        raise VerifyException(
            f"labels shape {fmt_shape(tensor_shape(labels))} must be the logits shape without its class dim "
            f"{fmt_shape(shape[:-1])}"
        )


@irdl_op_definition
class CrossEntropyOp(IRDLOperation):
    """Mean cross-entropy of ``logits`` (..., C) against integer ``labels`` (...): a scalar."""

    name = "grad.cross_entropy"
    logits = operand_def(TensorType)
    labels = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = FORMAT
    traits = traits_def(Pure())

    def __init__(self, logits: SSAValue, labels: SSAValue):
        super().__init__(operands=[logits, labels], result_types=[TensorType(element_type(logits), [])])

    def verify_(self) -> None:
        _labels_check(self.logits, self.labels)
        if tensor_shape(self.result) != ():
            raise VerifyException(f"the loss is a scalar, got {fmt_shape(tensor_shape(self.result))}")


@irdl_op_definition
class CrossEntropyBackwardOp(IRDLOperation):
    """The gradient of the mean cross-entropy on its logits: ``(softmax(logits) - onehot(labels)) / count``."""

    name = "grad.cross_entropy_backward"
    logits = operand_def(TensorType)
    labels = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = FORMAT
    traits = traits_def(Pure())

    def __init__(self, logits: SSAValue, labels: SSAValue):
        super().__init__(operands=[logits, labels], result_types=[logits.type])

    def verify_(self) -> None:
        _labels_check(self.logits, self.labels)
        _same_shape(self, "logits and their gradient", self.logits, self.result)


@irdl_op_definition
class SoftmaxBackwardOp(IRDLOperation):
    """``dx = y · (dy − Σ_dim dy·y)`` from the softmax output ``y`` and its gradient ``dy``."""

    name = "grad.softmax_backward"
    output = operand_def(TensorType)
    grad_output = operand_def(TensorType)
    dim = attr_def(IntegerAttr[I64])
    result = result_def(TensorType)
    assembly_format = FORMAT
    traits = traits_def(Pure())

    def __init__(self, output: SSAValue, grad_output: SSAValue, dim: int):
        super().__init__(
            operands=[output, grad_output], result_types=[output.type], attributes={"dim": IntegerAttr(dim, i64)}
        )

    def verify_(self) -> None:
        _same_shape(self, "softmax output, its gradient and the result", self.output, self.grad_output, self.result)
        normalize_dim(self.dim.value.data, len(tensor_shape(self.output)), "softmax dim")


@irdl_op_definition
class LayerNormBackwardOp(IRDLOperation):
    """The input gradient of ``nn.layer_norm`` (with the affine ``weight`` when given; the weight and bias
    gradients are ``nn`` reductions the pass writes beside it)."""

    name = "grad.layer_norm_backward"
    input = operand_def(TensorType)
    grad_output = operand_def(TensorType)
    weight = opt_operand_def(TensorType)
    normalized_shape = attr_def(DenseArrayBase.constr(i64))
    eps = attr_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = "$input `,` $grad_output (`weight` $weight^)? attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(
        self, input: SSAValue, grad_output: SSAValue, weight: SSAValue | None, normalized_shape: Sequence[int], eps: float
    ):
        super().__init__(
            operands=[input, grad_output, [weight] if weight is not None else []],
            result_types=[input.type],
            attributes={
                "normalized_shape": DenseArrayBase.from_list(i64, list(normalized_shape)),
                "eps": FloatAttr(float(eps), 64),
            },
        )

    def verify_(self) -> None:
        _same_shape(self, "layer_norm input, its gradient and the result", self.input, self.grad_output, self.result)
        x, norm = tensor_shape(self.input), int_list(self.normalized_shape)
        if not norm or x[len(x) - len(norm) :] != norm:
            raise VerifyException(f"normalized_shape {fmt_shape(norm)} is not a suffix of the input shape {fmt_shape(x)}")
        if self.weight is not None and tensor_shape(self.weight) != norm:
            raise VerifyException(f"weight shape {fmt_shape(tensor_shape(self.weight))} must equal {fmt_shape(norm)}")


class ActivationBackwardOp(IRDLOperation):
    """Base: ``dx = f'(x) · dy`` from the activation's input ``x``."""

    input = operand_def(TensorType)
    grad_output = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = FORMAT
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, grad_output: SSAValue, attributes: dict[str, Attribute] | None = None):
        super().__init__(operands=[input, grad_output], result_types=[input.type], attributes=attributes or {})

    def verify_(self) -> None:
        _same_shape(self, "activation input, its gradient and the result", self.input, self.grad_output, self.result)


@irdl_op_definition
class GeluBackwardOp(ActivationBackwardOp):
    """GELU's input gradient (``approximate`` = "none" or "tanh", as ``nn.gelu``)."""

    name = "grad.gelu_backward"
    approximate = attr_def(StringAttr)

    def __init__(self, input: SSAValue, grad_output: SSAValue, approximate: str):
        super().__init__(input, grad_output, {"approximate": StringAttr(approximate)})


@irdl_op_definition
class ReluBackwardOp(ActivationBackwardOp):
    """ReLU's input gradient: ``dy`` where ``x > 0``, else 0."""

    name = "grad.relu_backward"


@irdl_op_definition
class EmbeddingBackwardOp(IRDLOperation):
    """The table gradient of ``nn.embedding``: ``dy`` rows summed into the rows their ``indices`` name."""

    name = "grad.embedding_backward"
    grad_output = operand_def(TensorType)
    indices = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = FORMAT
    traits = traits_def(Pure())

    def __init__(self, grad_output: SSAValue, indices: SSAValue, table_type: Attribute):
        super().__init__(operands=[grad_output, indices], result_types=[table_type])

    def verify_(self) -> None:
        table = tensor_shape(self.result)
        if len(table) != 2 or tensor_shape(self.grad_output) != (*tensor_shape(self.indices), table[1]):
            raise VerifyException(
                f"gradient {fmt_shape(tensor_shape(self.grad_output))} must be indices "
                f"{fmt_shape(tensor_shape(self.indices))} by the table width of {fmt_shape(table)}"
            )


@irdl_op_definition
class CosineBackwardOp(IRDLOperation):
    """The gradients of ``attn.cosine`` on q, k, v and m, from its operands and the output gradient."""

    name = "grad.cosine_backward"
    query = operand_def(TensorType)
    key = operand_def(TensorType)
    value = operand_def(TensorType)
    m = operand_def(TensorType)
    grad_output = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    causal = attr_def(BoolAttr)
    form = attr_def(StringAttr)
    grad_query = result_def(TensorType)
    grad_key = result_def(TensorType)
    grad_value = result_def(TensorType)
    grad_m = result_def(TensorType)
    assembly_format = (
        "$query `,` $key `,` $value `,` $m `,` $grad_output (`mask` $mask^)? attr-dict `:` functional-type(operands, results)"
    )
    traits = traits_def(Pure())

    def __init__(self, q: SSAValue, k: SSAValue, v: SSAValue, m: SSAValue, grad_output: SSAValue,
                 mask: SSAValue | None, causal: bool, form: str):
        super().__init__(
            operands=[q, k, v, m, grad_output, [mask] if mask is not None else []],
            result_types=[q.type, k.type, v.type, m.type],
            attributes={"causal": BoolAttr.from_bool(causal), "form": StringAttr(form)},
        )

    def verify_(self) -> None:
        for operand, result in zip((self.query, self.key, self.value, self.m), self.results):
            if operand.type != result.type:
                raise VerifyException(f"gradient type {result.type} must equal its operand's type {operand.type}")
        q, v = tensor_shape(self.query), tensor_shape(self.value)
        expected = (*q[:-1], v[-1])
        if tensor_shape(self.grad_output) != expected:
            raise VerifyException(f"output gradient {fmt_shape(tensor_shape(self.grad_output))} must be {fmt_shape(expected)}")


@irdl_op_definition
class SgdOp(IRDLOperation):
    """One SGD step on a parameter, as ``torch.optim.SGD`` (no dampening, no weight decay, not Nesterov).

    With ``momentum`` > 0 the op takes and returns the velocity: ``v' = momentum · v + g``, ``p' = p − lr · v'``
    (a zero velocity makes the first step ``p − lr · g``, as torch's lazily created buffer). Without: ``p − lr · g``.
    """

    name = "grad.sgd"
    param = operand_def(TensorType)
    grad = operand_def(TensorType)
    velocity = var_operand_def(TensorType)
    lr = attr_def(FloatAttr)
    momentum = attr_def(FloatAttr)
    updated = var_result_def(TensorType)
    assembly_format = "$param `,` $grad (`velocity` $velocity^)? attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, param: SSAValue, grad: SSAValue, velocity: SSAValue | None, lr: float, momentum: float):
        velocities = [velocity] if velocity is not None else []
        super().__init__(
            operands=[param, grad, velocities],
            result_types=[[param.type] * (1 + len(velocities))],
            attributes={"lr": FloatAttr(float(lr), 64), "momentum": FloatAttr(float(momentum), 64)},
        )

    def verify_(self) -> None:
        if self.param.type != self.grad.type:
            raise VerifyException(f"gradient type {self.grad.type} must equal the parameter type {self.param.type}")
        if not is_float(element_type(self.param)):
            raise VerifyException(f"only float parameters are trained, got {element_type(self.param)}")
        if self.lr.value.data <= 0:
            raise VerifyException(f"lr must be positive, got {self.lr.value.data}")
        momentum = self.momentum.value.data
        if not 0 <= momentum < 1:
            raise VerifyException(f"momentum must be in [0, 1), got {momentum}")
        if (momentum > 0) != (len(self.velocity) == 1) or len(self.velocity) > 1:
            raise VerifyException("a momentum > 0 takes one velocity operand, momentum 0 none")
        if len(self.updated) != 1 + len(self.velocity):
            raise VerifyException(f"expected {1 + len(self.velocity)} results (parameter, velocity), got {len(self.updated)}")
        for value in (*self.velocity, *self.updated):
            if value.type != self.param.type:
                raise VerifyException(f"velocity and results must have the parameter type {self.param.type}, got {value.type}")


GRAD_OPS: list[type[Operation]] = [
    CrossEntropyOp,
    CrossEntropyBackwardOp,
    SoftmaxBackwardOp,
    LayerNormBackwardOp,
    GeluBackwardOp,
    ReluBackwardOp,
    EmbeddingBackwardOp,
    CosineBackwardOp,
    SgdOp,
]

GRAD = Dialect("grad", GRAD_OPS, [])
