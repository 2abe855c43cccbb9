"""``attn-cosine``: rewrite softmax attention (``attn.sdpa``) into cosine linear attention (``attn.cosine``).

Cottention (docs/methods/cottention.md): per head, N(x) = x/‖x‖₂ over the head dimension, no softmax and no 1/√d, and a
learned per-head scalar m (a new parameter ``<module path>.cosine_m``, initialised to 0.5) used as
s = sigmoid(m). Bidirectional attention divides by max(1, L^s) with L the number of non-padding tokens;
causal attention divides the value at key position j by max(1, j^s).

Masks: a boolean keep-mask, or an additive mask built as ``where(keep, 0, <very negative>)``, is split into
its ``and`` terms at compile time: a constant causal triangle makes the cosine attention causal, terms that
vary along keys only are key padding (honoured exactly), all-true constants drop out. Anything else (an
additive bias such as a relative-position bias or ALiBi, a sliding window) cannot be expressed in the cosine
form: that attention is left untouched and a remark says why. A soft-cap is dropped, with a remark.

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
from dialects.shapes import broadcast_shapes, element_type, fmt_shape, tensor_shape
from passes.masks import and_terms, constant_bools, is_all_true, is_causal_triangle, is_key_padding, keep_mask_of

TRAINABLE_GROUP = "cosine"  # the fitting layer's name for the per-head m (attnc recover fits it)
COSINE_M_INIT = 0.5
CAUSAL_FORMS = ("chunked", "recurrent")



def split_mask(mask: SSAValue, square: bool) -> tuple[list[SSAValue], bool] | str:
    """The key-padding terms of an attention mask and whether it holds the causal triangle, or why it cannot
    be expressed in cosine attention (which honours key padding and causality, nothing else).

    Constant terms are judged here; a term computed from the inputs that spans the query dimension cannot
    be, so it is kept and the runtime checks that it is key padding (an error at run time if it is not).
    """
    keep = keep_mask_of(mask)
    if keep is None:
        return "an additive bias mask cannot be expressed in cosine attention (only padding/causal masks)"
    padding, causal = [], False
    for term in and_terms(keep):
        if is_all_true(term):
            continue
        if square and is_causal_triangle(term):
            causal = True
        elif is_key_padding(term):
            padding.append(term)
        elif constant_bools(term) is not None:
            return "a constant mask that is neither the causal triangle nor key padding (a sliding window?)"
        else:
            padding.append(term)
    return padding, causal


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
        keep, causal, new_ops = None, bool(op.causal.value.data) or self.force_causal, []
        if attn.softcap_value(op) is not None:
            remark("attn-cosine", op, "soft-capped scores: cosine attention has no logits to cap; the cap is dropped")
        if op.mask is not None:
            split = split_mask(op.mask, q[-2] == tensor_shape(op.key)[-2])
            if isinstance(split, str):
                remark("attn-cosine", op, split)
                return
            padding, mask_causal = split
            causal = causal or mask_causal
            for term in padding:
                if not is_key_padding(term):
                    spelled = fmt_shape(tensor_shape(term))
                    why = f"the mask term of shape {spelled} spans queries: checked at run time to be key padding"
                    remark("attn-cosine", op, why)
            if padding:
                keep = padding[0]
                for other in padding[1:]:
                    shape = broadcast_shapes(tensor_shape(keep), tensor_shape(other))
                    assert shape is not None  # both terms broadcast onto the scores
                    both = nn.LogicalAndOp(keep, other, TensorType(element_type(keep), shape))
                    both.location = op.location
                    new_ops.append(both)
                    keep = both.result
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
            causal,
            self.causal_form,
            op.result.type,
        )
        cosine.location = op.location
        param.result.name_hint = "cosine_m"
        cosine.result.name_hint = op.result.name_hint
        rewriter.replace(op, [param, *new_ops, cosine])


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
