"""``abft-weave``: algorithm-based fault tolerance for attention (and linear layers), docs/methods/abft.md.

Every ``attn.sdpa`` (or those whose module path matches ``layers``) becomes ``abft.sdpa``: the same
attention, computed blockwise with an online softmax and checked once per query row.

* ``check=flash`` (default): Flash-ABFT's online output checksum (``cs_i`` kept beside the running max,
  normaliser and output, covering V, the P·V products, the accumulator, the output), plus the score row sums
  ``Σ_j s_ij = q_i·Σ_j k_j`` (covering Q, K and Q·Kᵀ) and an independently accumulated normaliser (covering
  exp/P and ℓ). ``check=per-gemm``: classic checksums on each block's Q·Kᵀ and P·V, the baseline.
  ``check=both``: the union, for comparison.
* ``linear=true``: also every ``nn.linear`` whose weight is a static parameter (``nn.param``) becomes
  ``abft.linear`` with row and column checksums; a linear whose weight is computed is left with a remark.
* ``tol`` (relative; default 1e-5, chosen from the clean residuals, see the docs), ``block`` (keys per
  online-softmax step, 128), ``on-fault`` (``raise``: stop with the op's module path and the invariant;
  ``recompute``: re-run the failing block and return the fault-free output; ``count``: record and go on).

Ops already checked are left alone, so the pass is idempotent.

```mlir
// before
%o = attn.sdpa %q, %k, %v mask %m {scale = 0.25 : f64, causal = false} : (...) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
// after
%o = abft.sdpa "flash" %q, %k, %v mask %m tol 1.000000e-05 : f64 block 128 : i64 on_fault "raise"
       {scale = 0.25 : f64, causal = false} : (...) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
```
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern

from dialects import abft, attn, nn
from dialects.diagnostics import pass_failure, remark
from dialects.locations import check_layers_pattern, path_matches
from dialects.shapes import element_type, is_float
from passes.matchers import defining_op

NAME = "abft-weave"


@dataclass
class CheckAttention(RewritePattern):
    """``attn.sdpa`` → ``abft.sdpa`` with the pass's check, tolerance, block size and fault policy."""

    check: str
    tol: float
    block: int
    on_fault: str
    layers: str

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.SdpaOp, rewriter: PatternRewriter) -> None:
        if not path_matches(op, self.layers):
            return
        if attn.softcap_value(op) is not None:
            remark("abft-weave", op, "soft-capped scores: the checked kernel has no soft-cap; left unchecked")
            return
        checked = abft.SdpaOp(
            op.query,
            op.key,
            op.value,
            op.mask,
            op.scale.value.data,
            bool(op.causal.value.data),
            op.result.type,
            check=self.check,
            tol=self.tol,
            block=self.block,
            on_fault=self.on_fault,
        )
        checked.location = op.location
        rewriter.replace(op, checked)


@dataclass
class CheckLinear(RewritePattern):
    """``nn.linear`` with a static weight → ``abft.linear`` (row and column checksums)."""

    tol: float
    on_fault: str
    layers: str

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.LinearOp, rewriter: PatternRewriter) -> None:
        if not path_matches(op, self.layers):
            return
        if not isinstance(defining_op(op.weight), nn.ParamOp):
            remark(NAME, op, "linear left unchecked: its weight is computed, not a static parameter")
            return
        if not is_float(element_type(op.input)):
            remark(NAME, op, f"linear left unchecked: element type {element_type(op.input)} is not floating point")
            return
        checked = abft.CheckedLinearOp(op.input, op.weight, op.bias, op.result.type, tol=self.tol, on_fault=self.on_fault)
        checked.location = op.location
        rewriter.replace(op, checked)


@dataclass(frozen=True)
class AbftWeavePass(ModulePass):
    """Turn softmax attention (and optionally static linears) into self-checking ops; see the module docstring."""

    name = "abft-weave"

    check: str = "flash"
    tol: float = 1e-5
    layers: str = ""
    linear: bool = False
    on_fault: str = "raise"
    block: int = 128

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        check_layers_pattern(self.name, self.layers)
        if self.check not in abft.CHECKS:
            raise pass_failure(NAME, f"check must be one of {', '.join(abft.CHECKS)}, got '{self.check}'")
        if self.on_fault not in abft.ON_FAULT:
            raise pass_failure(NAME, f"on-fault must be one of {', '.join(abft.ON_FAULT)}, got '{self.on_fault}'")
        if not 0.0 < self.tol <= abft.MAX_TOL:
            raise pass_failure(NAME, f"tol is relative and must be in (0, {abft.MAX_TOL}], got {self.tol}")
        if self.block < 1:
            raise pass_failure(NAME, f"block must be at least 1 key, got {self.block}")
        tol = float(self.tol)
        PatternRewriteWalker(
            CheckAttention(self.check, tol, self.block, self.on_fault, self.layers), apply_recursively=False
        ).rewrite_module(op)
        if self.linear:
            PatternRewriteWalker(CheckLinear(tol, self.on_fault, self.layers), apply_recursively=False).rewrite_module(op)
