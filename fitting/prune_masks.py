"""Pruning masks of one weight matrix: magnitude, Wanda, SparseGPT, and the selection at a target sparsity.

Weights are ``(out, in)`` as ``nn.linear`` stores them; ``x`` holds calibration inputs as rows ``(tokens, in)``.
A keep-mask is boolean, ``True`` where the weight stays. ``unstructured`` keeps the same number of weights in
every output row (so every matrix reaches the requested sparsity to within one weight per row); ``2:4``
keeps two of every four consecutive inputs of each row.
"""

from __future__ import annotations

import torch

from dialects.diagnostics import AttncError


def pruned_per_row(rows: int, columns: int, sparsity: float) -> torch.Tensor:
    """How many weights each output row of an unstructured mask removes: round(sparsity · rows · columns) in
    all, spread so that rows differ by at most one (the matrix is exact even when a row cannot be)."""
    total = round(sparsity * rows * columns)
    edges = [round(total * row / rows) for row in range(rows + 1)]
    return torch.tensor([edges[row + 1] - edges[row] for row in range(rows)])


def _drop_lowest(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Keep-mask that drops the ``counts[r]`` lowest scores of each row ``r``."""
    ranks = scores.argsort(dim=1, stable=True).argsort(dim=1)
    return ranks >= counts[:, None]


def keep_mask(scores: torch.Tensor, sparsity: float, granularity: str) -> torch.Tensor:
    """Keeps the highest scores: per output row (``unstructured``), or 2 of each group of 4 inputs (``2:4``)."""
    rows, columns = scores.shape
    if granularity == "2:4":
        if columns % 4:
            raise AttncError(f"2:4 pruning needs a multiple of 4 inputs, got {columns}")
        groups = scores.reshape(rows, columns // 4, 4)
        keep = torch.zeros_like(groups, dtype=torch.bool)
        keep.scatter_(2, groups.topk(2, dim=2).indices, True)
        return keep.reshape(rows, columns)
    if granularity != "unstructured":
        raise AttncError(f"unknown pruning granularity '{granularity}'")
    return _drop_lowest(scores, pruned_per_row(rows, columns, sparsity))


def magnitude_scores(weight: torch.Tensor) -> torch.Tensor:
    return weight.abs()


def input_norms(x: torch.Tensor) -> torch.Tensor:
    """‖X_j‖₂ of every input feature j over all calibration tokens."""
    return x.double().pow(2).sum(dim=0).sqrt().to(x.dtype)


def wanda_scores(weight: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """Wanda's importance |W_ij| · ‖X_j‖₂ (compared within each output row by :func:`keep_mask`)."""
    return weight.abs() * norms[None, :]


def sparsegpt(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    sparsity: float,
    granularity: str,
    block_size: int = 128,
    damping: float = 0.01,
) -> torch.Tensor:
    """SparseGPT: prune column by column and update the remaining weights to compensate (OBS on H = XᵀX).

    Works on blocks of ``block_size`` columns ("lazy batch" updates): inside a block each pruned column's
    error is spread onto the block's later columns through the inverse Hessian's Cholesky factor, and the
    block's accumulated error onto all later columns at once. The mask is chosen when a block starts (for 2:4,
    when each group of four starts) by the OBS saliency w² / U_jj² (U the Cholesky factor of H⁻¹) of the
    weights updated so far: each row's remaining pruning budget goes to its least salient remaining columns,
    and the block prunes those inside it, so every row ends with :func:`keep_mask`'s count (SparseGPT's paper
    ranks a block over all rows at once instead). Returns the pruned (and updated) weight.
    """
    rows, columns = weight.shape
    w = weight.double().clone()
    h = hessian.double().clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += damping * torch.diag(h).mean() * torch.eye(columns, dtype=h.dtype)
    h_inv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    drop_total = pruned_per_row(rows, columns, sparsity)
    keep = torch.ones(rows, columns, dtype=torch.bool)
    for start in range(0, columns, block_size):
        end = min(start + block_size, columns)
        block = w[:, start:end].clone()
        errors = torch.zeros_like(block)
        h_block = h_inv[start:end, start:end]
        diagonal = torch.diag(h_block)
        if granularity == "unstructured":
            # each row's remaining budget goes to the least salient of its remaining columns; this block
            # takes those that fall inside it (the last block takes the rest, so every row is exact)
            remaining = drop_total - (~keep[:, :start]).sum(dim=1)
            saliency = w[:, start:] ** 2 / torch.diag(h_inv)[None, start:] ** 2
            keep[:, start:end] = _drop_lowest(saliency, remaining)[:, : end - start]
        for offset in range(end - start):
            column = start + offset
            if granularity == "2:4" and offset % 4 == 0:
                group = block[:, offset : offset + 4] ** 2 / diagonal[None, offset : offset + 4] ** 2
                keep[:, column : column + 4] = keep_mask(group, 0.5, "2:4")
            values = block[:, offset]
            quantised = torch.where(keep[:, column], values, torch.zeros_like(values))
            error = (values - quantised) / diagonal[offset]
            block[:, offset:] -= error[:, None] * h_block[offset, offset:][None, :]
            block[:, offset] = quantised
            errors[:, offset] = error
        w[:, start:end] = block
        w[:, end:] -= errors @ h_inv[start:end, end:]
    w[~keep] = 0.0
    return w.to(weight.dtype)
