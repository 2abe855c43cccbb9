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
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import SSAValue
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
from passes.matchers import defining_op, has_single_use, scalar_constant, untransposed_last_two

# A fill value at or below this counts as "masked out" when a masked_fill/where is folded into a mask.
MASKED_OUT_BELOW = -1.0e4


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
class _Scores:
    """What was peeled off the scores on the way from the softmax back to q·kᵀ."""

    query: SSAValue
    key: SSAValue
    scale: float
    mask: SSAValue | None
    mask_needs_not: bool


class RaiseEagerAttention(RewritePattern):
    """``matmul(softmax(scale·q kᵀ + mask), v)`` → ``attn.sdpa`` (anchored at the final matmul)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.MatmulOp, rewriter: PatternRewriter) -> None:
        probs = op.lhs
        producer = defining_op(probs)
        if isinstance(producer, nn.DropoutOp) and has_single_use(probs):
            probs, producer = producer.input, defining_op(producer.input)
        if not isinstance(producer, nn.SoftmaxOp) or not has_single_use(probs):
            return
        rank = len(tensor_shape(producer.input))
        if producer.dim.value.data % rank != rank - 1:
            return
        scores = self._peel_scores(producer.input)
        if scores is None:
            return
        value = op.rhs
        q, k, v = tensor_shape(scores.query), tensor_shape(scores.key), tensor_shape(value)
        batch = broadcast_shapes(q[:-2], k[:-2])
        batch = None if batch is None else broadcast_shapes(batch, v[:-2])
        # Only the q, k, v batch dims may shape the result: a fill or mask that broadcast the scores wider
        # would give attn.sdpa a result it cannot produce.
        if batch is None or q[-1] != k[-1] or k[-2] != v[-2] or tensor_shape(op.result) != (*batch, q[-2], v[-1]):
            return
        mask, new_ops = scores.mask, []
        if mask is not None and scores.mask_needs_not:
            keep = nn.LogicalNotOp(mask)
            keep.location = op.location
            keep.result.name_hint = "keep"
            new_ops.append(keep)
            mask = keep.result
        raised = attn.SdpaOp(scores.query, scores.key, value, mask, scores.scale, False, op.result.type)
        raised.location = op.location
        raised.result.name_hint = op.result.name_hint
        rewriter.replace(op, [*new_ops, raised])

    def _peel_scores(self, scores: SSAValue) -> _Scores | None:
        """Walks back from the softmax input: [mask] ← [scale] ← matmul(q, kᵀ) ← [scale on q]."""
        mask, needs_not = None, False
        op = defining_op(scores)
        if isinstance(op, nn.AddOp) and has_single_use(scores):
            for candidate, other in ((op.rhs, op.lhs), (op.lhs, op.rhs)):
                if self._is_additive_mask(candidate, other):
                    mask, scores = candidate, other
                    break
            else:
                return None
        elif isinstance(op, nn.WhereOp) and has_single_use(scores):
            lhs_fill, rhs_fill = scalar_constant(op.lhs), scalar_constant(op.rhs)
            if lhs_fill is not None and lhs_fill <= MASKED_OUT_BELOW:
                mask, needs_not, scores = op.condition, True, op.rhs
            elif rhs_fill is not None and rhs_fill <= MASKED_OUT_BELOW:
                mask, scores = op.condition, op.lhs
            else:
                return None
        scale, scores = self._peel_scale(scores)
        if scale is None:
            return None
        matmul = defining_op(scores)
        if not isinstance(matmul, nn.MatmulOp) or not has_single_use(scores):
            return None
        key = untransposed_last_two(matmul.rhs)
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
        if mask is not None:
            batch = broadcast_shapes(tensor_shape(query)[:-2], tensor_shape(key)[:-2])
            if batch is None:  # q and k batch dims do not broadcast: not attention
                return None
            target = (*batch, tensor_shape(query)[-2], tensor_shape(key)[-2])
            if broadcast_shapes(tensor_shape(mask), target) != target:
                return None
        return _Scores(query, key, scale, mask, needs_not)

    @staticmethod
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

    @staticmethod
    def _is_additive_mask(candidate: SSAValue, scores: SSAValue) -> bool:
        """A float tensor that broadcasts onto the scores and is not itself derived from q·kᵀ."""
        if not isinstance(candidate.type, TensorType) or is_bool(element_type(candidate)):
            return False
        if element_type(candidate) != element_type(scores):
            return False
        shape = tensor_shape(scores)
        if broadcast_shapes(tensor_shape(candidate), shape) != shape:
            return False
        _, unscaled = RaiseEagerAttention._peel_scale(scores)
        return isinstance(defining_op(unscaled), nn.MatmulOp)


@dataclass(frozen=True)
class AttnRaisePass(ModulePass):
    """Raise every recognisable attention to ``attn.sdpa``; see the module docstring."""

    name = "attn-raise"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier([RaiseFusedSdpa(), RaiseEagerAttention()]), apply_recursively=False
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
    if len(users) != 1:
        return f"probabilities have {len(users)} uses (returned or reused attention weights)"
    consumer = users[0]
    if not isinstance(consumer, nn.MatmulOp) or consumer.lhs != probs:
        return f"probabilities feed {consumer.name}, not the left operand of a matmul with v"
    scores = RaiseEagerAttention()._peel_scores(softmax.input)
    if scores is None:
        chain = _scores_chain(softmax.input)
        hint = " (soft-capped scores)" if "nn.tanh" in chain else ""
        return f"scores {' <- '.join(chain)} are not [mask] <- [scale] <- matmul(q, k^T){hint}"
    q, k, v = tensor_shape(scores.query), tensor_shape(scores.key), tensor_shape(consumer.rhs)
    batch = broadcast_shapes(q[:-2], k[:-2])
    batch = None if batch is None else broadcast_shapes(batch, v[:-2])
    if batch is None or q[-1] != k[-1] or k[-2] != v[-2] or tensor_shape(consumer.result) != (*batch, q[-2], v[-1]):
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
