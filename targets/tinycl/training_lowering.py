"""The rest of a training step on TinyCL: the backward units, the element-wise ops and the SGD update in fixed point.

``lower-to-tinycl`` lowers the GEMMs of a training step to the MAC array (targets/tinycl/lowering.py); this
pattern lowers what lies between them, so every value on the gradient path is a fixed-point code:

* ``grad.cross_entropy_backward`` → ``tinycl.cross_entropy_backward`` (softmax table, exact one-hot, rounded
  division by the count); ``grad.softmax_backward`` (last dim) → ``tinycl.softmax_backward``;
  ``grad.layer_norm_backward`` (last dim) → ``tinycl.layer_norm_backward``; ``grad.gelu_backward`` (exact) and
  ``grad.relu_backward`` → ``tinycl.activation_backward`` (derivative table); ``grad.embedding_backward`` →
  ``tinycl.embedding_backward`` (exact row sums); ``grad.cosine_backward`` (bidirectional, no mask, as the
  forward lowering) → N(Q), N(K) and S = N(K)ᵀV recomputed as the forward computes them, ``dH = dO / max(1, L^s)``
  by ``tinycl.head_scale``, four GEMMs on the array's input-gradient mode (``A = N(Q)ᵀ·dH``, ``dV = N(K)·A``,
  ``dN(K) = V·Aᵀ``, ``dN(Q) = dH·Sᵀ``), ``tinycl.l2_normalize_backward`` for dQ and dK and
  ``tinycl.head_scale_backward`` for dm (= −ln L·s(1 − s)·Σ A∘S, which equals Σ dO·O);
* ``nn.add`` / ``nn.sub`` / ``nn.mul`` / ``nn.reduce_sum``, the recomputed ``attn.softmax`` and the recomputed
  ``nn.layer_norm`` without affine parameters → ``tinycl.add`` / ``tinycl.mul`` / ``tinycl.reduce_sum`` /
  ``tinycl.softmax`` / ``tinycl.layer_norm`` (γ = 1, β = 0);
* ``grad.sgd`` → the MAC array's ``update`` mode: ``v' = g − (−μ)·v`` and ``p' = p − (η/s)·v'``, each product exact
  (``tinycl.mul`` by the constant in its own format), each difference in an accumulator wide enough, then
  ``tinycl.requant`` to the velocity (gradient) and weight formats with the rounding and overflow modes.

Loss scaling: the loss gradient is the mean times ``loss-scale`` s (16 by default), so the small gradients of a
mean keep log2(s) more significant bits in the 16-bit gradient format; the velocity holds s·v and the learning
rate is divided by s, so the step equals SGD's.

Formats: values on the gradient path (everything computed from the loss gradient) use the gradient format,
other values the data format, parameters the weight format, softmax outputs the probability format, constants
(a scale, η/s, μ) 16 significant bits, rounded to nearest. Every op built here carries ``phase`` (``input-gradient``
for the backward units, ``update`` for the SGD step) for the cost model. Only the loss value itself
(``grad.cross_entropy``, a reported scalar no update depends on) stays on the host in float, and the backward of
causal or masked cosine attention, which has no fixed-point forward either (a remark says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern

from dialects import attn, grad, nn, tinycl
from dialects.diagnostics import pass_failure, remark
from dialects.shapes import element_type, int_list, is_bool, is_float, normalize_dim, tensor_shape
from passes.training_step import PHASE_ATTRIBUTE
from targets.tinycl.builder import Builder, Numerics

PASS = "lower-to-tinycl"
INPUT_GRADIENT, UPDATE = "input-gradient", "update"
TRAINING_OPS = (
    grad.CrossEntropyBackwardOp,
    grad.SoftmaxBackwardOp,
    grad.LayerNormBackwardOp,
    grad.GeluBackwardOp,
    grad.ReluBackwardOp,
    grad.EmbeddingBackwardOp,
    grad.CosineBackwardOp,
    grad.SgdOp,
    nn.AddOp,
    nn.SubOp,
    nn.MulOp,
    nn.ReduceSumOp,
    attn.SoftmaxOp,
    nn.LayerNormOp,
)


def gradient_cone(module: Operation) -> set[Operation]:
    """The ops computed from the loss gradient (the backward program and the update)."""
    cone: set[Operation] = set()
    work = [op for op in module.walk() if isinstance(op, grad.CrossEntropyBackwardOp)]
    while work:
        op = work.pop()
        if op in cone:
            continue
        cone.add(op)
        work.extend(use.operation for result in op.results for use in result.uses)
    return cone


def _fixed(value: SSAValue) -> tinycl.FixedType:
    typ = element_type(value)
    assert isinstance(typ, tinycl.FixedType)
    return typ


class _TrainingBuilder(Builder):
    """A builder whose ops carry the phase and whose operands keep the format they were computed in."""

    def __init__(self, op: Operation, numerics: Numerics, phase: str | None):
        super().__init__(op, numerics)
        self.phase = phase

    def add(self, new: Operation, suffix: str) -> SSAValue:
        if self.phase is not None and new.dialect_name() == "tinycl":
            new.attributes[PHASE_ATTRIBUTE] = StringAttr(self.phase)
        return super().add(new, suffix)

    def constant(self, value: float, suffix: str) -> SSAValue:
        """A compile-time constant in its own format, rounded to nearest (whatever the run's rounding mode)."""
        full = self.add(nn.FullOp(value, TensorType(element_type(self.op.results[0]), [])), f"{suffix}_f")
        fixed = TensorType(self.numerics.constant(value), [])
        return self.add(tinycl.QuantizeOp(full, fixed, "nearest-even", "saturate"), suffix)

    def rounded(
        self, cls, *operands: SSAValue, fmt: tinycl.FixedType, suffix: str, like: SSAValue | None = None, **attributes
    ) -> SSAValue:
        """A ``cls`` op on ``operands`` whose result (shaped as ``like``, by default the op's result) is in ``fmt``."""
        n = self.numerics
        result_type = fixed_type(like or self.op.results[0], fmt)
        return self.add(cls(*operands, **attributes, result_type=result_type, rounding=n.rounding, overflow=n.overflow), suffix)


def fixed_type(like: SSAValue, fmt: tinycl.FixedType) -> TensorType:
    return TensorType(fmt, tensor_shape(like))


@dataclass
class LowerTrainingOps(RewritePattern):
    """The backward units, element-wise ops and SGD of a training step; see the module docstring."""

    numerics: Numerics
    cone: set[Operation] = field(default_factory=set)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, TRAINING_OPS):
            return
        if not all(is_float(element_type(v)) for v in op.results):
            return
        why = getattr(self, f"_{type(op).__name__}")(op, rewriter)
        if why:
            remark(PASS, op, f"{op.name} stays digital (float on the host): {why}")

    def _builder(self, op: Operation) -> _TrainingBuilder:
        phase = UPDATE if isinstance(op, grad.SgdOp) else INPUT_GRADIENT if op in self.cone else None
        return _TrainingBuilder(op, self.numerics, phase)

    def _format(self, op: Operation) -> tinycl.FixedType:
        return self.numerics.gradient if op in self.cone else self.numerics.data

    # -- the backward units --------------------------------------------------------------------------------------

    def _CrossEntropyBackwardOp(self, op: grad.CrossEntropyBackwardOp, rewriter: PatternRewriter) -> str | None:
        b = self._builder(op)
        logits = b.operand(op.logits, "logits_q", self.numerics.data)
        # the mean times the loss scale: gradients keep log2(scale) more significant bits; η/scale in SGD
        count = max(1, prod(tensor_shape(op.labels)))
        dlogits = b.rounded(
            tinycl.CrossEntropyBackwardOp, logits, op.labels, fmt=self.numerics.gradient, suffix="q",
            scale=self.numerics.loss_scale, divisor=count,
        )
        b.finish(rewriter, dlogits)
        return None

    def _SoftmaxBackwardOp(self, op: grad.SoftmaxBackwardOp, rewriter: PatternRewriter) -> str | None:
        rank = len(tensor_shape(op.output))
        if normalize_dim(op.dim.value.data, rank, "dim") != rank - 1:
            return "only the softmax over the last dim is lowered"
        b = self._builder(op)
        y = b.operand(op.output, "y_q", self.numerics.probability)
        dy = b.operand(op.grad_output, "dy_q", self.numerics.gradient)
        b.finish(rewriter, b.rounded(tinycl.SoftmaxBackwardOp, y, dy, fmt=self.numerics.gradient, suffix="q"))
        return None

    def _LayerNormBackwardOp(self, op: grad.LayerNormBackwardOp, rewriter: PatternRewriter) -> str | None:
        if len(int_list(op.normalized_shape)) != 1:
            return "only normalisation over the last dim is lowered"
        b = self._builder(op)
        n = self.numerics
        x = b.operand(op.input, "x_q", n.data)
        dy = b.operand(op.grad_output, "dy_q", n.gradient)
        if op.weight is not None:
            gamma = b.operand(op.weight, "g_q", n.data)
        else:
            ones = b.add(nn.FullOp(1.0, TensorType(element_type(op.input), tensor_shape(op.input)[-1:])), "ones")
            gamma = b.quantize(ones, "g_q", n.data)
        dx = b.rounded(tinycl.LayerNormBackwardOp, x, dy, gamma, fmt=n.gradient, suffix="q", eps=op.eps.value.data)
        b.finish(rewriter, dx)
        return None

    def _activation(self, op: grad.ActivationBackwardOp, function: str, rewriter: PatternRewriter) -> str | None:
        b = self._builder(op)
        x = b.operand(op.input, "x_q", self.numerics.data)
        dy = b.operand(op.grad_output, "dy_q", self.numerics.gradient)
        dx = b.rounded(tinycl.ActivationBackwardOp, x, dy, fmt=self.numerics.gradient, suffix="q", function=function)
        b.finish(rewriter, dx)
        return None

    def _GeluBackwardOp(self, op: grad.GeluBackwardOp, rewriter: PatternRewriter) -> str | None:
        if op.approximate.data != "none":
            return f'the table holds exact GELU\'s derivative, not approximate = "{op.approximate.data}"'
        return self._activation(op, "gelu", rewriter)

    def _ReluBackwardOp(self, op: grad.ReluBackwardOp, rewriter: PatternRewriter) -> str | None:
        return self._activation(op, "relu", rewriter)

    def _EmbeddingBackwardOp(self, op: grad.EmbeddingBackwardOp, rewriter: PatternRewriter) -> str | None:
        b = self._builder(op)
        dy = b.operand(op.grad_output, "dy_q", self.numerics.gradient)
        b.finish(rewriter, b.rounded(tinycl.EmbeddingBackwardOp, dy, op.indices, fmt=self.numerics.gradient, suffix="q"))
        return None

    def _CosineBackwardOp(self, op: grad.CosineBackwardOp, rewriter: PatternRewriter) -> str | None:
        """Bidirectional cosine attention without a mask (as the forward lowering), O = N(Q)·S / f with
        S = N(K)ᵀV and f = max(1, L^s): N(Q), N(K) and S recomputed as the forward computes them, then
        dH = dO / f (``tinycl.head_scale``), A = N(Q)ᵀ·dH, dV = N(K)·A, dN(K) = V·Aᵀ, dN(Q) = dH·Sᵀ (the array's
        input-gradient mode: per sample and head), dQ and dK by ``tinycl.l2_normalize_backward`` and
        dm = −ln L·s(1 − s)·Σ A∘S (= Σ dO·O) by ``tinycl.head_scale_backward``; every GEMM accumulates without
        overflow and is requantised to the gradient format."""
        if op.causal.value.data or op.mask is not None:
            return "only bidirectional cosine attention without a mask is lowered (as the forward)"
        n = self.numerics
        if n.frac > n.total - 2:
            return f"unit vectors need 1.0 representable (frac-bits <= total-bits - 2), got {n.data}"
        length, depth, width = tensor_shape(op.key)[-2], tensor_shape(op.query)[-1], tensor_shape(op.value)[-1]
        b = self._builder(op)
        query, key = b.operand(op.query, "q_q", n.data), b.operand(op.key, "k_q", n.data)
        value = b.operand(op.value, "v_q", n.data)
        query_unit, key_unit = b.add(tinycl.L2NormalizeOp(query), "qn"), b.add(tinycl.L2NormalizeOp(key), "kn")
        state_t = b.requant(b.mac(self._transposed(b, value, "vt"), self._transposed(b, key_unit, "knt"), None, length,
                                  "state_acc"), "state")  # Sᵀ (…, dv, d), as the forward's
        grad_out = b.operand(op.grad_output, "dy_q", n.gradient)
        grad_h = b.add(tinycl.HeadScaleOp(grad_out, op.m, length, n.rounding, n.overflow), "dh")  # dO / f
        a = self._gradient_gemm(b, self._transposed(b, query_unit, "qnt"), grad_h, length, "a")  # N(Q)ᵀ·dH (…, d, dv)
        a_t = self._transposed(b, a, "at")
        grad_value = self._gradient_gemm(b, key_unit, a, depth, "dv")
        grad_key_unit = self._gradient_gemm(b, value, a_t, width, "dkn")
        grad_query_unit = self._gradient_gemm(b, grad_h, state_t, width, "dqn")
        grad_query = b.rounded(tinycl.L2NormalizeBackwardOp, query, grad_query_unit, fmt=n.gradient, suffix="dq",
                               like=op.query)
        grad_key = b.rounded(tinycl.L2NormalizeBackwardOp, key, grad_key_unit, fmt=n.gradient, suffix="dk", like=op.key)
        grad_m = b.rounded(tinycl.HeadScaleBackwardOp, a_t, state_t, op.m, fmt=n.gradient, suffix="dm", like=op.m,
                           length=length)
        b.finish(rewriter, grad_query, grad_key, grad_value, grad_m)
        return None

    def _transposed(self, b: _TrainingBuilder, codes: SSAValue, suffix: str) -> SSAValue:
        """``codes`` with the last two dims swapped, in the same format (the move goes through exact float values)."""
        fmt = _fixed(codes)
        values = b.add(tinycl.DequantizeOp(codes, TensorType(element_type(b.op.results[0]), tensor_shape(codes))), f"{suffix}_f")
        return b.quantize(b.transpose(values, f"{suffix}_m"), suffix, fmt)

    def _gradient_gemm(self, b: _TrainingBuilder, lhs: SSAValue, rhs: SSAValue, depth: int, suffix: str) -> SSAValue:
        """``lhs (…, M, N) · rhs (…, N, K)`` on the array's input-gradient mode, in an accumulator that cannot
        overflow, requantised to the gradient format."""
        n = self.numerics
        shape = tinycl.mac_result_shape(INPUT_GRADIENT, tensor_shape(lhs), tensor_shape(rhs))
        accumulator = TensorType(n.wide_accumulator(depth, _fixed(lhs), _fixed(rhs)), shape)
        acc = b.add(tinycl.MacOp(INPUT_GRADIENT, lhs, rhs, None, accumulator), f"{suffix}_acc")
        return b.add(tinycl.RequantOp(acc, TensorType(n.gradient, shape), n.rounding, n.overflow), suffix)

    # -- element-wise ops and recomputations ---------------------------------------------------------------------

    def _binary(self, op: nn.BinaryOp, cls, rewriter: PatternRewriter, negate: bool = False) -> str | None:
        if not all(is_float(element_type(v)) for v in op.operands):
            return "non-float operands"
        b = self._builder(op)
        default = self._format(op)
        lhs = b.operand(op.lhs, "a_q", default)
        rhs = b.operand(op.rhs, "b_q", default)
        if negate:
            rhs = b.rounded(tinycl.MulOp, rhs, b.constant(-1.0, "minus"), fmt=_fixed(rhs), suffix="neg", like=rhs)
        b.finish(rewriter, b.rounded(cls, lhs, rhs, fmt=self._format(op), suffix="q"))
        return None

    def _AddOp(self, op: nn.AddOp, rewriter: PatternRewriter) -> str | None:
        return self._binary(op, tinycl.AddOp, rewriter)

    def _SubOp(self, op: nn.SubOp, rewriter: PatternRewriter) -> str | None:
        return self._binary(op, tinycl.AddOp, rewriter, negate=True)

    def _MulOp(self, op: nn.MulOp, rewriter: PatternRewriter) -> str | None:
        return self._binary(op, tinycl.MulOp, rewriter)

    def _ReduceSumOp(self, op: nn.ReduceSumOp, rewriter: PatternRewriter) -> str | None:
        b = self._builder(op)
        x = b.operand(op.input, "x_q", self._format(op))
        dims, keep = list(op.dims.get_values()), bool(op.keepdim.value.data)
        b.finish(rewriter, b.rounded(tinycl.ReduceSumOp, x, fmt=self._format(op), suffix="q", dims=dims, keepdim=keep))
        return None

    def _SoftmaxOp(self, op: attn.SoftmaxOp, rewriter: PatternRewriter) -> str | None:
        if op.softcap is not None or (op.mask is not None and not is_bool(element_type(op.mask))):
            return "soft-capping and additive float masks are not supported by the fixed-point softmax"
        b = self._builder(op)
        scores = b.operand(op.scores, "s_q", self.numerics.data)
        probabilities = fixed_type(op.result, self.numerics.probability)
        probs = b.add(tinycl.SoftmaxOp(scores, op.scale.value.data, bool(op.causal.value.data), op.mask, probabilities), "q")
        b.finish(rewriter, probs)
        return None

    def _LayerNormOp(self, op: nn.LayerNormOp, rewriter: PatternRewriter) -> str | None:
        if op.affine or len(int_list(op.normalized_shape)) != 1:
            return "a recomputed layer norm without affine parameters over the last dim is lowered here"
        n = self.numerics
        b = self._builder(op)
        x = b.operand(op.input, "x_q", n.data)
        width = TensorType(element_type(op.input), tensor_shape(op.input)[-1:])
        gamma = b.quantize(b.add(nn.FullOp(1.0, width), "ones"), "g_q", _fixed(x))
        beta = b.quantize(b.add(nn.FullOp(0.0, width), "zeros"), "b_q", _fixed(x))
        b.finish(rewriter, b.add(tinycl.LayerNormOp(x, gamma, beta, op.eps.value.data, n.rounding, n.overflow), "q"))
        return None

    # -- the update ----------------------------------------------------------------------------------------------

    def _SgdOp(self, op: grad.SgdOp, rewriter: PatternRewriter) -> str | None:
        n = self.numerics
        self._check_updates_can_land(op.lr.value.data)
        b = self._builder(op)
        param = b.quantize(op.param, "p_q", n.weight)
        step = b.operand(op.grad, "g_q", n.gradient)
        more: list[SSAValue] = []
        if op.velocity:
            velocity = b.quantize(op.velocity[0], "v_q", n.gradient)
            decay = b.constant(-op.momentum.value.data, "mu")
            decayed = self._exact_product(b, velocity, decay, "mv")
            step = b.add(tinycl.RequantOp(self._update(b, step, decayed, "v_acc"), fixed_type(op.param, n.gradient),
                                          n.rounding, n.overflow), "v_new")
            more.append(step)
        scaled = self._exact_product(b, step, b.constant(op.lr.value.data / self.numerics.loss_scale, "lr"), "lr_v")
        new = b.add(tinycl.RequantOp(self._update(b, param, scaled, "p_acc"), fixed_type(op.param, n.weight),
                                     n.rounding, n.overflow), "p_new")
        b.finish(rewriter, new, *more)
        return None

    def _check_updates_can_land(self, lr: float) -> None:
        """Refuses a step in which no update can ever change a weight: rounded to nearest, a weight moves only when
        its update ``(lr / loss-scale) · v`` reaches half a weight step, and ``v`` lives in the gradient format."""
        n = self.numerics
        if n.rounding != "nearest-even":
            return  # stochastic rounding keeps small updates on average; truncation always moves a weight
        gradient, weight = n.gradient, n.weight
        largest_velocity = (2 ** (gradient.total.data - 1) - 1) * 2.0 ** -gradient.frac.data
        largest_update = lr / n.loss_scale * largest_velocity
        half_step = 2.0 ** -(weight.frac.data + 1)
        if largest_update < half_step:
            raise pass_failure(
                PASS,
                f"no SGD update can change a weight: the largest update, lr / loss-scale x the largest velocity "
                f"({lr:g} / {n.loss_scale} x {largest_velocity:g} = {largest_update:.3g}), is below half a weight step "
                f"(2^-{weight.frac.data + 1} = {half_step:.3g}) and rounds away; raise weight-frac-bits "
                f"(now {weight.frac.data}), lower loss-scale, raise the learning rate, or use rounding=stochastic",
            )

    def _exact_product(self, b: _TrainingBuilder, value: SSAValue, constant: SSAValue, suffix: str) -> SSAValue:
        lhs, rhs = _fixed(value), _fixed(constant)
        exact = tinycl.FixedType(min(tinycl.MAX_BITS, lhs.total.data + rhs.total.data), lhs.frac.data + rhs.frac.data)
        n = self.numerics
        return b.add(tinycl.MulOp(value, constant, fixed_type(value, exact), n.rounding, n.overflow), suffix)

    def _update(self, b: _TrainingBuilder, lhs: SSAValue, rhs: SSAValue, suffix: str) -> SSAValue:
        """``lhs − rhs`` on the array's update mode, in an accumulator that holds both aligned operands."""
        a, c = _fixed(lhs), _fixed(rhs)
        frac = max(a.frac.data, c.frac.data)
        width = max(a.total.data + frac - a.frac.data, c.total.data + frac - c.frac.data) + 1
        accumulator = fixed_type(lhs, tinycl.FixedType(min(tinycl.MAX_BITS, width), frac))
        return b.add(tinycl.MacOp("update", lhs, rhs, None, accumulator), suffix)
