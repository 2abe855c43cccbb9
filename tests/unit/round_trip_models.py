"""Models the round-trip test adds to the bundled ones (``path/to/round_trip_models.py:<factory>`` specs).

Not a test module itself (pytest collects ``test_*.py`` only). Each factory returns ``(model, inputs)``.
"""

import torch
from torch import nn


class PaddedSelfAttention(nn.Module):
    """``nn.MultiheadAttention`` self-attention with a ``key_padding_mask``: padded keys get a -inf score."""

    def __init__(self, dim: int = 64, heads: int = 4):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, key_padding_mask=padding)[0]


def mha_key_padding_mask():
    """Two sequences of 10 tokens, the last 3 and 6 of them padding."""
    torch.manual_seed(0)
    x = torch.randn(2, 10, 64, generator=torch.Generator().manual_seed(0))
    padding = torch.zeros(2, 10, dtype=torch.bool)
    padding[0, 7:] = True
    padding[1, 4:] = True
    return PaddedSelfAttention().eval(), (x, padding)


class CrossAttention(nn.Module):
    """Queries from ``x``, keys and values from ``x_1``: input names that differ only by a ``_<digits>`` suffix."""

    def __init__(self, dim: int = 32, heads: int = 2):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor, x_1: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x_1, x_1, need_weights=False)[0]


def cross_attention_suffixed_inputs():
    """Four queries attending over six keys; the inputs are named ``x`` and ``x_1``."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(2, 4, 32, generator=generator), torch.randn(2, 6, 32, generator=generator)
    return CrossAttention().eval(), (queries, keys)
