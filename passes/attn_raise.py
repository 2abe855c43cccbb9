"""``attn-raise``: recognise attention wherever the model wrote it and replace it with ``attn.sdpa``.

Three forms are raised:

* a fused ``nn.sdpa`` (``torch.nn.functional.scaled_dot_product_attention``), with or without a mask,
  causal or not;
* eager attention ``matmul(q, kᵀ) → [scale] → [additive mask | masked fill] → softmax(-1) → [dropout] →
  matmul(·, v)`` as Hugging Face BERT, GPT-2 and Llama write it, with the scale on the scores (``mul`` or
  ``div`` by a constant) or on q;
* ``nn.MultiheadAttention``, which traces to the eager form on 3-d (batch·heads) tensors.

Invariants: the raised program computes the same function (checked numerically in the tests); attention
whose probabilities are used elsewhere (returned attention weights), a softmax over another dimension, or a
matmul chain whose dimensions do not form q·kᵀ is left untouched; dead ops are removed afterwards.

```mlir
// before
%kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x9x16xf32>) -> tensor<2x4x16x9xf32>
%s = nn.matmul %q, %kt : (tensor<2x4x9x16xf32>, tensor<2x4x16x9xf32>) -> tensor<2x4x9x9xf32>
%c = nn.constant dense<0.25> : tensor<f32>
%ss = nn.mul %s, %c : (tensor<2x4x9x9xf32>, tensor<f32>) -> tensor<2x4x9x9xf32>
%p = nn.softmax %ss {dim = -1 : i64} : (tensor<2x4x9x9xf32>) -> tensor<2x4x9x9xf32>
%o = nn.matmul %p, %v : (tensor<2x4x9x9xf32>, tensor<2x4x9x16xf32>) -> tensor<2x4x9x16xf32>
// after
%o = attn.sdpa %q, %k, %v {scale = 2.500000e-01 : f64, causal = false} : (...) -> tensor<2x4x9x16xf32>
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp, TensorType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.transforms.dead_code_elimination import dce

from dialects import attn, nn
from dialects.locations import module_path_of
from dialects.shapes import broadcast_shapes, element_type, is_bool, tensor_shape
from passes.masks import MASKED_OUT_BELOW, is_causal_triangle, keep_mask_of
from passes.matchers import defining_op, has_single_use, scalar_constant, untransposed_last_two


class RaiseFusedSdpa(RewritePattern):
    """``nn.sdpa`` → ``attn.sdpa``, making PyTorch's default scale 1/sqrt(E) explicit."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.SdpaOp, rewriter: PatternRewriter) -> None:
        if op.dropout_p.value.data != 0.0:
            return
        if op.causal.value.data and op.mask is not None:
            return  # attn.sdpa takes causal or a mask, not both (PyTorch rejects the pair too)
        scale = op.scale.value.data if op.scale is not None else 1.0 / math.sqrt(tensor_shape(op.query)[-1])
        raised = attn.SdpaOp(
            op.query, op.key, op.value, op.mask, scale, bool(op.causal.value.data), op.result.type
        )
        raised.location = op.location
        rewriter.replace(op, raised)


@dataclass
class _MaskTerm:
    """One term peeled off the scores: an additive float tensor, or a boolean keep/drop mask with its fill."""

    value: SSAValue
    kind: str  # "add", "keep" (where(c, s, fill)) or "drop" (where(c, fill, s))
    fill: float = 0.0
    lifted: bool = False  # found below a scores reshape: has the flat (batch·heads) shape


@dataclass
class _Scores:
    """What was peeled off the scores on the way from the softmax back to q·kᵀ."""

    query: SSAValue
    key: SSAValue
    scale: float
    terms: list[_MaskTerm] = field(default_factory=list)
    softcap: float | None = None
    heads: tuple[int, ...] | None = None  # (batch, heads) when q·kᵀ was computed on flattened (batch·heads) operands


MAX_PEEL_DEPTH = 12


def peel_scores(scores: SSAValue) -> _Scores | None:
    """Walks back from the softmax input to q·kᵀ.

    Accepted, outermost first: any number of additive terms and masked fills (``where(c, s, -big)``), one
    reshape that splits a flat (batch·heads) dimension (BLOOM, DeBERTa), a soft-cap ``c·tanh(s/c)``, a scale
    (``mul``/``div`` by a positive constant, on the scores, on q or on kᵀ), and ``matmul(q, kᵀ)``.
    """
    return _peel(scores, 0, False)


def _peel(scores: SSAValue, depth: int, lifted: bool) -> _Scores | None:
    if depth > MAX_PEEL_DEPTH:
        return None
    op = defining_op(scores)
    single = has_single_use(scores)
    if single and isinstance(op, nn.AddOp):
        for term, rest in ((op.rhs, op.lhs), (op.lhs, op.rhs)):
            if _is_additive_term(term, scores):
                inner = _peel(rest, depth + 1, lifted)
                if inner is not None:
                    inner.terms.append(_MaskTerm(term, "add", lifted=lifted))
                    return inner
        return None
    if single and isinstance(op, nn.WhereOp):
        lhs_fill, rhs_fill = scalar_constant(op.lhs), scalar_constant(op.rhs)
        if lhs_fill is not None and lhs_fill <= MASKED_OUT_BELOW and op.rhs.type == scores.type:
            kind, fill, rest = "drop", lhs_fill, op.rhs
        elif rhs_fill is not None and rhs_fill <= MASKED_OUT_BELOW and op.lhs.type == scores.type:
            kind, fill, rest = "keep", rhs_fill, op.lhs
        else:
            return None
        if broadcast_shapes(tensor_shape(op.condition), tensor_shape(scores)) != tensor_shape(scores):
            return None
        inner = _peel(rest, depth + 1, lifted)
        if inner is not None:
            inner.terms.append(_MaskTerm(op.condition, kind, fill, lifted))
        return inner
    if single and isinstance(op, nn.ReshapeOp) and not lifted:
        flat, split = tensor_shape(op.input), tensor_shape(scores)
        if len(flat) == 3 and len(split) == 4 and flat[1:] == split[2:] and flat[0] == split[0] * split[1]:
            inner = _peel(op.input, depth + 1, True)
            if inner is not None:
                inner.heads = split[:2]
            return inner
        return None
    softcap, rest = _peel_softcap(scores)
    inner = _peel_core(rest)
    if inner is not None:
        inner.softcap = softcap
    return inner


def _peel_softcap(scores: SSAValue) -> tuple[float | None, SSAValue]:
    """Strips ``tanh(s / c) * c`` (or ``tanh(s * (1/c)) * c``); (None, scores) when the scores are not capped."""
    outer = defining_op(scores)
    if not isinstance(outer, nn.MulOp) or not has_single_use(scores):
        return None, scores
    for tanh_value, factor in ((outer.lhs, outer.rhs), (outer.rhs, outer.lhs)):
        cap = scalar_constant(factor)
        tanh = defining_op(tanh_value)
        if cap is None or cap <= 0 or not isinstance(tanh, nn.TanhOp) or not has_single_use(tanh_value):
            continue
        inner = defining_op(tanh.input)
        if not isinstance(inner, (nn.DivOp, nn.MulOp)) or not has_single_use(tanh.input):
            continue
        divisor = scalar_constant(inner.rhs)
        if divisor is None:
            continue
        if isinstance(inner, nn.MulOp):
            divisor = 1.0 / divisor if divisor else None
        if divisor is not None and math.isclose(divisor, cap, rel_tol=1e-6) and inner.lhs.type == scores.type:
            return cap, inner.lhs
    return None, scores


def _peel_core(scores: SSAValue) -> _Scores | None:
    """[scale] ← matmul(q, kᵀ) ← [scale on q]."""
    scale, scores = _peel_scale(scores)
    if scale is None:
        return None
    matmul = defining_op(scores)
    if not isinstance(matmul, nn.MatmulOp) or not has_single_use(scores):
        return None
    key_t = matmul.rhs
    k_op = defining_op(key_t)
    if isinstance(k_op, (nn.MulOp, nn.DivOp)) and has_single_use(key_t):  # the scale on kᵀ (DeBERTa)
        c = scalar_constant(k_op.rhs)
        if c is not None and c > 0 and k_op.lhs.type == key_t.type:
            key_t, scale = k_op.lhs, scale * (1.0 / c if isinstance(k_op, nn.DivOp) else c)
    key = untransposed_last_two(key_t)
    if key is None:
        return None
    query = matmul.lhs
    q_op = defining_op(query)
    if isinstance(q_op, nn.MulOp):
        for tensor, factor in ((q_op.lhs, q_op.rhs), (q_op.rhs, q_op.lhs)):
            c = scalar_constant(factor)
            if c is not None and c > 0 and tensor.type == query.type:
                query, scale = tensor, scale * c
                break
    if broadcast_shapes(tensor_shape(query)[:-2], tensor_shape(key)[:-2]) is None:
        return None  # q and k batch dims do not broadcast: not attention
    return _Scores(query, key, scale)


def _peel_scale(scores: SSAValue) -> tuple[float | None, SSAValue]:
    """Strips ``scores * c`` or ``scores / c`` (c a positive constant); scale 1 when there is none."""
    op = defining_op(scores)
    if isinstance(op, (nn.MulOp, nn.DivOp)) and has_single_use(scores):
        pairs = [(op.lhs, op.rhs)] if isinstance(op, nn.DivOp) else [(op.lhs, op.rhs), (op.rhs, op.lhs)]
        for tensor, factor in pairs:
            c = scalar_constant(factor)
            if c is not None and tensor.type == scores.type:
                if c <= 0:
                    return None, scores
                return (1.0 / c if isinstance(op, nn.DivOp) else c), tensor
    return 1.0, scores


def _is_additive_term(candidate: SSAValue, scores: SSAValue) -> bool:
    """A float tensor of the scores' element type that broadcasts onto the scores."""
    if not isinstance(candidate.type, TensorType) or is_bool(element_type(candidate)):
        return False
    if element_type(candidate) != element_type(scores):
        return False
    shape = tensor_shape(scores)
    return broadcast_shapes(tensor_shape(candidate), shape) == shape


class RaiseEagerAttention(RewritePattern):
    """``matmul(softmax(scale·q kᵀ + mask), v)`` → ``attn.sdpa`` (anchored at the final matmul)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.MatmulOp, rewriter: PatternRewriter) -> None:
        softmax, flattened = _softmax_feeding(op)
        if softmax is None:
            return
        scores = peel_scores(softmax.input)
        if scores is None or (scores.heads is None) != (flattened is None):
            return
        if not _forms_attention(scores, op):
            return
        builder = _Emitter(op)
        query, key, value = scores.query, scores.key, op.rhs
        if scores.heads is not None:  # lift flat (batch·heads) operands to (batch, heads, ...)
            query, key, value = (builder.split_heads(x, scores.heads) for x in (query, key, value))
        mask = builder.combine(scores.terms, tensor_shape(softmax.input))
        q, v = tensor_shape(query), tensor_shape(value)
        result_type = TensorType(element_type(op.result), (*q[:-2], q[-2], v[-1]))
        raised = attn.SdpaOp(query, key, value, mask, scores.scale, False, result_type, scores.softcap)
        raised.location = op.location
        builder.ops.append(raised)
        if scores.heads is not None:
            raised.result.name_hint = f"{op.result.name_hint or 'attn'}_heads"
            builder.located(nn.ReshapeOp(raised.result, op.result.type), op.result.name_hint or "attn")
        builder.ops[-1].results[0].name_hint = op.result.name_hint
        rewriter.replace(op, builder.ops)


def _softmax_feeding(op: nn.MatmulOp) -> tuple[nn.SoftmaxOp | None, nn.ReshapeOp | None]:
    """The last-dim softmax whose probabilities (through dropout and a head-flattening reshape) are op's lhs."""
    probs, flattened = op.lhs, None
    producer = defining_op(probs)
    if isinstance(producer, nn.ReshapeOp) and has_single_use(probs):
        flattened, probs, producer = producer, producer.input, defining_op(producer.input)
    if isinstance(producer, nn.DropoutOp) and has_single_use(probs):
        probs, producer = producer.input, defining_op(producer.input)
    if not isinstance(producer, nn.SoftmaxOp) or not has_single_use(probs):
        return None, None
    rank = len(tensor_shape(producer.input))
    if producer.dim.value.data % rank != rank - 1:
        return None, None
    if flattened is not None:
        split, flat = tensor_shape(producer.input), tensor_shape(flattened.result)
        if not (len(split) == 4 and len(flat) == 3 and flat[0] == split[0] * split[1] and flat[1:] == split[2:]):
            return None, None
    return producer, flattened


def _forms_attention(scores: _Scores, op: nn.MatmulOp) -> bool:
    """q, k and v shapes give exactly op's result (a fill or mask that widened the scores would not)."""
    q, k, v = tensor_shape(scores.query), tensor_shape(scores.key), tensor_shape(op.rhs)
    batch = broadcast_shapes(q[:-2], k[:-2])
    batch = None if batch is None else broadcast_shapes(batch, v[:-2])
    return not (batch is None or q[-1] != k[-1] or k[-2] != v[-2] or tensor_shape(op.result) != (*batch, q[-2], v[-1]))


@dataclass
class _Emitter:
    """Builds the ops that feed a raised ``attn.sdpa`` (head splits, the combined mask), located at ``anchor``."""

    anchor: Operation
    ops: list[Operation] = field(default_factory=list)

    def located(self, op: Operation, name: str = "mask") -> Operation:
        op.location = self.anchor.location
        for result in op.results:
            result.name_hint = name
        self.ops.append(op)
        return op

    def split_heads(self, value: SSAValue, heads: tuple[int, ...]) -> SSAValue:
        shape = tensor_shape(value)
        split = nn.ReshapeOp(value, TensorType(element_type(value), (*heads, *shape[1:])))
        return self.located(split, f"{value.name_hint or 'x'}_heads").results[0]

    def constant(self, value: float, element: Attribute) -> SSAValue:
        attr = DenseIntOrFPElementsAttr.from_list(TensorType(element, []), [value])  # type: ignore[type-var]
        return self.located(nn.ConstantOp(attr), "cst").results[0]  # type: ignore[arg-type]

    def combine(self, terms: list[_MaskTerm], scores_shape: tuple[int, ...]) -> SSAValue | None:
        """One mask for attn.sdpa: a single keep-mask stays i1; several terms become one i1 ``and`` when all
        are keep-masks, else one additive float mask (keep-masks as ``where(keep, 0, fill)``)."""
        if not terms:
            return None
        terms = [_MaskTerm(self.lift(term.value, scores_shape), term.kind, term.fill) if term.lifted else term for term in terms]
        terms = [_as_keep(term) for term in terms]
        if all(term.kind in ("keep", "drop") for term in terms):
            keeps = [self._keep(term) for term in terms]
            mask = keeps[0]
            for other in keeps[1:]:
                shape = broadcast_shapes(tensor_shape(mask), tensor_shape(other))
                assert shape is not None  # both terms broadcast onto the scores
                mask = self.located(nn.LogicalAndOp(mask, other, TensorType(element_type(mask), shape))).results[0]
            return mask
        float_type = next(element_type(t.value) for t in terms if t.kind == "add")
        addends = []
        for term in terms:
            if term.kind == "add":
                addends.append(term.value)
                continue
            zero, fill = self.constant(0.0, float_type), self.constant(term.fill, float_type)
            keep_if, drop_if = (zero, fill) if term.kind == "keep" else (fill, zero)
            result = TensorType(float_type, tensor_shape(term.value))
            addends.append(self.located(nn.WhereOp(term.value, keep_if, drop_if, result)).results[0])
        mask = addends[0]
        for other in addends[1:]:
            shape = broadcast_shapes(tensor_shape(mask), tensor_shape(other))
            assert shape is not None  # both terms broadcast onto the scores
            mask = self.located(nn.AddOp(mask, other, TensorType(float_type, shape))).results[0]
        return mask

    def _keep(self, term: _MaskTerm) -> SSAValue:
        if term.kind == "keep":
            return term.value
        return self.located(nn.LogicalNotOp(term.value), "keep").results[0]

    def lift(self, value: SSAValue, scores_shape: tuple[int, ...]) -> SSAValue:
        """A mask of the flat (batch·heads, q, k) scores, broadcast to that shape and split to (batch, heads, q, k)."""
        flat = (scores_shape[0] * scores_shape[1], *scores_shape[2:])
        if tensor_shape(value) != flat:
            value = self.located(nn.BroadcastToOp(value, TensorType(element_type(value), flat))).results[0]
        return self.located(nn.ReshapeOp(value, TensorType(element_type(value), scores_shape))).results[0]


def _as_keep(term: _MaskTerm) -> _MaskTerm:
    """An additive ``where(c, 0, -big)`` read as the keep-mask ``c`` it is, so keep-masks can be and-ed."""
    if term.kind == "add":
        keep = keep_mask_of(term.value)
        producer = defining_op(term.value)
        if keep is not None and isinstance(producer, nn.WhereOp):
            fill = scalar_constant(producer.rhs)
            return _MaskTerm(keep, "keep", fill if fill is not None else MASKED_OUT_BELOW)
    return term


def flat_heads(value: SSAValue) -> tuple[int, int] | None:
    """(batch, heads) when ``value`` is ``nn.MultiheadAttention``'s flat (batch·heads, length, head) operand.

    PyTorch builds it as ``x.view(L, B·H, hd).transpose(0, 1)`` from ``x`` of shape (L, B, H·hd).
    """
    transpose = defining_op(value)
    if not isinstance(transpose, nn.TransposeOp) or transpose.swapped_dims() != (0, 1):
        return None
    view = defining_op(transpose.input)
    if not isinstance(view, nn.ReshapeOp):
        return None
    before, after = tensor_shape(view.input), tensor_shape(view.result)
    if len(before) != 3 or len(after) != 3 or before[0] != after[0] or after[1] % before[1]:
        return None
    heads = after[1] // before[1]
    return (before[1], heads) if before[2] == heads * after[2] else None


class LiftFlatHeads(RewritePattern):
    """A rank-3 ``attn.sdpa`` on flat (batch·heads) operands → a 4-d one on (batch, heads, ...), reshaped back.

    Per-head transforms (attn-cosine's m, per-head masks) need the heads as a dimension.
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.SdpaOp, rewriter: PatternRewriter) -> None:
        shapes = [tensor_shape(v) for v in (op.query, op.key, op.value)]
        if any(len(shape) != 3 for shape in shapes) or len({shape[0] for shape in shapes}) != 1:
            return
        heads = {flat_heads(v) for v in (op.query, op.key, op.value)}
        if len(heads) != 1 or None in heads:
            return
        split = heads.pop()
        assert split is not None
        builder = _Emitter(op)
        query, key, value = (builder.split_heads(v, split) for v in (op.query, op.key, op.value))
        q, k = tensor_shape(query), tensor_shape(key)
        mask = None
        if op.mask is not None:
            scores_shape = (*split, q[-2], k[-2])
            mask = builder.lift(op.mask, scores_shape)
        result_type = TensorType(element_type(op.result), (*q[:-1], tensor_shape(value)[-1]))
        lifted = attn.SdpaOp(
            query, key, value, mask, op.scale.value.data, bool(op.causal.value.data), result_type, attn.softcap_value(op)
        )
        lifted.location = op.location
        lifted.result.name_hint = f"{op.result.name_hint or 'attn'}_heads"
        builder.ops.append(lifted)
        builder.located(nn.ReshapeOp(lifted.result, op.result.type), op.result.name_hint or "attn")
        rewriter.replace(op, builder.ops)


class CausalConstantToFlag(RewritePattern):
    """``attn.sdpa`` whose mask is a constant causal triangle → ``causal = true`` and no mask."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.SdpaOp, rewriter: PatternRewriter) -> None:
        if op.mask is None or op.causal.value.data:
            return
        keep = keep_mask_of(op.mask)
        if keep is None or not is_causal_triangle(keep):
            return
        q, k = tensor_shape(op.query), tensor_shape(op.key)
        if q[-2] != k[-2] or tensor_shape(keep)[-1] != k[-2]:
            return
        flagged = attn.SdpaOp(
            op.query, op.key, op.value, None, op.scale.value.data, True, op.result.type, attn.softcap_value(op)
        )
        flagged.location = op.location
        flagged.result.name_hint = op.result.name_hint
        rewriter.replace(op, flagged)


@dataclass(frozen=True)
class AttnRaisePass(ModulePass):
    """Raise every recognisable attention to ``attn.sdpa``; see the module docstring."""

    name = "attn-raise"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier([RaiseFusedSdpa(), RaiseEagerAttention()]), apply_recursively=False
        ).rewrite_module(op)
        PatternRewriteWalker(
            GreedyRewritePatternApplier([LiftFlatHeads(), CausalConstantToFlag()]), apply_recursively=False
        ).rewrite_module(op)
        dce(op)


@dataclass(frozen=True)
class UnraisedSoftmax:
    """A softmax attn-raise left in place: where it came from and why it was not raised."""

    module_path: str
    reason: str


def unraised_softmaxes(module: ModuleOp) -> list[UnraisedSoftmax]:
    """Every ``nn.softmax`` in ``module`` with the first check of ``RaiseEagerAttention`` it fails.

    Run it after attn-raise: the checks are the pattern's own, in its order, so the reason is the one that
    stopped the rewrite.
    """
    return [UnraisedSoftmax(module_path_of(op), _why_not_raised(op)) for op in module.walk() if isinstance(op, nn.SoftmaxOp)]


def _why_not_raised(softmax: nn.SoftmaxOp) -> str:
    rank = len(tensor_shape(softmax.input))
    if softmax.dim.value.data % rank != rank - 1:
        return f"softmax over dim {softmax.dim.value.data}, not the last (key) dimension"
    probs = softmax.result
    users = [use.operation for use in probs.uses]
    if len(users) == 1 and isinstance(users[0], nn.DropoutOp):
        probs = users[0].result
        users = [use.operation for use in probs.uses]
    flattened = len(users) == 1 and isinstance(users[0], nn.ReshapeOp)
    if flattened:
        probs = users[0].results[0]
        users = [use.operation for use in probs.uses]
    if len(users) != 1:
        return f"probabilities have {len(users)} uses (returned or reused attention weights)"
    consumer = users[0]
    if not isinstance(consumer, nn.MatmulOp) or consumer.lhs != probs:
        return f"probabilities feed {consumer.name}, not the left operand of a matmul with v"
    scores = peel_scores(softmax.input)
    if scores is None:
        chain = _scores_chain(softmax.input)
        return f"scores {' <- '.join(chain)} are not [masks and biases] <- [soft-cap] <- [scale] <- matmul(q, k^T)"
    if _softmax_feeding(consumer)[0] is None or (scores.heads is None) == flattened:
        return "the probabilities and the scores are not reshaped alike (one flattened batch·heads, the other not)"
    if not _forms_attention(scores, consumer):
        return "q, k and v shapes do not form attention (head dims or the result shape disagree)"
    return "raisable: attn-raise has not run on this module"


def _scores_chain(scores: SSAValue, limit: int = 8) -> list[str]:
    """Op names from the softmax input back towards q·kᵀ, following the operand shaped like the scores."""
    chain: list[str] = []
    while len(chain) < limit:
        op = defining_op(scores)
        if op is None:
            chain.append("<argument>")
            break
        chain.append(op.name)
        same_shape = [o for o in op.operands if isinstance(o.type, TensorType) and o.type == scores.type]
        if isinstance(op, nn.MatmulOp) or not same_shape:
            break
        scores = same_shape[-1] if isinstance(op, nn.WhereOp) and len(same_shape) > 1 else same_shape[0]
    return chain
