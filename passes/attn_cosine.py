"""``attn-cosine``: rewrite softmax attention (``attn.sdpa``) into cosine linear attention (``attn.cosine``).

Cottention (docs/methods/cottention.md): per head, N(x) = x/‖x‖₂ over the head dimension, no softmax and no 1/√d, and a
learned per-head scalar m (a new parameter ``<module path>.cosine_m``, initialised to 0.5) used as
s = sigmoid(m). Bidirectional attention divides by max(1, L^s) with L the number of non-padding tokens;
causal attention divides the value at key position j by max(1, j^s).

Masks: a boolean keep-mask, or an additive mask built as ``where(keep, 0, <very negative>)``, becomes the
cosine op's keep-mask (padding is honoured exactly). An arbitrary additive bias (e.g. a relative position
bias) cannot be expressed in the cosine form: that attention is left untouched and a remark says why.

Options: ``layers`` — a regular expression on the module path (empty: every layer); ``causal_form`` —
the runtime kernel for causal attention: ``chunked`` (default) or ``recurrent``; ``causal`` — treat every
rewritten attention as causal, for decoders that wrote their causal mask out explicitly (Hugging Face
GPT-2/Llama); the runtime checks that such a mask really is causal plus padding.

```mlir
// before
%o = attn.sdpa %q, %k, %v {scale = 0.125 : f64, causal = true} : (...) -> tensor<1x4x16x64xf32> loc("h.0.attn")
// after
%m = nn.param @h.0.attn.cosine_m {init = 5.000000e-01 : f64} : tensor<4xf32>
%o = attn.cosine %q, %k, %v, %m {causal = true, form = "chunked"} : (...) -> tensor<1x4x16x64xf32> loc("h.0.attn")
```
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.transforms.dead_code_elimination import dce

from dialects import attn, nn
from dialects.diagnostics import pass_failure, remark
from dialects.locations import check_layers_pattern, module_path_of, path_matches
from dialects.shapes import element_type, is_bool, tensor_shape
from passes.matchers import defining_op, scalar_constant

TRAINABLE_GROUP = "cosine"  # the fitting layer's name for the per-head m (attnc recover fits it)
COSINE_M_INIT = 0.5
MASKED_OUT_BELOW = -1.0e4
CAUSAL_FORMS = ("chunked", "recurrent")



def keep_mask_of(mask: SSAValue) -> SSAValue | None:
    """The boolean keep-mask an attention mask encodes, or None when it is an arbitrary additive bias."""
    if is_bool(element_type(mask)):
        return mask
    producer = defining_op(mask)
    if isinstance(producer, nn.WhereOp) and is_bool(element_type(producer.condition)):
        keep_value, drop_value = scalar_constant(producer.lhs), scalar_constant(producer.rhs)
        if keep_value == 0.0 and drop_value is not None and drop_value <= MASKED_OUT_BELOW:
            return producer.condition
    return None


@dataclass
class SdpaToCosine(RewritePattern):
    layers: str
    causal_form: str
    force_causal: bool
    taken_names: set[str]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.SdpaOp, rewriter: PatternRewriter) -> None:
        if not path_matches(op, self.layers):
            return
        q = tensor_shape(op.query)
        if len(q) != 4:
            remark("attn-cosine", op, f"needs (batch, heads, length, dim) operands to give each head its m; got rank {len(q)}")
            return
        keep = None
        if op.mask is not None:
            keep = keep_mask_of(op.mask)
            if keep is None:
                remark(
                    "attn-cosine", op, "an additive bias mask cannot be expressed in cosine attention (only padding/causal masks)"
                )
                return
        name = f"{module_path_of(op) or 'attention'}.cosine_m"
        suffix = 1
        while name in self.taken_names:  # two attentions without a module path must not share one m
            name, suffix = f"{module_path_of(op) or 'attention'}_{suffix}.cosine_m", suffix + 1
        self.taken_names.add(name)
        m_type = TensorType(element_type(op.query), [q[1]])
        param = nn.ParamOp(name, m_type, init=COSINE_M_INIT, trainable=TRAINABLE_GROUP)
        param.location = op.location
        cosine = attn.CosineOp(
            op.query,
            op.key,
            op.value,
            param.result,
            keep,
            bool(op.causal.value.data) or self.force_causal,
            self.causal_form,
            op.result.type,
        )
        cosine.location = op.location
        param.result.name_hint = "cosine_m"
        cosine.result.name_hint = op.result.name_hint
        rewriter.replace(op, [param, cosine])


@dataclass(frozen=True)
class AttnCosinePass(ModulePass):
    """Rewrite ``attn.sdpa`` into ``attn.cosine`` with a new per-head m; see the module docstring."""

    name = "attn-cosine"

    layers: str = ""
    causal_form: str = "chunked"
    causal: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        check_layers_pattern(self.name, self.layers)
        if self.causal_form not in CAUSAL_FORMS:
            raise pass_failure("attn-cosine", f"causal-form must be one of {', '.join(CAUSAL_FORMS)}, got '{self.causal_form}'")
        taken = {p.key for p in op.walk() if isinstance(p, nn.ParamOp)}
        pattern = SdpaToCosine(self.layers, self.causal_form, self.causal, taken)
        PatternRewriteWalker(pattern, apply_recursively=False).rewrite_module(op)
        dce(op)
