"""Model factories for the frontend lit tests (``attnc compile %S/tiny_model.py:<factory>``).

Not a lit test itself: lit.cfg.py only collects ``.mlir`` files. Each factory returns ``(model, inputs)``.
"""

import torch
from torch import nn


class SelfAttention(nn.Module):
    """Eager multi-head self-attention: softmax(q kᵀ · d^-½) v, as BERT-style encoders write it."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.head_dim**-0.5
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out(context.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyEncoder(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2, depth: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(Block(dim, heads) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def tiny_attention():
    """Two tiny pre-norm attention blocks (width 16, 2 heads) on a 2×5×16 input."""
    torch.manual_seed(0)
    model = TinyEncoder().eval()
    return model, (torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0)),)


class Router(nn.Module):
    """Sorts its scores: ``aten.sort``, which the FX importer has no handler for."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.gate = nn.Linear(dim, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sort(self.gate(x), dim=-1).values


class WithRouter(nn.Module):
    def __init__(self):
        super().__init__()
        self.router = Router()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.router(x)


def unsupported():
    """A model whose ``router`` submodule uses ``torch.sort`` (unsupported by the importer)."""
    torch.manual_seed(0)
    return WithRouter().eval(), (torch.randn(2, 5, 16),)
