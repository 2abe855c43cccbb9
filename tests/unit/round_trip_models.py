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
