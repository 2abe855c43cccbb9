"""A byte-level GPT-2 in plain PyTorch, softmax or cosine attention, for training on any device.

It needs only torch (and ``runtime.cosine_kernels``, which imports only torch), so it trains on a machine with
neither transformers nor xDSL. Its parameter names and shapes are those of Hugging Face's ``GPT2LMHeadModel``
(``transformer.h.<i>.attn.c_attn.weight`` stored (in, out) like HF's ``Conv1D``, the LM head tied to the token
embedding), and its forward is the same function (LayerNorm eps 1e-5, tanh GELU, pre-norm blocks), so a
trained state dict loads into HF's model with ``strict=True``, which is what the compiler's ``attn-raise``
matches (bench/cottention_scratch.py does that to evaluate through the attnc executor).

- softmax: causal scaled dot-product attention (1/sqrt(d));
- cosine: ``cosine_attention_causal`` with one learned scalar ``cosine_m`` per head and layer
  (``transformer.h.<i>.attn.cosine_m``, initialised to 0.5 like ``attn-cosine``'s parameter).

Attention runs in float32 in both models, also under bf16 autocast (only the linear layers and the LM head use
bf16 then). Initial weights follow GPT-2's scheme (normal 0.02, residual projections 0.02/sqrt(2 layers));
they are drawn before any ``cosine_m`` exists, so both attentions start from identical weights for a seed.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.cosine_kernels import cosine_attention_causal  # noqa: E402

VOCAB = 256
COSINE_M_INIT = 0.5  # attn-cosine's initial m
LAYER_NORM_EPS = 1e-5  # GPT2Config.layer_norm_epsilon


@dataclass(frozen=True)
class GPTShape:
    layers: int
    width: int
    heads: int
    context: int
    dropout: float = 0.0  # on embeddings and residual branches (HF embd_pdrop / resid_pdrop); never on attention


class Conv1D(torch.nn.Module):
    """y = x W + b with W stored (in, out), as HF GPT-2 stores its projections."""

    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(inputs, outputs))
        self.bias = torch.nn.Parameter(torch.zeros(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.t(), self.bias)


class Attention(torch.nn.Module):
    def __init__(self, shape: GPTShape, attention: str):
        super().__init__()
        self.heads, self.attention = shape.heads, attention
        self.c_attn = Conv1D(shape.width, 3 * shape.width)
        self.c_proj = Conv1D(shape.width, shape.width)
        self.dropout = torch.nn.Dropout(shape.dropout)

    def add_cosine_m(self) -> None:
        self.cosine_m = torch.nn.Parameter(torch.full((self.heads,), COSINE_M_INIT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = (
            t.view(batch, length, self.heads, width // self.heads).transpose(1, 2)
            for t in self.c_attn(x).split(width, dim=2)
        )
        with torch.autocast(x.device.type, enabled=False):  # attention in float32 for both kinds
            q, k, v = q.float(), k.float(), v.float()
            if self.attention == "cosine":
                out = cosine_attention_causal(q, k, v, self.cosine_m.float())
            else:
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out = out.transpose(1, 2).reshape(batch, length, width)
        return self.dropout(self.c_proj(out))


class MLP(torch.nn.Module):
    def __init__(self, shape: GPTShape):
        super().__init__()
        self.c_fc = Conv1D(shape.width, 4 * shape.width)
        self.c_proj = Conv1D(4 * shape.width, shape.width)
        self.dropout = torch.nn.Dropout(shape.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(torch.nn.Module):
    def __init__(self, shape: GPTShape, attention: str):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(shape.width, eps=LAYER_NORM_EPS)
        self.attn = Attention(shape, attention)
        self.ln_2 = torch.nn.LayerNorm(shape.width, eps=LAYER_NORM_EPS)
        self.mlp = MLP(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(torch.nn.Module):
    def __init__(self, shape: GPTShape, attention: str):
        super().__init__()
        self.wte = torch.nn.Embedding(VOCAB, shape.width)
        self.wpe = torch.nn.Embedding(shape.context, shape.width)
        self.drop = torch.nn.Dropout(shape.dropout)
        self.h = torch.nn.ModuleList(Block(shape, attention) for _ in range(shape.layers))
        self.ln_f = torch.nn.LayerNorm(shape.width, eps=LAYER_NORM_EPS)


class ByteGPT(torch.nn.Module):
    """``forward(ids) -> logits``; ``attention`` is "softmax" or "cosine"."""

    def __init__(self, shape: GPTShape, attention: str):
        super().__init__()
        if attention not in ("softmax", "cosine"):
            raise ValueError(f"attention must be softmax or cosine, got {attention!r}")
        self.shape = shape
        self.transformer = Transformer(shape, attention)
        self.lm_head = torch.nn.Linear(shape.width, VOCAB, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in GPT-2
        self._init_weights()
        if attention == "cosine":  # after the random draws: same initial weights as the softmax model
            for block in self.transformer.h:
                block.attn.add_cosine_m()

    def _init_weights(self) -> None:
        for name, parameter in self.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                torch.nn.init.ones_(parameter)
            elif name.endswith("bias"):
                torch.nn.init.zeros_(parameter)
            elif name.endswith("c_proj.weight"):
                torch.nn.init.normal_(parameter, 0.0, 0.02 / math.sqrt(2 * self.shape.layers))
            else:
                torch.nn.init.normal_(parameter, 0.0, 0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.transformer.drop(self.transformer.wte(ids) + self.transformer.wpe(positions))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def hf_state_dict(model: ByteGPT) -> dict[str, torch.Tensor]:
    """The state dict under HF GPT2LMHeadModel's names (already the same), tied head included, as fresh tensors."""
    return {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}
