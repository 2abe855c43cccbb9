"""ClipFormer's K/V transform in value units: the reference semantics of ``attn.kv_clip``.

The transform is defined on conductances (docs/methods/clipformer.md): ``G1 = max(G - alpha*g_min, g_min)``, then
``G2 = min(G1, beta*g_max)``. With the differential mapping a value x of a stored matrix sits at
``G = g_min + |x| / scale * (g_max - g_min)`` (``scale = max|x|`` of that matrix, the sign carried by the
device pair), so on the normalised magnitude ``u = |x| / scale`` the transform is a soft threshold of
``alpha*g_min/(g_max-g_min)`` followed by a ceiling at ``(beta*g_max - g_min)/(g_max-g_min)``. The mapping
scale stays the one of the unclipped matrix: clipping lowers conductances, it does not re-range them.
"""

from __future__ import annotations

import torch


def clip_thresholds(alpha: float, beta: float, g_min: float, g_max: float) -> tuple[float, float]:
    """(dead zone, ceiling) on the normalised magnitude u = |x| / scale, from the conductance transform."""
    g_range = g_max - g_min
    return alpha * g_min / g_range, max((beta * g_max - g_min) / g_range, 0.0)


def clip_normalised_magnitude(u: torch.Tensor, alpha: float, beta: float, g_min: float, g_max: float) -> torch.Tensor:
    """ClipFormer on normalised magnitudes u in [0, 1]; exactly the conductance transform, rescaled."""
    shift, ceiling = clip_thresholds(alpha, beta, g_min, g_max)
    return torch.clamp(torch.clamp(u - shift, min=0.0), max=ceiling)


def matrix_max(x: torch.Tensor) -> torch.Tensor:
    """One mapping scale per stored matrix: max|x| over the last two dims (1 for an all-zero matrix)."""
    scale = x.abs().amax(dim=(-2, -1), keepdim=True)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def kv_clip_values(x: torch.Tensor, alpha: float, beta: float, g_min: float, g_max: float) -> torch.Tensor:
    """ClipFormer applied to K or V in value units, one mapping scale per (batch, head) matrix.

    Computed on |x| directly (no division by the scale), so alpha = 0, beta = 1 gives x back bit for bit.
    Gradients flow (through the clamps), so calibration can use it.
    """
    shift, ceiling = clip_thresholds(alpha, beta, g_min, g_max)
    scale = matrix_max(x).detach()
    magnitude = torch.clamp(x.abs() - shift * scale, min=0.0)
    return torch.sign(x) * torch.minimum(magnitude, ceiling * scale)
