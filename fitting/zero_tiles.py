"""Counts the all-zero crossbar tiles of pruned weights, the step ``lower-to-xbar`` asks for.

``lower-to-xbar`` marks the ``xbar.program`` of every weight ``attn-prune`` pruned with ``skip_zero_tiles``;
the pass sees no weights, so right after it the driver runs this step, which counts those tiles from the
weights, records ``zero_tiles = N`` on the op (read by the target's cost report and checked by the simulator
when it programs the tiles) and says in remarks how many tiles each matrix and the whole model save.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64

from dialects import nn, xbar
from dialects.diagnostics import AttncError, remark
from targets.crossbar.device import zero_tiles


def pending_counts(module: ModuleOp) -> list[xbar.ProgramOp]:
    return [op for op in module.walk() if isinstance(op, xbar.ProgramOp) and op.skip_zero_tiles is not None
            and op.zero_tiles is None]


def has_pending_counts(module: ModuleOp) -> bool:
    return bool(pending_counts(module))


def count_zero_tiles(
    module: ModuleOp, weights: dict[str, torch.Tensor], calibration: Sequence[tuple[torch.Tensor, ...]] = ()
) -> dict[str, tuple[int, int]]:
    """Records ``zero_tiles`` on every pending ``xbar.program``; returns ``{weight: (zero tiles, tiles)}``."""
    report: dict[str, tuple[int, int]] = {}
    for op in pending_counts(module):
        param = op.matrix.owner
        if not isinstance(param, nn.ParamOp) or param.key not in weights:
            raise AttncError("lower-to-xbar: a tile-skipping xbar.program must read a parameter held in the weights")
        rows, cols = op.result.type.get_tile()
        count = int(zero_tiles(weights[param.key], rows, cols).sum())
        total = op.result.type.tile_count()
        op.attributes["zero_tiles"] = IntegerAttr(count, i64)
        report[param.key] = (count, total)
        remark("lower-to-xbar", param, f"{count} of {total} tiles ({rows}x{cols}) of {param.key} are all zero: not programmed")
    if report:
        saved, total = sum(c for c, _ in report.values()), sum(t for _, t in report.values())
        remark(
            "lower-to-xbar",
            None,
            f"{saved} of {total} tiles of the {len(report)} pruned matrices are all zero and not programmed "
            f"({100.0 * saved / total:.1f} %)",
        )
    return report
