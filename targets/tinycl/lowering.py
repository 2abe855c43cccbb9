"""``lower-to-tinycl``: run a model's forward pass on the TinyCL fixed-point MAC array (the ``tinycl`` dialect).

What is lowered (each op becomes quantize → fixed-point ops → dequantize; a dequantize feeding a quantize of
the same format is folded away, so chains of lowered ops stay in fixed point):

* ``nn.linear``: ``tinycl.mac forward`` on the quantized input and weight, the bias quantized straight into
  the accumulator format, then ``tinycl.requant`` back to the data format;
* ``nn.matmul`` (two dynamic operands): the rhs is transposed, then as a linear without bias;
* ``attn.sdpa``: ``Q·Kᵀ`` on the array, ``tinycl.softmax`` (exp table, exact integer sums, one rounded division
  per element; the scale folds into the table), ``P·V`` on the array; ``causal`` and an i1 keep-mask are
  supported, an additive float mask or soft-capping leaves the attention in float with a remark;
* ``attn.cosine`` (bidirectional, no mask): ``tinycl.l2_normalize`` of Q and K, ``(N(K)ᵀ·V)ᵀ`` and
  ``N(Q)·(N(K)ᵀV)`` on the array (linear in the sequence length), ``tinycl.head_scale`` for ``max(1, L^s)``;
* ``nn.layer_norm`` over the last dim with an affine weight and bias: ``tinycl.layer_norm``;
* ``nn.gelu`` (exact) and ``nn.relu``: ``tinycl.lut``.

Everything else stays digital, in float on the host, with one remark per compute op naming it (data movement
such as reshapes and transposes stays silently: it does not change values). The accumulator of each MAC is wide
enough that the sum cannot overflow: ``2·total + ceil(log2(K + 1)) + 1`` bits (at most 64); overflow happens
only where the data format is narrower (requantisation, softmax, layer norm), with the ``overflow`` mode.

Options: ``total-bits`` (2–16; 16 by default), ``frac-bits`` (0 ≤ frac < total; 8), ``rounding``
(``nearest-even``, ``truncate``, ``stochastic``: seeded by ``attnc run --seed``), ``overflow`` (``saturate``,
``wrap``), the array ``pe-rows`` × ``pe-cols`` (16 × 16), on-chip ``sram-kb`` (1024) and ``snake`` (the tile order
of the cost model; true). The pass fails when the memory plan's peak does not fit ``sram-kb``.

```mlir
// before
%y = nn.linear %x, %w, %b : (tensor<8x17x64xf32>, tensor<192x64xf32>, tensor<192xf32>) -> tensor<8x17x192xf32>
// after
%x_q = tinycl.quantize %x nearest-even saturate : (tensor<8x17x64xf32>) -> tensor<8x17x64x!tinycl.fixed<16, 8>>
%w_q = tinycl.quantize %w nearest-even saturate : (tensor<192x64xf32>) -> tensor<192x64x!tinycl.fixed<16, 8>>
%b_q = tinycl.quantize %b nearest-even saturate : (tensor<192xf32>) -> tensor<192x!tinycl.fixed<40, 16>>
%y_acc = tinycl.mac forward %x_q, %w_q, %b_q : (...) -> tensor<8x17x192x!tinycl.fixed<40, 16>>
%y_q = tinycl.requant %y_acc nearest-even saturate : (...) -> tensor<8x17x192x!tinycl.fixed<16, 8>>
%y = tinycl.dequantize %y_q : (tensor<8x17x192x!tinycl.fixed<16, 8>>) -> tensor<8x17x192xf32>
```
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import cast

from xdsl.context import Context
from xdsl.dialects.builtin import BoolAttr, DictionaryAttr, FloatAttr, IntegerAttr, ModuleOp, StringAttr, TensorType, i64
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.transforms.dead_code_elimination import dce

from dialects import attn, grad, nn, tinycl
from dialects.diagnostics import pass_failure, remark
from dialects.shapes import element_type, fmt_shape, is_bool, is_float, tensor_shape
from passes.training_step import INPUT_GRADIENT, PHASE_ATTRIBUTE, UPDATES_ATTRIBUTE, WEIGHT_GRADIENT
from targets.tinycl.builder import Builder, Numerics
from targets.tinycl.cost import SramOverflow, memory_plan
from targets.tinycl.formats import (
    DEFAULT_HEADROOM,
    FORMAT_MODES,
    MAX_ABS_ATTRIBUTE,
    PARAMETER_POINTS,
    PENDING_ATTRIBUTE,
    POINTS,
    calibrated_frac,
    recorded_ranges,
)
from targets.tinycl.training_lowering import TRAINING_OPS, LowerTrainingOps, gradient_cone

PASS = "lower-to-tinycl"
MAX_TOTAL_BITS = 16  # the layer-norm statistics and the function tables are sized for 16-bit data
DATA_MOVEMENT = (
    nn.ReshapeOp,
    nn.TransposeOp,
    nn.PermuteOp,
    nn.BroadcastToOp,
    nn.SliceOp,
    nn.SelectOp,
    nn.ConcatOp,
    nn.ParamOp,
    nn.ConstantOp,
    nn.FullOp,
    nn.ArangeOp,
    nn.DropoutOp,
)


LOWERED = (nn.LinearOp, nn.MatmulOp, attn.SdpaOp, attn.CosineOp, nn.LayerNormOp, nn.GeluOp, nn.ReluOp)


def _float_operands(op: Operation) -> bool:
    """Whether the values the array would compute on are float (an attention mask is not one of them)."""
    mask = op.mask if isinstance(op, attn.SdpaOp) else None
    return all(is_float(element_type(v)) for v in (*op.operands, *op.results) if v is not mask)


@dataclass
class LowerToTinycl(RewritePattern):
    """Every supported op onto the array; see the module docstring."""

    numerics: Numerics
    training: bool = False  # a training step: LowerTrainingOps lowers the recomputed layer norms without affine
    cone: set[Operation] = field(default_factory=set)  # a training step's ops computed from the loss gradient
    calibrated: bool = False  # formats=calibrated: each point's format from the op's recorded max |x|
    headroom: float = DEFAULT_HEADROOM

    def _point(
        self, op: Operation, point: str, default: tinycl.FixedType | None = None, cap: int | None = None
    ) -> tuple[tinycl.FixedType, float | None]:
        """The format of one quantisation point of ``op``: calibrated (with its max |x|) or ``default``."""
        ranges = recorded_ranges(op) if self.calibrated else None
        if ranges is None or point not in ranges:
            return default or self.numerics.data, None
        total = self.numerics.total
        headroom = 1.0 if point in PARAMETER_POINTS else self.headroom
        frac = calibrated_frac(ranges[point], total, headroom, total - 1 if cap is None else cap)
        return tinycl.FixedType(total, frac), ranges[point]

    def _quantize(
        self, b: Builder, op: Operation, value: SSAValue, suffix: str, point: str,
        default: tinycl.FixedType | None = None, cap: int | None = None,
    ) -> SSAValue:
        fmt, max_abs = self._point(op, point, default, cap)
        return _recorded(b, b.quantize(value, suffix, fmt), max_abs)

    def _requant(self, b: Builder, op: Operation, value: SSAValue, suffix: str, point: str) -> SSAValue:
        fmt, max_abs = self._point(op, point)
        return _recorded(b, b.requant(value, suffix, fmt), max_abs)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, LOWERED):
            return
        if self.training and isinstance(op, nn.LayerNormOp) and not op.affine:
            return
        if not _float_operands(op):
            remark(PASS, op, f"{op.name} on non-float operands stays digital (float on the host)")
            return
        why = getattr(self, f"_{type(op).__name__}")(op, rewriter)
        if why:
            remark(PASS, op, f"{op.name} stays digital (float on the host): {why}")

    def _LinearOp(self, op: nn.LinearOp, rewriter: PatternRewriter) -> str | None:
        b = Builder(op, self.numerics)
        depth = tensor_shape(op.weight)[1]
        n = self.numerics
        x, w = self._quantize(b, op, op.input, "x_q", "input"), self._quantize(b, op, op.weight, "w_q", "weight", n.weight)
        x_format, w_format = element_type(x), element_type(w)
        assert isinstance(x_format, tinycl.FixedType) and isinstance(w_format, tinycl.FixedType)
        bias = None if op.bias is None else b.quantize(op.bias, "b_q", n.wide_accumulator(depth, x_format, w_format))
        b.finish(rewriter, self._requant(b, op, b.mac(x, w, bias, depth, "acc"), "q", "result"))
        return None

    def _MatmulOp(self, op: nn.MatmulOp, rewriter: PatternRewriter) -> str | None:
        phase = op.attributes.get(PHASE_ATTRIBUTE)
        if isinstance(phase, StringAttr) and phase.data in (INPUT_GRADIENT, WEIGHT_GRADIENT):
            return self._gradient_gemm(op, phase.data, rewriter)
        lhs, rhs = tensor_shape(op.lhs), tensor_shape(op.rhs)
        if len(lhs) < 2 or not (len(rhs) == 2 or rhs[:-2] == lhs[:-2]):
            return f"operands {fmt_shape(lhs)} and {fmt_shape(rhs)} need one batch shape (or a 2-d rhs)"
        b = Builder(op, self.numerics)
        a = self._quantize(b, op, op.lhs, "a_q", "lhs")
        rhs_t = self._quantize(b, op, b.transpose(op.rhs, "bt"), "bt_q", "rhs")
        b.finish(rewriter, self._requant(b, op, b.mac(a, rhs_t, None, lhs[-1], "acc"), "q", "result"))
        return None

    def _gradient_gemm(self, op: nn.MatmulOp, phase: str, rewriter: PatternRewriter) -> str | None:
        """A GEMM of the backward program in its MAC mode: the gradient operand in the gradient format, the
        other in the data (or weight) format, an accumulator that cannot overflow, requantised to gradients.

        ``input-gradient``: ``dy (…, M, N) · B (…, N, K)``; ``weight-gradient``: the pass wrote ``dyᵀ x`` as
        ``(N, M) · (M, K)``, the array takes ``dy (M, N)`` and ``x (M, K)`` and contracts their rows.
        """
        lhs, rhs = tensor_shape(op.lhs), tensor_shape(op.rhs)
        n = self.numerics
        b = Builder(op, n)
        if phase == INPUT_GRADIENT:
            if len(lhs) < 2 or not (len(rhs) == 2 or rhs[:-2] == lhs[:-2]):
                return f"operands {fmt_shape(lhs)} and {fmt_shape(rhs)} need one batch shape (or a 2-d rhs)"
            # the gradient is the operand computed from the loss gradient: dy·W, or Pᵀ·dy for attention's dV
            lhs_is_gradient = op.lhs.owner in self.cone or op.rhs.owner not in self.cone
            gradient = b.operand(op.lhs, "g_q", n.gradient if lhs_is_gradient else n.data)
            other = b.operand(op.rhs, "r_q", n.data if lhs_is_gradient else n.gradient)
            depth = lhs[-1]
        else:
            if len(lhs) != 2 or len(rhs) != 2:
                return f"a weight gradient of {fmt_shape(lhs)} and {fmt_shape(rhs)} (2-d operands expected)"
            gradient = b.quantize(b.transpose(op.lhs, "g"), "g_q", n.gradient)
            other = b.operand(op.rhs, "x_q", n.data)
            depth = lhs[-1]
        formats = element_type(gradient), element_type(other)
        assert isinstance(formats[0], tinycl.FixedType) and isinstance(formats[1], tinycl.FixedType)
        shape = tinycl.mac_result_shape(phase, tensor_shape(gradient), tensor_shape(other))
        accumulator = TensorType(n.wide_accumulator(depth, formats[0], formats[1]), shape)
        acc = b.add(tinycl.MacOp(phase, gradient, other, None, accumulator), "acc")
        out = b.add(tinycl.RequantOp(acc, TensorType(n.gradient, shape), n.rounding, n.overflow), "q")
        b.finish(rewriter, out)
        return None

    def _SdpaOp(self, op: attn.SdpaOp, rewriter: PatternRewriter) -> str | None:
        if op.mask is not None and not is_bool(element_type(op.mask)):
            return "an additive float mask is not supported by the fixed-point softmax (an i1 keep-mask and causal are)"
        if attn.softcap_value(op) is not None:
            return "soft-capped scores are not supported by the fixed-point softmax"
        if self.numerics.frac > self.numerics.total - 2 and not self.calibrated:
            return f"the fixed-point softmax needs 1.0 representable (frac-bits <= total-bits - 2), got {self.numerics.data}"
        q, k, v = (tensor_shape(x) for x in (op.query, op.key, op.value))
        if not (len(q) >= 2 and k[:-2] == q[:-2] and v[:-2] == q[:-2]):
            return f"Q {fmt_shape(q)}, K {fmt_shape(k)}, V {fmt_shape(v)} need one batch shape"
        b = Builder(op, self.numerics)
        query, key = self._quantize(b, op, op.query, "q_q", "query"), self._quantize(b, op, op.key, "k_q", "key")
        value_t = self._quantize(b, op, b.transpose(op.value, "vt"), "vt_q", "value")
        scores_format, scores_max = self._point(op, "scores", self.numerics.scores)
        scores = _recorded(b, b.requant(b.mac(query, key, None, q[-1], "scores_acc"), "scores", scores_format), scores_max)
        probabilities = TensorType(self.numerics.probability, tensor_shape(scores))
        probs = b.add(tinycl.SoftmaxOp(scores, op.scale.value.data, bool(op.causal.value.data), op.mask, probabilities), "probs")
        b.finish(rewriter, self._requant(b, op, b.mac(probs, value_t, None, k[-2], "out_acc"), "out_q", "result"))
        return None

    def _CosineOp(self, op: attn.CosineOp, rewriter: PatternRewriter) -> str | None:
        if op.causal.value.data or op.mask is not None:
            return "only bidirectional cosine attention without a mask is lowered"
        if self.numerics.frac > self.numerics.total - 2 and not self.calibrated:
            return f"unit vectors need 1.0 representable (frac-bits <= total-bits - 2), got {self.numerics.data}"
        q, k = tensor_shape(op.query), tensor_shape(op.key)
        b = Builder(op, self.numerics)
        unit = self.numerics.total - 2  # the normalised rows keep their input's format, which must hold 1.0
        query = b.add(tinycl.L2NormalizeOp(self._quantize(b, op, op.query, "q_q", "query", cap=unit)), "qn")
        key = b.add(tinycl.L2NormalizeOp(self._quantize(b, op, op.key, "k_q", "key", cap=unit)), "kn")
        key_float = b.add(tinycl.DequantizeOp(key, op.key.type), "kn_f")
        key_t = b.quantize(b.transpose(key_float, "knt_f"), "knt", cast(tinycl.FixedType, element_type(key)))
        value_t = self._quantize(b, op, b.transpose(op.value, "vt"), "vt_q", "value")
        state = self._requant(b, op, b.mac(value_t, key_t, None, k[-2], "state_acc"), "state", "state")  # (N(K)ᵀV)ᵀ
        out = self._requant(b, op, b.mac(query, state, None, q[-1], "out_acc"), "out_q", "out")
        n = self.numerics
        b.finish(rewriter, b.add(tinycl.HeadScaleOp(out, op.m, k[-2], n.rounding, n.overflow), "scaled"))
        return None

    def _LayerNormOp(self, op: nn.LayerNormOp, rewriter: PatternRewriter) -> str | None:
        if len(tensor_shape(op.result)) < 1 or len(list(op.normalized_shape.iter_values())) != 1:
            return "only normalisation over the last dim is supported"
        if op.weight is None or op.bias is None:
            return "a layer norm without an affine weight and bias is not supported"
        n = self.numerics
        b = Builder(op, n)
        x = self._quantize(b, op, op.input, "x_q", "input")
        gamma, beta = self._quantize(b, op, op.weight, "g_q", "weight"), self._quantize(b, op, op.bias, "b_q", "bias")
        fmt, max_abs = self._point(op, "result")
        normed = tinycl.LayerNormOp(x, gamma, beta, op.eps.value.data, n.rounding, n.overflow, TensorType(fmt, tensor_shape(x)))
        b.finish(rewriter, _recorded(b, b.add(normed, "q"), max_abs))
        return None

    def _GeluOp(self, op: nn.GeluOp, rewriter: PatternRewriter) -> str | None:
        if op.approximate.data != "none":
            return f'the table holds exact GELU, not approximate = "{op.approximate.data}"'
        return self._table(op, "gelu", rewriter)

    def _ReluOp(self, op: nn.ReluOp, rewriter: PatternRewriter) -> str | None:
        return self._table(op, "relu", rewriter)

    def _table(self, op: Operation, function: str, rewriter: PatternRewriter) -> str | None:
        b = Builder(op, self.numerics)
        x = self._quantize(b, op, op.operands[0], "x_q", "input")
        fmt, max_abs = self._point(op, "result", cast(tinycl.FixedType, element_type(x)))
        b.finish(rewriter, _recorded(b, b.add(tinycl.LutOp(x, function, TensorType(fmt, tensor_shape(x))), "q"), max_abs))
        return None


def _recorded(b: Builder, value: SSAValue, max_abs: float | None) -> SSAValue:
    """Notes the calibrated max |x| that chose the format of ``value`` on the op the builder just made for it."""
    if max_abs is not None and isinstance(value.owner, Operation) and value.owner in b.ops:
        value.owner.attributes[tinycl.CALIBRATED_MAX_ATTRIBUTE] = FloatAttr(max_abs, 64)
    return value


@dataclass
class FoldRoundTrip(RewritePattern):
    """``quantize(dequantize(c))`` into the format ``c`` already has is ``c``: exact, so it is dropped. With
    per-tensor formats (``between_formats``), one into another format is ``requant(c)``: a shift on the array
    instead of a trip through float on the host."""

    between_formats: bool = False

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, tinycl.QuantizeOp) or not isinstance(op.input.owner, tinycl.DequantizeOp):
            return
        codes = op.input.owner.input
        if codes.type == op.result.type:
            rewriter.replace(op, [], [codes])
        elif self.between_formats and tensor_shape(codes) == tensor_shape(op.result):
            shift = tinycl.RequantOp(codes, op.result.type, op.rounding.data, op.overflow.data)
            shift.attributes.update({k: v for k, v in op.attributes.items() if k not in ("rounding", "overflow")})
            shift.location = op.location
            shift.result.name_hint = op.result.name_hint
            rewriter.replace(op, [shift], [shift.result])


def _remark_digital(module: ModuleOp) -> None:
    training = UPDATES_ATTRIBUTE in module.attributes
    backward = Counter(op.name for op in module.walk() if op.dialect_name() == "grad")
    for name, count in backward.items():  # one line per kind: a training step holds one per parameter
        if name == grad.CrossEntropyOp.name:
            remark(PASS, None, f"{name}: the reported loss value stays on the host (float); no update depends on it")
        elif not issubclass(type(next(o for o in module.walk() if o.name == name)), TRAINING_OPS):
            remark(PASS, None, f"{count} x {name}: no fixed-point lowering yet, stays on the host (float)")
    for op in module.walk():
        if op.dialect_name() == "grad":
            continue
        zero_pad = isinstance(op, nn.PadOp) and op.value.value.data == 0.0  # moves codes, adds exact zeros
        if op.dialect_name() in ("nn", "attn") and not isinstance(op, DATA_MOVEMENT) and not zero_pad:
            if isinstance(op, LOWERED) or (training and isinstance(op, TRAINING_OPS)):
                continue  # these already said why they stayed
            remark(PASS, op, f"{op.name} is not a TinyCL operator: stays digital (float on the host)")


def lowered_ops(module: ModuleOp) -> list[Operation]:
    """The ops the lowering takes onto the array (those of the kinds in LOWERED on float values)."""
    return [o for o in module.walk() if isinstance(o, LOWERED) and type(o) in POINTS and _float_operands(o)]


def _ranges_recorded(module: ModuleOp) -> bool:
    return all(recorded_ranges(o) is not None for o in lowered_ops(module))


@dataclass(frozen=True)
class LowerToTinyclPass(ModulePass):
    """Lower the forward pass onto the TinyCL fixed-point MAC array; see the module docstring."""

    name = "lower-to-tinycl"

    total_bits: int = 16
    frac_bits: int = 8
    rounding: str = "nearest-even"
    overflow: str = "saturate"
    pe_rows: int = 16
    pe_cols: int = 16
    sram_kb: int = 1024
    snake: bool = True
    weight_frac_bits: int = -1
    grad_frac_bits: int = -1
    prob_frac_bits: int = -1
    score_frac_bits: int = -1
    loss_scale: int = 16
    formats: str = "uniform"
    headroom: float = DEFAULT_HEADROOM

    @property
    def weight_frac(self) -> int:
        """Fractional bits of linear weights (``weight-frac-bits``; -1, the default, means ``frac-bits``)."""
        return self.frac_bits if self.weight_frac_bits == -1 else self.weight_frac_bits

    def option_errors(self) -> list[str]:
        """Every problem with the options, spelled as on the command line."""
        errors = []
        if not 2 <= self.total_bits <= MAX_TOTAL_BITS:
            errors.append(f"total-bits must be in [2, {MAX_TOTAL_BITS}], got {self.total_bits}")
        elif self.formats == "calibrated":
            pass  # every quantisation point gets its own fractional bits: frac-, weight- and score-frac-bits are unused
        elif not 0 <= self.frac_bits < self.total_bits:
            errors.append(f"frac-bits must be in [0, total-bits) = [0, {self.total_bits}), got {self.frac_bits}")
        elif not 0 <= self.weight_frac < self.total_bits:
            errors.append(
                f"weight-frac-bits must be -1 (= frac-bits) or in [0, total-bits) = [0, {self.total_bits}), "
                f"got {self.weight_frac_bits}"
            )
        if not (self.prob_frac_bits == -1 or 0 <= self.prob_frac_bits <= self.total_bits - 2):
            errors.append(
                f"prob-frac-bits must be -1 (= total-bits - 2) or in [0, total-bits - 2] = [0, {self.total_bits - 2}], "
                f"got {self.prob_frac_bits}"
            )
        if not (self.score_frac_bits == -1 or 0 <= self.score_frac_bits < self.total_bits):
            errors.append(
                f"score-frac-bits must be -1 (= frac-bits) or in [0, total-bits) = [0, {self.total_bits}), "
                f"got {self.score_frac_bits}"
            )
        if self.formats not in FORMAT_MODES:
            errors.append(f"formats must be one of {', '.join(FORMAT_MODES)}, got '{self.formats}'")
        if not self.headroom >= 1.0:
            errors.append(f"headroom must be at least 1 (a factor on the calibrated max |x|), got {self.headroom}")
        if self.loss_scale < 1:
            errors.append(f"loss-scale must be at least 1, got {self.loss_scale}")
        if not (self.grad_frac_bits == -1 or 0 <= self.grad_frac_bits < self.total_bits):
            errors.append(
                f"grad-frac-bits must be -1 (the default) or in [0, total-bits) = [0, {self.total_bits}), "
                f"got {self.grad_frac_bits}"
            )
        if self.rounding not in tinycl.ROUNDING_MODES:
            errors.append(f"rounding must be one of {', '.join(tinycl.ROUNDING_MODES)}, got '{self.rounding}'")
        if self.overflow not in tinycl.OVERFLOW_MODES:
            errors.append(f"overflow must be one of {', '.join(tinycl.OVERFLOW_MODES)}, got '{self.overflow}'")
        for option, value in (("pe-rows", self.pe_rows), ("pe-cols", self.pe_cols), ("sram-kb", self.sram_kb)):
            if value < 1:
                errors.append(f"{option} must be at least 1, got {value}")
        return errors

    def config_attribute(self) -> DictionaryAttr:
        entries: dict[str, Attribute] = {
            "total_bits": IntegerAttr(self.total_bits, i64),
            "frac_bits": IntegerAttr(self.frac_bits, i64),
            "weight_frac_bits": IntegerAttr(self.weight_frac, i64),
            "rounding": StringAttr(self.rounding),
            "overflow": StringAttr(self.overflow),
            "pe_rows": IntegerAttr(self.pe_rows, i64),
            "pe_cols": IntegerAttr(self.pe_cols, i64),
            "sram_kb": IntegerAttr(self.sram_kb, i64),
            "snake": BoolAttr.from_bool(self.snake),
        }
        if self.formats == "calibrated":  # each value's type holds its format: no one data or weight format
            del entries["frac_bits"], entries["weight_frac_bits"]
            entries["formats"] = StringAttr(self.formats)
            entries["headroom"] = FloatAttr(self.headroom, 64)
        return DictionaryAttr(entries)

    def options_attribute(self) -> DictionaryAttr:
        """Every option, to run this pass again once calibration has recorded the ranges (see ``pending``)."""
        entries: dict[str, Attribute] = {}
        for option in fields(self):
            value = getattr(self, option.name)
            if isinstance(value, bool):
                entries[option.name] = BoolAttr.from_bool(value)
            elif isinstance(value, int):
                entries[option.name] = IntegerAttr(value, i64)
            elif isinstance(value, float):
                entries[option.name] = FloatAttr(value, 64)
            else:
                entries[option.name] = StringAttr(str(value))
        return DictionaryAttr(entries)

    @classmethod
    def pending(cls, module: ModuleOp) -> LowerToTinyclPass | None:
        """The lowering a module waits to run until its formats are calibrated, or None."""
        options = module.attributes.get(PENDING_ATTRIBUTE)
        if not isinstance(options, DictionaryAttr):
            return None
        values: dict[str, object] = {}
        for name, value in options.data.items():
            if isinstance(value, (IntegerAttr, FloatAttr)):
                values[name] = value.value.data
            elif isinstance(value, StringAttr):
                values[name] = value.data
        values["snake"] = bool(values.get("snake", True))
        return cls(**values)  # type: ignore[arg-type]

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        errors = self.option_errors()
        if errors:
            raise pass_failure(PASS, errors[0])
        if tinycl.CONFIG_ATTRIBUTE in op.attributes or any(o.dialect_name() == "tinycl" for o in op.walk()):
            raise pass_failure(PASS, "the module is already lowered to TinyCL")
        numerics = Numerics(
            self.total_bits, self.frac_bits, self.rounding, self.overflow, self.weight_frac, self.grad_frac_bits,
            self.prob_frac_bits, self.score_frac_bits, self.loss_scale,
        )
        if self.formats == "calibrated":  # the fall-back formats of points with no range: valid at any total-bits
            half = self.total_bits // 2
            numerics = dataclasses.replace(numerics, frac=half, weight_frac=half, score_frac=-1)
        training = UPDATES_ATTRIBUTE in op.attributes
        calibrated = self.formats == "calibrated"
        if calibrated and training:
            raise pass_failure(
                PASS, "formats=calibrated chooses inference formats from calibration data; a training step keeps uniform "
                "formats (set them with frac-bits, weight-frac-bits and grad-frac-bits)"
            )
        if calibrated and not _ranges_recorded(op):
            op.attributes[PENDING_ATTRIBUTE] = self.options_attribute()
            remark(PASS, None, "formats=calibrated: the lowering runs once the calibration step (attnc compile, right after "
                   "this pass) has recorded each quantisation point's max |x| on the calibration inputs")
            return
        cone = gradient_cone(op) if training else set()
        patterns: list[RewritePattern] = [LowerToTinycl(numerics, training, cone, calibrated, self.headroom)]
        if training:  # a training step: its backward units and update too
            patterns.append(LowerTrainingOps(numerics, cone))
        PatternRewriteWalker(GreedyRewritePatternApplier(patterns), apply_recursively=False).rewrite_module(op)
        PatternRewriteWalker(FoldRoundTrip(calibrated), apply_recursively=False).rewrite_module(op)
        dce(op)
        for stayed in op.walk():  # ops left on the host keep no calibration record
            stayed.attributes.pop(MAX_ABS_ATTRIBUTE, None)
        _remark_digital(op)
        config = self.config_attribute()
        if UPDATES_ATTRIBUTE in op.attributes:  # a training step: gradients have their own format
            entries = dict(config.data)
            entries["grad_frac_bits"] = IntegerAttr(numerics.gradient.frac.data, i64)
            config = DictionaryAttr(entries)
        op.attributes[tinycl.CONFIG_ATTRIBUTE] = config
        try:
            memory_plan(op, self.sram_kb)
        except SramOverflow as error:
            raise pass_failure(PASS, str(error)) from None
