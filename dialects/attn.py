"""The ``attn`` dialect: attention as first-class ops, the level every attention transform works on.

``attn-raise`` produces ``attn.sdpa`` from whatever form the model wrote attention in (a fused SDPA call,
eager matmul/softmax/matmul, ``nn.MultiheadAttention``). Transforms then rewrite it (KV clipping, cosine
attention, pruning, ABFT checksums) and target lowerings consume it.

```mlir
%o = attn.sdpa %q, %k, %v mask %m {scale = 0.1767766952966369 : f64, causal = false}
       : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x9x9xf32>)
       -> tensor<2x12x9x32xf32> loc("encoder.layer.0.attention.self")
```
"""

from __future__ import annotations

from xdsl.dialects.builtin import BoolAttr, FloatAttr, StringAttr, TensorType
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    attr_def,
    irdl_op_definition,
    operand_def,
    opt_attr_def,
    opt_operand_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from dialects.nn import verify_attention_operands
from dialects.shapes import broadcast_shapes, element_type, fmt_shape, is_bool, is_float, tensor_shape

COSINE_FORMS = ("chunked", "recurrent")


def clipformer_errors(alpha: float, beta: float, alpha_name: str = "alpha", beta_name: str = "beta") -> list[str]:
    """The one check of ClipFormer's operating point, shared by attn.kv_clip, xbar.write, kv-clip and the device:
    alpha ≥ 0 (a dead zone of alpha·g_min) and beta in (0, 1] (a ceiling of beta·g_max)."""
    errors = []
    if not alpha >= 0:
        errors.append(f"{alpha_name} must be >= 0 (a dead zone of alpha·g_min), got {alpha}")
    if not 0 < beta <= 1:
        errors.append(f"{beta_name} must be in (0, 1] (a ceiling of beta·g_max), got {beta}")
    return errors


def attention_attributes(scale: float, causal: bool, softcap: float | None) -> dict[str, Attribute]:
    """The attribute dict shared by ``attn.sdpa`` and ``attn.softmax`` (``softcap`` only when set)."""
    attributes: dict[str, Attribute] = {"scale": FloatAttr(float(scale), 64), "causal": BoolAttr.from_bool(causal)}
    if softcap is not None:
        attributes["softcap"] = FloatAttr(float(softcap), 64)
    return attributes


def verify_softcap(softcap: FloatAttr | None) -> None:
    if softcap is not None and not softcap.value.data > 0:
        raise VerifyException(f"softcap must be positive, got {softcap.value.data}")


def softcap_value(op: IRDLOperation) -> float | None:
    """The soft-capping constant of an ``attn.sdpa``/``attn.softmax`` (None when the scores are not capped)."""
    softcap = op.attributes.get("softcap")
    return softcap.value.data if isinstance(softcap, FloatAttr) else None


class AttentionOp(IRDLOperation):
    """What ``attn.sdpa`` and ``attn.cosine`` share: q, k, v, an optional mask, ``causal``, and their checks.

    Passes that treat every attention alike (kv-clip, pruning, a target lowering) match on this class. The
    operand and attribute definitions stay on each op, in their printed order: xDSL orders inherited
    definitions after the subclass's own, which would move q, k and v behind ``m`` in ``attn.cosine``.
    """

    @property
    def is_causal(self) -> bool:
        causal: BoolAttr = getattr(self, "causal")
        return bool(causal.value.data)

    def attention_operands(self) -> tuple[SSAValue, SSAValue, SSAValue, SSAValue | None]:
        """(q, k, v, mask); the mask is None when absent."""
        q, k, v = self.operands[:3]
        mask = getattr(self, "mask")
        return q, k, v, mask

    def verify_attention(self) -> None:
        verify_attention_operands(self, *self.attention_operands())


@irdl_op_definition
class SdpaOp(AttentionOp):
    """Scaled dot-product attention: ``softmax(scale · Q Kᵀ + mask) V`` over the last two dimensions.

    Operands are q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev) and an optional mask broadcastable to
    (..., Lq, Lk): i1 keeps the ``true`` positions, a float mask is added to the scores. ``causal``
    additionally hides keys after the query position (top-left aligned, as PyTorch's ``is_causal``). The
    optional ``softcap`` c caps the scaled scores before the mask, ``c · tanh(scale · Q Kᵀ / c)`` (Gemma-2's
    logit soft-capping).

    ```mlir
    %o = attn.sdpa %q, %k, %v {scale = 0.125 : f64, causal = true}
           : (tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>) -> tensor<1x4x16x64xf32>
    ```
    """

    name = "attn.sdpa"
    query = operand_def(TensorType)
    key = operand_def(TensorType)
    value = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    scale = attr_def(FloatAttr)
    causal = attr_def(BoolAttr)
    softcap = opt_attr_def(FloatAttr)
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
        scale: float,
        causal: bool,
        result_type: Attribute,
        softcap: float | None = None,
    ):
        super().__init__(
            operands=[query, key, value, [mask] if mask else []],
            result_types=[result_type],
            attributes=attention_attributes(scale, causal, softcap),
        )

    def verify_(self) -> None:
        verify_softcap(self.softcap)
        self.verify_attention()
        if self.causal.value.data and self.mask is not None:
            raise VerifyException("a causal attention takes no explicit mask: fold the mask or drop `causal`")


@irdl_op_definition
class CosineOp(AttentionOp):
    """Cosine linear attention (Cottention): per head, N(q)·N(k) similarities with no softmax and no 1/√d.

    ``m`` holds one learned scalar per head, used as s = sigmoid(m). Bidirectional: O = N(Q)(N(K)ᵀV) /
    max(1, L^s), L the number of kept (non-padding) keys. Causal: the value at 1-based key position j is
    divided by max(1, j^s) and query i sees keys j ≤ i. The optional i1 ``mask`` marks the kept keys (a
    padding mask, or padding and causal); ``form`` picks the runtime kernel for causal attention.

    ```mlir
    %o = attn.cosine %q, %k, %v, %m mask %keep {causal = false, form = "chunked"}
           : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<12xf32>,
              tensor<2x1x9x9xi1>) -> tensor<2x12x9x32xf32>
    ```
    """

    name = "attn.cosine"
    query = operand_def(TensorType)
    key = operand_def(TensorType)
    value = operand_def(TensorType)
    m = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    causal = attr_def(BoolAttr)
    form = attr_def(StringAttr)
    result = result_def(TensorType)
    assembly_format = (
        "$query `,` $key `,` $value `,` $m (`mask` $mask^)? attr-dict `:` functional-type(operands, results)"
    )
    traits = traits_def(Pure())

    def __init__(
        self,
        query: SSAValue,
        key: SSAValue,
        value: SSAValue,
        m: SSAValue,
        mask: SSAValue | None,
        causal: bool,
        form: str,
        result_type: Attribute,
    ):
        super().__init__(
            operands=[query, key, value, m, [mask] if mask else []],
            result_types=[result_type],
            attributes={"causal": BoolAttr.from_bool(causal), "form": StringAttr(form)},
        )

    def verify_(self) -> None:
        q = tensor_shape(self.query)
        if len(q) != 4:
            raise VerifyException(f"cosine attention takes (batch, heads, length, dim) operands, got query {fmt_shape(q)}")
        self.verify_attention()
        if tensor_shape(self.m) != (q[1],):
            raise VerifyException(f"m must hold one value per head ({q[1]}), got {fmt_shape(tensor_shape(self.m))}")
        if element_type(self.m) != element_type(self.query):
            raise VerifyException(f"m must have the query's element type {element_type(self.query)}")
        if self.mask is not None and not is_bool(element_type(self.mask)):
            raise VerifyException(f"cosine attention takes an i1 keep-mask, got {element_type(self.mask)}")
        if self.form.data not in COSINE_FORMS:
            raise VerifyException(f"form must be one of {', '.join(COSINE_FORMS)}, got \"{self.form.data}\"")


@irdl_op_definition
class KvClipOp(IRDLOperation):
    """ClipFormer's transform of a K or V operand before it is written into crossbars (docs/methods/clipformer.md).

    Defined on conductances: ``G1 = max(G - alpha·g_min, g_min)``, ``G2 = min(G1, beta·g_max)``. The op
    carries the mapping that gives it meaning: values map linearly to [g_min, g_max] (siemens) by magnitude,
    one scale ``max|x|`` per stored matrix (the last two dims, i.e. per batch item and head), the sign on a
    differential pair. In value units (the reference target) it is a soft threshold of
    ``alpha·g_min/(g_max-g_min)·max|x|`` and a ceiling at ``(beta·g_max-g_min)/(g_max-g_min)·max|x|``.
    alpha = 0, beta = 1 is the identity. A crossbar lowering folds it into the write of its operand.

    ```mlir
    %kc = attn.kv_clip %k {alpha = 2.0 : f64, beta = 0.25 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64}
            : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
    ```
    """

    name = "attn.kv_clip"
    input = operand_def(TensorType)
    alpha = attr_def(FloatAttr)
    beta = attr_def(FloatAttr)
    g_min = attr_def(FloatAttr)
    g_max = attr_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, alpha: float, beta: float, g_min: float, g_max: float):
        super().__init__(
            operands=[input],
            result_types=[input.type],
            attributes={
                "alpha": FloatAttr(float(alpha), 64),
                "beta": FloatAttr(float(beta), 64),
                "g_min": FloatAttr(float(g_min), 64),
                "g_max": FloatAttr(float(g_max), 64),
            },
        )

    def verify_(self) -> None:
        shape = tensor_shape(self.input)
        if len(shape) < 2:
            raise VerifyException(f"kv_clip acts on stored matrices (..., rows, cols), got {fmt_shape(shape)}")
        if not is_float(element_type(self.input)):
            raise VerifyException(f"kv_clip takes a floating-point tensor, got {element_type(self.input)}")
        if self.result.type != self.input.type:
            raise VerifyException(f"result type {self.result.type} must equal the operand type {self.input.type}")
        alpha, beta = self.alpha.value.data, self.beta.value.data
        g_min, g_max = self.g_min.value.data, self.g_max.value.data
        for error in clipformer_errors(alpha, beta):
            raise VerifyException(error)
        if not 0 <= g_min < g_max:
            raise VerifyException(f"need 0 <= g_min < g_max, got g_min = {g_min}, g_max = {g_max}")


@irdl_op_definition
class SoftmaxOp(IRDLOperation):
    """The digital middle of attention: ``softmax(scale · S + mask)`` over the last dimension of scores S.

    What remains of ``attn.sdpa`` when a target computes Q·Kᵀ and P·V itself (crossbar MVMs): the same
    ``scale``, ``causal``, ``softcap`` and mask semantics as ``attn.sdpa`` (i1 keeps ``true`` positions, a
    float mask is added; ``causal`` hides keys after the query position).

    ```mlir
    %p = attn.softmax %s mask %m {scale = 0.125 : f64, causal = false}
           : (tensor<1x12x16x16xf32>, tensor<1x1x16x16xf32>) -> tensor<1x12x16x16xf32>
    ```
    """

    name = "attn.softmax"
    scores = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    scale = attr_def(FloatAttr)
    causal = attr_def(BoolAttr)
    softcap = opt_attr_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = "$scores (`mask` $mask^)? attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, scores: SSAValue, mask: SSAValue | None, scale: float, causal: bool, softcap: float | None = None):
        super().__init__(
            operands=[scores, [mask] if mask else []],
            result_types=[scores.type],
            attributes=attention_attributes(scale, causal, softcap),
        )

    def verify_(self) -> None:
        verify_softcap(self.softcap)
        shape = tensor_shape(self.scores)
        if len(shape) < 2:
            raise VerifyException(f"scores must be (..., queries, keys), got {fmt_shape(shape)}")
        if not is_float(element_type(self.scores)):
            raise VerifyException(f"scores must be floating point, got {element_type(self.scores)}")
        if self.scale.value.data <= 0:
            raise VerifyException(f"scale must be positive, got {self.scale.value.data}")
        if self.result.type != self.scores.type:
            raise VerifyException(f"result type {self.result.type} must equal the scores type {self.scores.type}")
        if self.mask is not None:
            mask_type = element_type(self.mask)
            if not is_bool(mask_type) and mask_type != element_type(self.scores):
                raise VerifyException(
                    f"mask must be i1 (keep) or {element_type(self.scores)} (additive, like the scores), got {mask_type}"
                )
            mask_shape = broadcast_shapes(tensor_shape(self.mask), shape)
            if mask_shape != shape:
                raise VerifyException(
                    f"mask {fmt_shape(tensor_shape(self.mask))} does not broadcast to the scores {fmt_shape(shape)}"
                )
        if self.causal.value.data and self.mask is not None:
            raise VerifyException("a causal softmax takes no explicit mask: fold the mask or drop `causal`")


ATTN = Dialect("attn", [SdpaOp, CosineOp, KvClipOp, SoftmaxOp], [])
