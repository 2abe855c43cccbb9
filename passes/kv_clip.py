"""``kv-clip``: ClipFormer on the K and V operands of softmax attention (docs/methods/clipformer.md).

On a memristive crossbar, K and V are written into arrays at every inference and writes are noisy, with a
noise that grows with the conductance. ClipFormer moves K and V low in the conductance range before they
are written: ``G1 = max(G - alpha·g_min, g_min)``, ``G2 = min(G1, beta·g_max)``. This pass makes that an
explicit ``attn.kv_clip`` on the key and the value of every ``attn.sdpa`` (or of those whose module path
matches ``layers``). The op carries the conductance range, so the reference executor runs it in value
units and a crossbar lowering folds it into the write of K and V.

Options: ``alpha`` (>= 0; the paper's operating point at γ = 5 is 2), ``beta`` (in (0, 1]; 0.25),
``layers`` (a regular expression on the module path; empty: every attention), ``g_min``/``g_max`` (the
conductance range in siemens the transform is defined on; defaults 0.1 µS / 10 µS, the paper's RRAM).
alpha = 0, beta = 1 is the identity. Operands already clipped are left alone, so the pass is idempotent.

```mlir
// before
%o = attn.sdpa %q, %k, %v {scale = 0.125 : f64, causal = false} : (...) -> tensor<1x4x16x32xf32>
// after
%k_clip = attn.kv_clip %k {alpha = 2.0 : f64, beta = 0.25 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64} : ...
%v_clip = attn.kv_clip %v {alpha = 2.0 : f64, beta = 0.25 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64} : ...
%o = attn.sdpa %q, %k_clip, %v_clip {scale = 0.125 : f64, causal = false} : (...) -> tensor<1x4x16x32xf32>
```
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint

from dialects import attn
from dialects.diagnostics import pass_failure
from dialects.locations import check_layers_pattern, path_matches
from passes.matchers import defining_op

DEFAULT_G_MIN = 0.1e-6
DEFAULT_G_MAX = 10e-6


@dataclass
class ClipKeyAndValue(RewritePattern):
    """Puts an ``attn.kv_clip`` between each of K and V and the attention that reads them."""

    alpha: float
    beta: float
    g_min: float
    g_max: float
    layers: str

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.SdpaOp, rewriter: PatternRewriter) -> None:
        if not path_matches(op, self.layers):
            return
        for operand_index, role in ((1, "key"), (2, "value")):
            stored = op.operands[operand_index]
            if isinstance(defining_op(stored), attn.KvClipOp):
                continue
            clip = attn.KvClipOp(stored, self.alpha, self.beta, self.g_min, self.g_max)
            clip.location = op.location
            clip.result.name_hint = f"{stored.name_hint or role}_clip"
            rewriter.insert(clip, InsertPoint.before(op))
            operands = list(op.operands)
            operands[operand_index] = clip.result
            op.operands = operands
            rewriter.notify_op_modified(op)


@dataclass(frozen=True)
class KvClipPass(ModulePass):
    """Insert ClipFormer's ``attn.kv_clip`` on K and V of softmax attention; see the module docstring."""

    name = "kv-clip"

    alpha: float = 2.0
    beta: float = 0.25
    layers: str = ""
    g_min: float = DEFAULT_G_MIN
    g_max: float = DEFAULT_G_MAX

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        check_layers_pattern(self.name, self.layers)
        for error in attn.clipformer_errors(self.alpha, self.beta):
            raise pass_failure("kv-clip", error)
        if not 0 <= self.g_min < self.g_max:
            raise pass_failure("kv-clip", f"need 0 <= g-min < g-max, got g-min={self.g_min}, g-max={self.g_max}")
        pattern = ClipKeyAndValue(float(self.alpha), float(self.beta), float(self.g_min), float(self.g_max), self.layers)
        PatternRewriteWalker(pattern, apply_recursively=False).rewrite_module(op)


def clipped_operand(value: SSAValue) -> tuple[SSAValue, attn.KvClipOp | None]:
    """The unclipped tensor behind ``value`` and the ``attn.kv_clip`` that produced it (None if unclipped)."""
    producer = defining_op(value)
    if isinstance(producer, attn.KvClipOp):
        return producer.input, producer
    return value, None
