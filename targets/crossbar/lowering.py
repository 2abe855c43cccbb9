"""``lower-to-xbar``: map a model onto tiled memristive crossbars (the ``xbar`` dialect).

* Every ``nn.linear`` whose weight is an ``nn.param`` becomes ``xbar.program`` (once per weight, placed
  after the parameter; the tiles are programmed once per model instance) and ``xbar.mvm``; the bias is
  added digitally (``nn.add``).
* Every ``attn.sdpa`` becomes two crossbar products around a digital softmax: K is written into tiles
  (``xbar.write``, the noisy per-inference path) and ``Q·Kᵀ`` is ``xbar.mvm``; ``attn.softmax`` applies
  scale, mask and causality digitally; Vᵀ is written and ``P·V`` is ``xbar.mvm``. An ``attn.kv_clip`` on
  K or V folds into its write (``clip_alpha``/``clip_beta``): on a crossbar ClipFormer acts on the
  conductances with the unclipped matrix's mapping scale. Grouped-query attention (K and V with H/G heads)
  writes each stored head once; the G query heads that read it are stacked as rows of one ``xbar.mvm``.
* Softmax, LayerNorm, GELU, embeddings and everything else stay digital (reference kernels).
* The device parameters become the module's ``xbar.device`` dictionary, read by the crossbar simulator
  (targets/crossbar/simulator.py; see targets/crossbar/device.py for the model and its conventions).

Options (kebab-case; defaults are ClipFormer's setup, docs/methods/clipformer.md): ``tile-rows``/``tile-cols`` (64),
``bits-per-cell`` (2), ``weight-bits`` (8, by bit slicing), ``input-bits`` (8; 0 = ideal DAC), ``adc-bits``
(6, a default, not the paper's; 0 = ideal ADC), ``adc-range`` (``dynamic``, ``max``, or
``calibrated``: the driver runs the lowered program on the calibration inputs right after the pass and fixes
each array's ADC full-scale, ``adc_full_scale`` on its op, ``fitting/adc_ranges.py``), ``g-min``/``g-max``
(0.1 µS / 10 µS), ``signed-mapping`` (``differential`` pair or ``offset``), ``gamma``/``sigma`` (write noise
``G + γ·sqrt((G-g_min)(g_max-g_min))·N(0, σ²)`` on every write of K and V; default γ = 5, the paper's
high-noise point; γ = 0 is noise-free; σ = 0.1 is a default, not the paper's), ``program-noise``/``read-noise``
(std as a fraction of g_max - g_min), ``stuck-at-rate``,
``mode`` (``fast``: one matmul per MVM with variance-matched ADC; ``exact``: per tile and slice),
``kv-range`` (``matrix``, default: each written matrix's max|x|; ``global``/``head``: a range per write site, or
per site and head, fixed at compile time at the ``kv-percentile`` (99.9) of |K|, |V| on the calibration inputs,
``fitting/kv_ranges.py``; ``token``: each token's max|x|) and ``clip-domain`` (``conductance``, default, or
``value``: where a folded kv-clip acts), recorded on every ``xbar.write`` (targets/crossbar/kv_ranges.py),
``skip-zero-tiles`` (default true): the weights ``attn-prune`` pruned get ``xbar.program {skip_zero_tiles}``;
their all-zero tiles are not programmed. The pass sees no weights: the compile driver counts those tiles
right after it (``fitting/zero_tiles.py``, ``zero_tiles = N`` on the op, one remark per matrix and a total),
the simulator leaves them out at program time, and the target's cost report counts them.

```mlir
// before
%q = nn.linear %h, %wq, %bq : (tensor<1x16x384xf32>, tensor<384x384xf32>, tensor<384xf32>) -> tensor<1x16x384xf32>
// after
%wq_tiles = xbar.program %wq : (tensor<384x384xf32>) -> !xbar.tiles<384x384, tile = 64x64, grid = 6x6>
%q_mvm = xbar.mvm %wq_tiles, %h : (!xbar.tiles<384x384, tile = 64x64, grid = 6x6>, tensor<1x16x384xf32>) -> ...
%q = nn.add %q_mvm, %bq : (tensor<1x16x384xf32>, tensor<384xf32>) -> tensor<1x16x384xf32>
```
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TypeVar

from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, FloatAttr, IntegerAttr, ModuleOp, StringAttr, TensorType, UnitAttr, i64
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint
from xdsl.transforms.dead_code_elimination import dce

from dialects import attn, nn, xbar
from dialects.diagnostics import pass_failure, remark
from dialects.projections import prune_record
from dialects.shapes import element_type, fmt_shape, tensor_shape
from passes.kv_clip import DEFAULT_G_MAX, DEFAULT_G_MIN, clipped_operand
from passes.matchers import defining_op
from targets.crossbar.device import CrossbarConfig, crossbar_config_errors

OpT = TypeVar("OpT", bound=Operation)
TILE_FIELDS = ("tile_rows", "tile_cols")  # in the !xbar.tiles types, not in xbar.device
# How the lowering maps weights and K/V (attributes on each xbar.program / xbar.write), not device parameters.
LOWERING_FIELDS = ("skip_zero_tiles", "kv_range", "clip_domain", "kv_percentile")


def _located(op: OpT, like: Operation, name: str | None = None) -> OpT:
    op.location = like.location
    if name is not None and op.results:
        op.results[0].name_hint = name
    return op


@dataclass
class LinearToCrossbar(RewritePattern):
    """``nn.linear`` with a parameter weight → ``xbar.program`` (shared per weight) + ``xbar.mvm`` + bias."""

    tile: tuple[int, int]
    skip_pruned: bool = True
    programmed: dict[SSAValue, SSAValue] = field(default_factory=dict)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.LinearOp, rewriter: PatternRewriter) -> None:
        param = defining_op(op.weight)
        if not isinstance(param, nn.ParamOp):
            remark(
                "lower-to-xbar", op, "the weight is computed, not a parameter: a static crossbar cannot hold it; stays digital"
            )
            return
        tiles = self.programmed.get(op.weight)
        if tiles is None:
            program = _located(xbar.ProgramOp(op.weight, self.tile), param, f"{op.weight.name_hint or 'w'}_tiles")
            if self.skip_pruned and prune_record(param) is not None:
                program.attributes["skip_zero_tiles"] = UnitAttr()
            rewriter.insert(program, InsertPoint.after(param))
            tiles = self.programmed[op.weight] = program.result
        name = op.result.name_hint
        mvm = _located(xbar.MvmOp(tiles, op.input), op, f"{name}_mvm" if op.bias is not None and name else name)
        new_ops: list[Operation] = [mvm]
        if op.bias is not None:
            new_ops.append(_located(nn.AddOp(mvm.result, op.bias, op.result.type), op, name))
        rewriter.replace(op, new_ops)


@dataclass
class SdpaToCrossbar(RewritePattern):
    """``attn.sdpa`` → write K, ``Q·Kᵀ`` on the crossbar, digital softmax, write Vᵀ, ``P·V`` on the crossbar."""

    tile: tuple[int, int]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.SdpaOp, rewriter: PatternRewriter) -> None:
        q, k, v = tensor_shape(op.query), tensor_shape(op.key), tensor_shape(op.value)
        if len(q) < 3:
            why = f"needs (batch..., length, dim) operands with a batch dim per stored matrix; got rank {len(q)}"
            remark("lower-to-xbar", op, why)
            return
        stored_k, stored_v = _repeated_heads(op.key), _repeated_heads(op.value)
        if stored_k is not None and stored_v is not None:  # write the K/V heads, not their repeats
            k, v = tensor_shape(stored_k), tensor_shape(stored_v)
        groups = _query_groups(q, k, v)
        if groups is None:
            remark(
                "lower-to-xbar",
                op,
                f"K {fmt_shape(k)} and V {fmt_shape(v)} must have Q's leading dims {fmt_shape(q[:-2])}, or fewer heads "
                "that divide Q's (grouped-query attention); stays digital",
            )
            return
        if stored_k is not None and stored_v is not None and groups > 1:
            (key, key_clip), (value, value_clip) = (stored_k, None), (stored_v, None)
        else:
            key, key_clip = clipped_operand(op.key)
            value, value_clip = clipped_operand(op.value)
        prefix = op.result.name_hint or "attn"
        new_ops: list[Operation] = []

        def add(new: OpT, name: str | None = None) -> OpT:
            new_ops.append(_located(new, op, name))
            return new

        def regroup(x: SSAValue, shape: tuple[int, ...], name: str) -> SSAValue:
            """(B, H, L, d) ↔ (B, H_kv, G·L, d): the query heads that share one stored K/V, stacked as rows."""
            if groups == 1:
                return x
            return add(nn.ReshapeOp(x, TensorType(element_type(x), shape)), name).results[0]

        grouped_rows = (*k[:-2], groups * q[-2])
        key_tiles = add(xbar.WriteOp(key, self.tile, _clip_of(key_clip)), f"{prefix}_k_tiles")
        query = regroup(op.query, (*grouped_rows, q[-1]), f"{prefix}_q_groups")
        grouped_scores = add(xbar.MvmOp(key_tiles.result, query), f"{prefix}_scores").result
        scores = regroup(grouped_scores, (*q[:-1], k[-2]), f"{prefix}_scores_heads")
        softmax = attn.SoftmaxOp(scores, op.mask, op.scale.value.data, bool(op.causal.value.data), attn.softcap_value(op))
        probs = regroup(add(softmax, f"{prefix}_probs").result, (*grouped_rows, k[-2]), f"{prefix}_probs_groups")
        rank = len(v)
        value_t = add(nn.TransposeOp(value, rank - 2, rank - 1), f"{prefix}_vt")
        value_tiles = add(xbar.WriteOp(value_t.results[0], self.tile, _clip_of(value_clip)), f"{prefix}_v_tiles")
        out = add(xbar.MvmOp(value_tiles.result, probs), op.result.name_hint if groups == 1 else f"{prefix}_groups")
        regroup(out.result, tensor_shape(op.result), op.result.name_hint or prefix)
        rewriter.replace(op, new_ops)


def _repeated_heads(value: SSAValue) -> SSAValue | None:
    """The (B, H_kv, L, d) tensor that ``value`` repeats to (B, H, L, d), as Hugging Face's ``repeat_kv`` writes
    it: reshape to (B, H_kv, 1, L, d), broadcast to (B, H_kv, G, L, d), reshape to (B, H_kv·G, L, d)."""
    merge = defining_op(value)
    if not isinstance(merge, nn.ReshapeOp):
        return None
    spread = defining_op(merge.input)
    if not isinstance(spread, nn.BroadcastToOp):
        return None
    insert = defining_op(spread.input)
    if not isinstance(insert, nn.ReshapeOp):
        return None
    source, single, wide, out = (tensor_shape(x) for x in (insert.input, insert.results[0], spread.results[0], value))
    if len(source) != 4 or single != (*source[:2], 1, *source[2:]) or len(wide) != 5:
        return None
    if wide[:2] != source[:2] or wide[3:] != source[2:] or out != (source[0], source[1] * wide[2], *source[2:]):
        return None
    return insert.input


def _query_groups(q: tuple[int, ...], k: tuple[int, ...], v: tuple[int, ...]) -> int | None:
    """How many query heads share each stored K/V head: 1 when K and V have Q's leading dims, G for
    grouped-query attention (K, V with H/G heads, H on dim -3), None for any other broadcast."""
    if k[:-2] == q[:-2] and v[:-2] == q[:-2]:
        return 1
    if len(q) < 3 or k[:-2] != v[:-2] or len(k) != len(q) or k[:-3] != q[:-3]:
        return None
    heads, kv_heads = q[-3], k[-3]
    if kv_heads < 1 or heads % kv_heads:
        return None
    return heads // kv_heads


def _clip_of(clip: attn.KvClipOp | None) -> tuple[float, float] | None:
    return None if clip is None else (clip.alpha.value.data, clip.beta.value.data)


@dataclass(frozen=True)
class LowerToXbarPass(ModulePass):
    """Lower linears and softmax attention onto tiled crossbars; see the module docstring."""

    name = "lower-to-xbar"

    tile_rows: int = 64
    tile_cols: int = 64
    bits_per_cell: int = 2
    weight_bits: int = 8
    input_bits: int = 8
    adc_bits: int = 6
    adc_range: str = "dynamic"
    g_min: float = DEFAULT_G_MIN
    g_max: float = DEFAULT_G_MAX
    signed_mapping: str = "differential"
    gamma: float = 5.0
    sigma: float = 0.1
    program_noise: float = 0.0
    read_noise: float = 0.0
    read_noise_pool: int = 0
    stuck_at_rate: float = 0.0
    stuck_at_high_fraction: float = 0.5
    mode: str = "fast"
    skip_zero_tiles: bool = True
    kv_range: str = "matrix"
    clip_domain: str = "conductance"
    kv_percentile: float = 99.9

    def check_options(self) -> None:
        """The device's own validation (``crossbar_config_errors``), with option spellings."""
        errors = crossbar_config_errors(self, spell=lambda name: name.replace("_", "-"))
        if self.kv_range not in xbar.KV_RANGES:
            errors.append(f"kv-range must be one of {', '.join(xbar.KV_RANGES)}, got '{self.kv_range}'")
        if self.clip_domain not in xbar.CLIP_DOMAINS:
            errors.append(f"clip-domain must be one of {', '.join(xbar.CLIP_DOMAINS)}, got '{self.clip_domain}'")
        if not 0.0 < self.kv_percentile <= 100.0:
            errors.append(f"kv-percentile must be in (0, 100], got {self.kv_percentile}")
        if self.kv_range != "matrix" and self.stuck_at_rate > 0:
            errors.append(f"kv-range={self.kv_range} does not model stuck-at cells (stuck-at-rate must be 0)")
        if errors:
            raise pass_failure("lower-to-xbar", errors[0])

    def device_attribute(self) -> DictionaryAttr:
        """The device parameters, one entry per field of the device configuration (``CrossbarConfig``) under the
        same name; the tile size is not repeated here: it lives in the ``!xbar.tiles`` types."""
        entries: dict[str, Attribute] = {}
        for item in dataclasses.fields(CrossbarConfig):
            if item.name in TILE_FIELDS:
                continue
            value = getattr(self, item.name)
            if isinstance(value, str):
                entries[item.name] = StringAttr(value)
            elif isinstance(value, int):
                entries[item.name] = IntegerAttr(value, i64)
            else:
                entries[item.name] = FloatAttr(float(value), 64)
        return DictionaryAttr(entries)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        self.check_options()
        if any(isinstance(o, (xbar.ProgramOp, xbar.WriteOp)) for o in op.walk()):
            raise pass_failure("lower-to-xbar", "the module is already lowered to crossbars")
        clipped = [o for o in op.walk() if isinstance(o, attn.KvClipOp)]
        if clipped and self.signed_mapping != "differential":
            raise pass_failure("lower-to-xbar", "kv-clip (ClipFormer) needs signed-mapping=differential (value 0 at g_min)")
        for clip in clipped:
            if (clip.g_min.value.data, clip.g_max.value.data) != (self.g_min, self.g_max):
                raise pass_failure(
                    "lower-to-xbar",
                    f"kv-clip was defined for g-min={clip.g_min.value.data}, g-max={clip.g_max.value.data} "
                    f"but the crossbar has g-min={self.g_min}, g-max={self.g_max}; give both passes the same range"
                )
        tile = (self.tile_rows, self.tile_cols)
        PatternRewriteWalker(SdpaToCrossbar(tile), apply_recursively=False).rewrite_module(op)
        PatternRewriteWalker(LinearToCrossbar(tile, self.skip_zero_tiles), apply_recursively=False).rewrite_module(op)
        dce(op)
        for write in (o for o in op.walk() if isinstance(o, xbar.WriteOp)):
            self.mark_range(write)
        op.attributes[xbar.DEVICE_ATTRIBUTE] = self.device_attribute()

    def mark_range(self, write: xbar.WriteOp) -> None:
        """The range policy and clip domain on a K/V write; a calibrated range is left for the driver to measure
        (``kv_percentile`` without ``kv_scale``: fitting/kv_ranges.py)."""
        if self.kv_range != "matrix":
            write.attributes["kv_range"] = StringAttr(self.kv_range)
        if self.kv_range in xbar.CALIBRATED_KV_RANGES:
            write.attributes["kv_percentile"] = FloatAttr(float(self.kv_percentile), 64)
        if self.clip_domain != "conductance" and write.clip is not None:
            write.attributes["clip_domain"] = StringAttr(self.clip_domain)
