"""``attn-prune``: prune the query and key projections of softmax attention (docs/methods/pruning.md).

Learned masks ("Beyond Linear Approximations", arXiv 2410.11261): the mask of W_Q and W_K is chosen to keep
the *attention matrix* ``softmax(scale · Q Kᵀ + mask)`` close to the dense one on calibration data, not the
linear outputs ``X W`` that Wanda and SparseGPT preserve. Those baselines and magnitude pruning are methods
of the same pass.

A pass sees no weights, so this pass records the decision in the IR and the fitting layer carries it out:
the W_Q and W_K ``nn.param`` of every ``attn.sdpa`` (whose module path matches ``layers``) get an
``attn.prune`` dictionary with the method and its options and ``status = "pending"``. The driver then
captures the calibration activations the method needs by running the executor, computes the masks
(``fitting/prune.py``), writes the pruned weights and sets ``status = "applied"`` with the sparsity each
matrix reached. The record stays in ``model.mlir``, so a later pass (or a reader) sees what is pruned.

Options: ``sparsity`` (fraction of each matrix set to zero, in [0, 1); 0.5), ``method`` (``learned``,
``magnitude``, ``wanda``, ``sparsegpt``), ``granularity`` (``unstructured``: the same count per output row;
``2:4``: two of every four consecutive inputs, 50 %), ``layers`` (regular expression on the module path),
and for ``learned``: ``relaxation`` (``ste``, ``projected``, ``sigmoid``), ``steps``, ``lr``, ``reg`` (λ of the
paper's ½λ‖M‖², on the mean of M²), ``seed``.

```mlir
// after attn-prune{method=wanda sparsity=0.7}
%wq = nn.param @layer.0.attention.self.query.weight {attn.prune = {granularity = "unstructured",
        method = "wanda", role = "query", sparsity = 7.000000e-01 : f64, status = "pending"}} : tensor<384x384xf32>
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from dialects import attn
from dialects.diagnostics import pass_failure, remark
from dialects.locations import check_layers_pattern, path_matches
from dialects.projections import PENDING, query_key_paths, set_prune_record
from dialects.shapes import tensor_shape

METHODS = ("learned", "magnitude", "wanda", "sparsegpt")
GRANULARITIES = ("unstructured", "2:4")
RELAXATIONS = ("ste", "projected", "sigmoid")


@dataclass(frozen=True)
class AttnPrunePass(ModulePass):
    """Mark W_Q and W_K of softmax attention for pruning; see the module docstring."""

    name = "attn-prune"

    sparsity: float = 0.5
    method: str = "learned"
    granularity: str = "unstructured"
    layers: str = ""
    relaxation: str = "ste"
    steps: int = 200
    lr: float = 0.05
    reg: float = 0.0
    seed: int = 0

    def check_options(self) -> None:
        check_layers_pattern(self.name, self.layers)
        if not 0 <= self.sparsity < 1:
            raise pass_failure(self.name, f"sparsity must be in [0, 1), got {self.sparsity}")
        for option, value, known in (
            ("method", self.method, METHODS),
            ("granularity", self.granularity, GRANULARITIES),
            ("relaxation", self.relaxation, RELAXATIONS),
        ):
            if value not in known:
                raise pass_failure(self.name, f"unknown {option} '{value}' (known: {', '.join(known)})")
        if self.granularity == "2:4" and self.sparsity != 0.5:
            raise pass_failure(self.name, f"granularity 2:4 prunes exactly half of each matrix; got sparsity={self.sparsity}")
        if self.steps < 1 or not 0 < self.lr < math.inf or not 0 <= self.reg < math.inf:
            raise pass_failure(self.name, f"need steps >= 1, lr > 0, reg >= 0; got {self.steps}, {self.lr}, {self.reg}")

    def record(self, role: str) -> dict[str, object]:
        values: dict[str, object] = {
            "method": self.method,
            "sparsity": float(self.sparsity),
            "granularity": self.granularity,
            "role": role,
            "status": PENDING,
        }
        if self.method == "learned":
            values |= {"relaxation": self.relaxation, "steps": self.steps, "lr": float(self.lr), "reg": float(self.reg),
                       "seed": self.seed}
        return values

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        self.check_options()
        attentions = [sdpa for sdpa in op.walk() if isinstance(sdpa, attn.SdpaOp)]
        if not attentions:
            raise pass_failure(self.name, "the module has no softmax attention (attn.sdpa): run attn-raise first")
        selected = [sdpa for sdpa in attentions if path_matches(sdpa, self.layers)]
        if not selected:
            remark(self.name, None, f"layers '{self.layers}' matches none of the {len(attentions)} attentions: nothing pruned")
            return
        for sdpa in selected:
            query, key = query_key_paths(sdpa)
            if query is None or key is None:
                role = "query" if query is None else "key"
                remark(self.name, sdpa, f"the {role} is not a linear projection of a parameter: not pruned")
                continue
            if query.weight is key.weight:
                remark(self.name, sdpa, "query and key are projected by one matrix: not pruned")
                continue
            for role, path in (("query", query), ("key", key)):
                columns = tensor_shape(path.weight.result)[-1]
                if self.granularity == "2:4" and columns % 4:
                    remark(self.name, sdpa, f"the {role} projection has {columns} inputs, not a multiple of 4: not pruned 2:4")
                    break
            else:
                for role, path in (("query", query), ("key", key)):
                    set_prune_record(path.weight, self.record(role))
