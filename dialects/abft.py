"""The ``abft`` dialect: attention and linear layers that check themselves (algorithm-based fault tolerance).

``abft-weave`` turns ``attn.sdpa`` into ``abft.sdpa`` and, on request, static ``nn.linear`` into
``abft.linear``. Each carries what to check, a relative tolerance and what to do on a detection; the
runtime (runtime/abft_kernels.py) computes the same value as the unchecked op and reports every detection
with the op's module path and the invariant that fired (docs/methods/abft.md).

```mlir
%o = abft.sdpa flash %q, %k, %v mask %m tol 1.0e-05 block 128 on_fault "raise" {scale = 0.17677669529663687 : f64, causal = false}
       : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x9x9xf32>)
       -> tensor<2x12x9x32xf32> loc("encoder.layer.0.attention.self")
%y = abft.linear %x, %w, %b tol 1.0e-04 on_fault "raise" : (...) -> tensor<2x9x384xf32>
```
"""

from __future__ import annotations

from xdsl.dialects.builtin import BoolAttr, FloatAttr, IntegerAttr, StringAttr, TensorType, i64
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    attr_def,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from dialects.nn import verify_attention_operands
from dialects.shapes import element_type, expect_result_shape, expect_same_element_type, fmt_shape, is_float, tensor_shape

CHECKS = ("flash", "per-gemm", "both")
ON_FAULT = ("raise", "recompute", "count")
MAX_TOL = 0.5


def _verify_policy(tol: float, on_fault: str) -> None:
    if not 0.0 < tol <= MAX_TOL:
        raise VerifyException(f"tol is relative and must be in (0, {MAX_TOL}], got {tol}")
    if on_fault not in ON_FAULT:
        raise VerifyException(f"on_fault must be one of {', '.join(ON_FAULT)}, got \"{on_fault}\"")


@irdl_op_definition
class SdpaOp(IRDLOperation):
    """``attn.sdpa`` computed blockwise with an online softmax and checked once per query row.

    Same operands, ``scale``, ``causal`` and mask semantics as ``attn.sdpa``. ``check`` picks the
    invariants: ``flash`` (the online output checksum, the score row sums and an independent normaliser),
    ``per-gemm`` (classic checksums on each block's Q·Kᵀ and P·V) or ``both``. ``tol`` is relative; ``block``
    is the number of keys per step of the online softmax; ``on_fault`` is ``raise``, ``recompute`` (re-run
    the failing block of query rows and return the fault-free output) or ``count`` (record and go on).
    """

    name = "abft.sdpa"
    query = operand_def(TensorType)
    key = operand_def(TensorType)
    value = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    check = prop_def(StringAttr)
    tol = prop_def(FloatAttr)
    block = prop_def(IntegerAttr)
    on_fault = prop_def(StringAttr)
    scale = attr_def(FloatAttr)
    causal = attr_def(BoolAttr)
    result = result_def(TensorType)
    assembly_format = (
        "$check $query `,` $key `,` $value (`mask` $mask^)? `tol` $tol `block` $block `on_fault` $on_fault "
        "attr-dict `:` functional-type(operands, results)"
    )
    traits = traits_def(Pure())

    def __init__(
        self,
        query: SSAValue,
        key: SSAValue,
        value: SSAValue,
        mask: SSAValue | None,
        scale: float,
        causal: bool,
        result_type: Attribute,
        check: str = "flash",
        tol: float = 1e-5,
        block: int = 128,
        on_fault: str = "raise",
    ):
        super().__init__(
            operands=[query, key, value, [mask] if mask else []],
            result_types=[result_type],
            properties={
                "check": StringAttr(check),
                "tol": FloatAttr(float(tol), 64),
                "block": IntegerAttr(block, i64),
                "on_fault": StringAttr(on_fault),
            },
            attributes={"scale": FloatAttr(float(scale), 64), "causal": BoolAttr.from_bool(causal)},
        )

    def verify_(self) -> None:
        verify_attention_operands(self, self.query, self.key, self.value, self.mask)
        if self.causal.value.data and self.mask is not None:
            raise VerifyException("a causal attention takes no explicit mask: fold the mask or drop `causal`")
        if self.check.data not in CHECKS:
            raise VerifyException(f"check must be one of {', '.join(CHECKS)}, got \"{self.check.data}\"")
        if self.block.value.data < 1:
            raise VerifyException(f"block must be at least 1 key, got {self.block.value.data}")
        _verify_policy(self.tol.value.data, self.on_fault.data)


@irdl_op_definition
class CheckedLinearOp(IRDLOperation):
    """``nn.linear`` (``y = x Wᵀ + b``) with classic row and column checksums, W's taken from the stored weight.

    ``tol`` is relative; ``on_fault`` as ``abft.sdpa`` (``recompute`` re-runs the layer).
    """

    name = "abft.linear"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    tol = prop_def(FloatAttr)
    on_fault = prop_def(StringAttr)
    result = result_def(TensorType)
    assembly_format = (
        "$input `,` $weight (`,` $bias^)? `tol` $tol `on_fault` $on_fault attr-dict `:` functional-type(operands, results)"
    )
    traits = traits_def(Pure())

    def __init__(
        self,
        input: SSAValue,
        weight: SSAValue,
        bias: SSAValue | None,
        result_type: Attribute,
        tol: float = 1e-5,
        on_fault: str = "raise",
    ):
        super().__init__(
            operands=[input, weight, [bias] if bias else []],
            result_types=[result_type],
            properties={"tol": FloatAttr(float(tol), 64), "on_fault": StringAttr(on_fault)},
        )

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
        if not is_float(element_type(self.input)):
            raise VerifyException(f"a checked linear takes floating-point operands, got {element_type(self.input)}")
        _verify_policy(self.tol.value.data, self.on_fault.data)


ABFT = Dialect("abft", [SdpaOp, CheckedLinearOp], [])
