"""Pure-torch kernels for cosine linear attention ("Cottention", docs/methods/cottention.md).

Softmax attention is replaced by cosine similarity, ``N(x) = x / ||x||_2`` over the head dimension, with a
per-head learned scalar ``m`` used as ``s = sigmoid(m)``. There is no softmax and no ``1/sqrt(d)``. Because
the score is a plain product of normalised vectors, ``(N(Q) N(K)^T) V`` can be re-associated as
``N(Q) (N(K)^T V)``, which costs O(T) time and memory instead of O(T^2).

Kernels (all differentiable, so a recovery step can backprop into ``m`` and the projections: nothing that
may require grad is updated in place; only when autograd is off do they write into their own fresh buffers):

- :func:`cosine_attention_parallel` -- bidirectional, ``O = N(Q) (N(K)^T V) / max(1, L^s)``, picking the
  cheaper association order.
- :func:`cosine_attention_causal` -- causal, chunked: masked C x C products inside a chunk, a running
  ``dk x dv`` state per head across chunks. Values are scaled by their 1-based KEY position,
  ``v'_j = v_j / max(1, j^s)``.
- :class:`CosineDecodeState` / :func:`cosine_attention_recurrent` -- the constant-size recurrent form used
  for decoding, with the state kept in float64 as the authors' reference does.
- :func:`cosine_attention_reference` -- naive O(T^2) form with the full score matrix, for tests only.

Shapes: ``q`` (B, H, Tq, dk), ``k`` (B, H, Tk, dk), ``v`` (B, H, Tk, dv), ``m`` (H,) (a 0-d tensor or a float
is broadcast to all heads). ``valid`` is an optional (B, Tk) bool key-padding mask, True for real tokens.
Padding rows of K and V are zeroed before anything else; when Tq == Tk the same rows of Q are zeroed too,
so padding positions output exactly zero. Normalising a zero row gives a zero row (never NaN).

This module imports only torch: ``runtime`` never imports ``compiler`` or ``passes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "AssociationOrder",
    "CosineDecodeState",
    "choose_association_order",
    "cosine_attention_causal",
    "cosine_attention_parallel",
    "cosine_attention_recurrent",
    "cosine_attention_reference",
    "cosine_normalize",
]

NORM_EPS = 1e-12
"""Lower bound on ||x|| in N(x): keeps zeroed padding rows at zero instead of 0/0 = NaN."""

DEFAULT_CHUNK_SIZE = 64
"""Causal chunk length C. Swept 32/64/128 on CPU (B=1, H=8, d=64, T=4k and 64k, 1 and 2 threads): 32 and 64
within noise of each other, 128 slower (its C x C scores double the intra-chunk work). At d=64 it balances the
C x C scores against the dk x dv state."""

CAUSAL_BLOCK_TOKENS = 512
"""The causal kernel handles this many tokens (whole chunks) per vectorised step and carries the state between
steps. Measured on 2 shared cores: a plain per-chunk loop was up to ~20% faster with one thread but 3-4x slower
with two threads under load (one thread sync per small op); blocks of 256-512 tokens kept most of the
one-thread speed and stayed robust with two. Scratch memory is bounded by the block, not by T."""

PARALLEL_BLOCK_TOKENS = 4096
"""The bidirectional kernel sums N(K)^T V over key blocks of this many tokens, so it never holds a T-sized
normalised copy of K (~1.5x faster at T=64k on CPU than whole-T temporaries, which also cost page faults)."""

AssociationOrder = Literal["auto", "scores_first", "kv_first"]


# --------------------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------------------


def cosine_normalize(x: torch.Tensor) -> torch.Tensor:
    """N(x) = x / ||x||_2 over the last (head) dimension; a zero row stays zero and its gradient finite."""
    return F.normalize(x, p=2.0, dim=-1, eps=NORM_EPS)


def _tracks_grad(*tensors: torch.Tensor | float) -> bool:
    """True when autograd records ops on any of ``tensors``; otherwise fresh intermediates may be updated in
    place (never a tensor that requires grad)."""
    return torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in tensors)


def _head_exponent(m: torch.Tensor | float, heads: int, like: torch.Tensor) -> torch.Tensor:
    """s = sigmoid(m) as a (H,) tensor in ``like``'s dtype; keeps the graph to ``m`` for the recovery step."""
    m = torch.as_tensor(m, device=like.device)
    if m.dim() == 0:
        m = m.expand(heads)
    if m.shape != (heads,):
        raise ValueError(f"m must have shape ({heads},) (one scalar per head), got {tuple(m.shape)}")
    return torch.sigmoid(m.to(like.dtype))


def _check_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Checks the (B, H, T, d) layout shared by all kernels and raises a message naming the mismatch."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"q, k, v must be 4-d (B, H, T, d), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3]:
        raise ValueError(
            "expected q (B, H, Tq, dk), k (B, H, Tk, dk), v (B, H, Tk, dv) with matching B, H and Tk; got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k head dims differ: {q.shape[-1]} vs {k.shape[-1]}")


def _check_valid(valid: torch.Tensor, batch: int, tk: int) -> None:
    """The key-padding mask must be bool (B, Tk), True for real tokens."""
    if valid.shape != (batch, tk) or valid.dtype != torch.bool:
        raise ValueError(
            f"valid must be a bool tensor of shape ({batch}, {tk}) (True = real token), "
            f"got {valid.dtype} {tuple(valid.shape)}"
        )


def _zero_padding(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zeroes padding rows of K and V (and of Q when Tq == Tk) with ``torch.where``, so NaN/inf in padding
    cannot leak and nothing is modified in place."""
    if valid is None:
        return q, k, v
    _check_valid(valid, k.shape[0], k.shape[2])
    rows = valid[:, None, :, None]
    k = torch.where(rows, k, 0.0)
    v = torch.where(rows, v, 0.0)
    if q.shape[2] == k.shape[2]:
        q = torch.where(rows, q, 0.0)
    return q, k, v


def _token_count(valid: torch.Tensor | None, batch: int, tk: int, like: torch.Tensor) -> torch.Tensor:
    """L per batch element, as a (B, 1) tensor in ``like``'s dtype: the number of non-padding keys."""
    if valid is None:
        return torch.full((batch, 1), float(tk), dtype=like.dtype, device=like.device)
    return valid.sum(dim=-1, keepdim=True).to(like.dtype)


def _position_scale(start: int, length: int, s: torch.Tensor) -> torch.Tensor:
    """max(1, j^s) for 1-based key positions j = start+1 .. start+length, as a (H, length, 1) tensor."""
    positions = torch.arange(start + 1, start + length + 1, dtype=s.dtype, device=s.device)
    # j >= 1 and s in (0, 1) give j^s >= 1; the clamp only documents max(1, .) from the formula.
    return (positions[None, :] ** s[:, None]).clamp_min(1.0)[..., None]


# --------------------------------------------------------------------------------------------------------------
# Bidirectional
# --------------------------------------------------------------------------------------------------------------


def choose_association_order(tq: int, tk: int, dk: int, dv: int) -> Literal["scores_first", "kv_first"]:
    """Cheaper of (N(Q)N(K)^T)V, ~Tq*Tk*(dk+dv) multiply-adds, and N(Q)(N(K)^T V), ~(Tk+Tq)*dk*dv."""
    scores_first = tq * tk * (dk + dv)
    kv_first = tk * dk * dv + tq * dk * dv
    return "scores_first" if scores_first < kv_first else "kv_first"


def cosine_attention_parallel(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    m: torch.Tensor | float,
    valid: torch.Tensor | None = None,
    order: AssociationOrder = "auto",
) -> torch.Tensor:
    """Bidirectional cosine attention, O = N(Q) (N(K)^T V) / max(1, L^s), L = non-padding tokens per batch.

    ``order`` forces an association order ("scores_first" or "kv_first"); "auto" picks the cheaper one via
    :func:`choose_association_order`. Returns (B, H, Tq, dv) in q's dtype.
    """
    _check_shapes(q, k, v)
    batch, heads, tq, dk = q.shape
    tk, dv = k.shape[2], v.shape[-1]
    q, k, v = _zero_padding(q, k, v, valid)
    s = _head_exponent(m, heads, q)
    # max(1, L^s) == max(1, L)^s for s > 0 and integer L >= 0; clamping L first keeps d/ds finite at L = 0.
    divisor = (_token_count(valid, batch, tk, q).clamp_min(1.0) ** s[None, :])[:, :, None, None]  # (B,H,1,1)

    if order == "auto":
        order = choose_association_order(tq, tk, dk, dv)
    if order == "scores_first":
        return ((cosine_normalize(q) @ cosine_normalize(k).transpose(-1, -2)) @ v) / divisor
    if order != "kv_first":
        raise ValueError(f"order must be 'auto', 'scores_first' or 'kv_first', got {order!r}")

    # N(K)^T V summed block by block: a (dk x dv) state per head, never a normalised copy of all of K.
    key_value = sum(
        cosine_normalize(k[:, :, start : start + PARALLEL_BLOCK_TOKENS]).transpose(-1, -2)
        @ v[:, :, start : start + PARALLEL_BLOCK_TOKENS]
        for start in range(0, tk, PARALLEL_BLOCK_TOKENS)
    )
    # N(Q) @ S == (Q @ S) / ||Q||: normalise the output rows instead of materialising N(Q); the divisor goes on
    # the small state, not on the (Tq x dv) output.
    out = q @ (key_value / divisor)
    query_norm = torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min(NORM_EPS)
    return out / query_norm if _tracks_grad(q, k, v, m) else out.div_(query_norm)


# --------------------------------------------------------------------------------------------------------------
# Causal, chunked
# --------------------------------------------------------------------------------------------------------------


def _causal_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, s: torch.Tensor, start: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """N(q) and the values with both per-key factors folded in, v_j / (||k_j|| max(1, j^s)).

    (N(q_i).N(k_j)) v'_j == (N(q_i).k_j) (v'_j / ||k_j||), so K itself is used unnormalised: one elementwise
    pass over the block instead of two. A zeroed (padding) key row meets a zeroed value row, so it still adds 0.
    """
    key_norm = torch.linalg.vector_norm(k, dim=-1, keepdim=True).clamp_min(NORM_EPS)
    return cosine_normalize(q), v / (key_norm * _position_scale(start, k.shape[2], s))


def _causal_block(
    q_norm: torch.Tensor, k: torch.Tensor, v_scaled: torch.Tensor, state: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal attention over one block of n whole chunks, all chunks at once; (B*H, n*C, d) inputs.

    ``state`` (B*H, dk, dv) is H = sum N(k_j)^T v'_j over every token before the block. Inside a chunk: a masked
    C x C score product. Across chunks: the state before chunk c is ``state`` plus the block's chunk states
    c' < c, one strictly-lower-triangular (n x n) product -- n states of dk x dv per head, never one per token.
    Returns the block's output (B*H, n*C, dv) and the state after the block.
    """
    batch_heads, length, dk = q_norm.shape
    dv = v_scaled.shape[-1]
    n_chunks = length // chunk
    q_c = q_norm.reshape(batch_heads * n_chunks, chunk, dk)
    k_c = k.reshape(batch_heads * n_chunks, chunk, dk)
    v_c = v_scaled.reshape(batch_heads * n_chunks, chunk, dv)

    scores = torch.bmm(q_c, k_c.transpose(1, 2)).tril()  # causal within each chunk
    chunk_states = torch.bmm(k_c.transpose(1, 2), v_c).view(batch_heads, n_chunks, dk * dv)
    earlier = torch.ones(n_chunks, n_chunks, dtype=q_norm.dtype, device=q_norm.device).tril(-1)
    states_before = torch.baddbmm(
        state.view(batch_heads, 1, dk * dv), earlier.expand(batch_heads, -1, -1), chunk_states
    )
    out = torch.baddbmm(torch.bmm(scores, v_c), q_c, states_before.view(-1, dk, dv))  # intra + earlier chunks
    new_state = (states_before[:, -1] + chunk_states[:, -1]).view(batch_heads, dk, dv)
    return out.view(batch_heads, length, dv), new_state


def cosine_attention_causal(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    m: torch.Tensor | float,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Causal cosine attention, o_i = sum_{j<=i} (N(q_i).N(k_j)) v_j / max(1, j^s), j the 1-based key position.

    Chunked: inside a chunk of ``chunk_size`` tokens a masked C x C score product; across chunks a running
    state H = sum_j N(k_j)^T v'_j (dk x dv per head) carries everything before the chunk, so nothing of size
    T x d x d (or T x T) is ever built. Tokens go through in blocks of :data:`CAUSAL_BLOCK_TOKENS` (padding,
    normalisation, value scaling and all of a block's chunks at once), so scratch memory stays bounded and the
    output is the only O(T) result. T need not be a multiple of ``chunk_size`` (the tail chunk is padded with
    zero rows, which cannot affect earlier positions). Requires Tq == Tk. Returns (B, H, T, dv) in q's dtype.
    """
    _check_shapes(q, k, v)
    batch, heads, length, dk = q.shape
    if k.shape[2] != length:
        raise ValueError(f"causal attention needs Tq == Tk, got Tq={length}, Tk={k.shape[2]}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if valid is not None:
        _check_valid(valid, batch, length)
    dv = v.shape[-1]
    s = _head_exponent(m, heads, q)
    chunk = min(chunk_size, length)
    block = max(chunk, CAUSAL_BLOCK_TOKENS // chunk * chunk)

    state = q.new_zeros(batch * heads, dk, dv)  # H, carried across blocks
    # Without autograd, blocks are written straight into the output instead of concatenated (one T-sized
    # buffer instead of two); with autograd, nothing is written in place.
    block_outputs: list[torch.Tensor] = []
    out = None if _tracks_grad(q, k, v, m) else q.new_empty(batch * heads, length, dv)
    for start in range(0, length, block):
        stop = min(start + block, length)
        q_blk, k_blk, v_blk = _zero_padding(
            q[:, :, start:stop], k[:, :, start:stop], v[:, :, start:stop],
            None if valid is None else valid[:, start:stop],
        )
        q_norm, v_scaled = _causal_inputs(q_blk, k_blk, v_blk, s, start)
        tail = -(stop - start) % chunk
        if tail:  # only the last block: zero rows complete its last chunk
            q_norm, k_blk, v_scaled = (F.pad(x, (0, 0, 0, tail)) for x in (q_norm, k_blk, v_scaled))
        # (B*H, L, d): one batched matmul per step covers every head and chunk.
        block_out, state = _causal_block(
            q_norm.reshape(batch * heads, -1, dk), k_blk.reshape(batch * heads, -1, dk),
            v_scaled.reshape(batch * heads, -1, dv), state, chunk,
        )
        block_out = block_out[:, : stop - start]
        if out is None:
            block_outputs.append(block_out)
        else:
            out[:, start:stop].copy_(block_out)
    if out is None:
        out = block_outputs[0] if len(block_outputs) == 1 else torch.cat(block_outputs, dim=1)
    return out.reshape(batch, heads, length, dv)


# --------------------------------------------------------------------------------------------------------------
# Recurrent decoding
# --------------------------------------------------------------------------------------------------------------


@dataclass
class CosineDecodeState:
    """Constant-size decoding state for causal cosine attention: H (B, H, dv, dk) in float64, as in the
    authors' reference. ``H_t = H_{t-1} + v'_t N(k_t)^T`` and ``o_t = H_t N(q_t)``.

    Updates rebind ``state`` (no in-place ops), so gradients flow through a decoded sequence.
    """

    state: torch.Tensor
    s: torch.Tensor  # (H,) float64, sigmoid(m)

    @classmethod
    def init(
        cls,
        batch: int,
        heads: int,
        dk: int,
        dv: int,
        *,
        m: torch.Tensor | float,
        device: torch.device | str | None = None,
    ) -> CosineDecodeState:
        """An empty state (no tokens seen) for ``batch`` x ``heads`` heads with per-head parameter ``m``."""
        zeros = torch.zeros(batch, heads, dv, dk, dtype=torch.float64, device=device)
        return cls(state=zeros, s=_head_exponent(m, heads, zeros))

    def step(
        self,
        q_t: torch.Tensor,
        k_t: torch.Tensor,
        v_t: torch.Tensor,
        t: int,
        valid_t: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Feeds token ``t`` (1-based key position) with q_t, k_t (B, H, dk), v_t (B, H, dv) and returns o_t
        (B, H, dv) in q_t's dtype. ``valid_t`` (B,) bool marks padding tokens, which add nothing and output 0."""
        if t < 1:
            raise ValueError(f"t is the 1-based token position, got {t}")
        q64, k64, v64 = (x.to(torch.float64) for x in (q_t, k_t, v_t))
        if valid_t is not None:
            rows = valid_t[:, None, None]
            q64, k64, v64 = (torch.where(rows, x, 0.0) for x in (q64, k64, v64))
        v_scaled = v64 / (float(t) ** self.s).clamp_min(1.0)[None, :, None]  # max(1, t^s)
        self.state = self.state + v_scaled[..., :, None] * cosine_normalize(k64)[..., None, :]
        out = (self.state @ cosine_normalize(q64)[..., None])[..., 0]
        return out.to(q_t.dtype)


def cosine_attention_recurrent(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    m: torch.Tensor | float,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Causal cosine attention by stepping :class:`CosineDecodeState` over T tokens (slow; for tests)."""
    _check_shapes(q, k, v)
    batch, heads, length, dk = q.shape
    if k.shape[2] != length:
        raise ValueError(f"recurrent attention needs Tq == Tk, got Tq={length}, Tk={k.shape[2]}")
    decoder = CosineDecodeState.init(batch, heads, dk, v.shape[-1], m=m, device=q.device)
    outputs = [
        decoder.step(q[:, :, t], k[:, :, t], v[:, :, t], t + 1, None if valid is None else valid[:, t])
        for t in range(length)
    ]
    return torch.stack(outputs, dim=2)


# --------------------------------------------------------------------------------------------------------------
# Naive reference
# --------------------------------------------------------------------------------------------------------------


def cosine_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    m: torch.Tensor | float,
    causal: bool = False,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Naive O(Tq*Tk) cosine attention that materialises the full score matrix (and an explicit causal
    mask); the ground truth the fast kernels are tested against."""
    _check_shapes(q, k, v)
    batch, heads, tq, _ = q.shape
    tk = k.shape[2]
    q, k, v = _zero_padding(q, k, v, valid)
    s = _head_exponent(m, heads, q)
    scores = cosine_normalize(q) @ cosine_normalize(k).transpose(-1, -2)  # (B, H, Tq, Tk)
    if causal:
        if tq != tk:
            raise ValueError(f"causal attention needs Tq == Tk, got Tq={tq}, Tk={tk}")
        mask = torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril()
        scores = torch.where(mask, scores, 0.0)
        key_positions = torch.arange(1, tk + 1, dtype=q.dtype, device=q.device)
        divisor = (key_positions[None, :] ** s[:, None]).clamp_min(1.0)  # max(1, j^s), by key position
        return scores @ (v / divisor[None, :, :, None])
    divisor = (_token_count(valid, batch, tk, q) ** s[None, :]).clamp_min(1.0)  # max(1, L^s), literally
    return (scores @ v) / divisor[:, :, None, None]
