"""Cosine linear attention kernels (runtime/cosine_kernels.py) against the naive O(T^2) reference.

Every fast form -- parallel (both association orders), chunked causal (several chunk sizes, T not a multiple
of the chunk, several preparation blocks) and recurrent decoding -- must agree with the reference to 1e-5 in
float32, with key padding; gradients must reach the per-head parameter m; zeroed padding rows must never make
NaN. The small analytic cases pin the formula itself (divisor by key position, max(1, L^s)).
"""

from __future__ import annotations

import math

import pytest
import torch

from runtime import cosine_kernels as ck

TOLERANCE = 1e-5
BATCH, HEADS, LENGTH, DK, DV = 2, 3, 77, 16, 12


def _inputs(tq: int = LENGTH, tk: int = LENGTH, seed: int = 0):
    """Random q, k, v, m and a key-padding mask: batch 0 unpadded, batch 1 right-padded after 60 tokens."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(BATCH, HEADS, tq, DK, generator=gen)
    k = torch.randn(BATCH, HEADS, tk, DK, generator=gen)
    v = torch.randn(BATCH, HEADS, tk, DV, generator=gen)
    m = torch.randn(HEADS, generator=gen)
    valid = torch.ones(BATCH, tk, dtype=torch.bool)
    valid[1, 60:] = False
    return q, k, v, m, valid


def _max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# ---- bidirectional ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("tq", [LENGTH, 5])
def test_parallel_matches_reference(padded: bool, tq: int) -> None:
    q, k, v, m, valid = _inputs(tq=tq)
    mask = valid if padded else None
    expected = ck.cosine_attention_reference(q, k, v, m, causal=False, valid=mask)
    assert _max_error(ck.cosine_attention_parallel(q, k, v, m, valid=mask), expected) <= TOLERANCE


def test_association_orders_agree() -> None:
    q, k, v, m, valid = _inputs()
    kv_first = ck.cosine_attention_parallel(q, k, v, m, valid=valid, order="kv_first")
    scores_first = ck.cosine_attention_parallel(q, k, v, m, valid=valid, order="scores_first")
    auto = ck.cosine_attention_parallel(q, k, v, m, valid=valid)
    assert _max_error(kv_first, scores_first) <= TOLERANCE
    assert _max_error(auto, kv_first) <= TOLERANCE


def test_association_order_picks_cheaper() -> None:
    # Long sequences: the dk x dv state is cheaper than the T x T scores; a handful of tokens: the reverse.
    assert ck.choose_association_order(4096, 4096, 64, 64) == "kv_first"
    assert ck.choose_association_order(4, 4, 64, 64) == "scores_first"
    assert ck.choose_association_order(1, 4096, 64, 64) == "scores_first"


def test_parallel_divides_by_token_count_power() -> None:
    """All tokens identical: every score is 1, so o = L * v / max(1, L^s) with L the non-padding count."""
    length, heads = 10, 2
    q = torch.ones(1, heads, length, 4)
    m = torch.tensor([0.0, 2.0])
    valid = torch.zeros(1, length, dtype=torch.bool)
    valid[0, :7] = True
    out = ck.cosine_attention_parallel(q, q, q, m, valid=valid)
    s = torch.sigmoid(m)
    expected = 7 / 7 ** s  # per head, at real query rows
    assert torch.allclose(out[0, :, 0, 0], expected, atol=TOLERANCE)
    assert torch.all(out[0, :, 7:] == 0), "padding query rows must output zero"


# ---- causal -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [3, 16, 64, 100])
@pytest.mark.parametrize("padded", [False, True])
def test_causal_chunked_matches_reference(chunk_size: int, padded: bool) -> None:
    q, k, v, m, valid = _inputs()
    mask = valid if padded else None
    expected = ck.cosine_attention_reference(q, k, v, m, causal=True, valid=mask)
    got = ck.cosine_attention_causal(q, k, v, m, chunk_size=chunk_size, valid=mask)
    assert got.shape == expected.shape
    assert _max_error(got, expected) <= TOLERANCE


@pytest.mark.parametrize("block_tokens", [8, 30])
@pytest.mark.parametrize("causal", [False, True])
def test_state_carries_across_preparation_blocks(
    monkeypatch: pytest.MonkeyPatch, block_tokens: int, causal: bool
) -> None:
    """Several preparation blocks (the last one partial) give the same result as one."""
    monkeypatch.setattr(ck, "CAUSAL_BLOCK_TOKENS", block_tokens)
    monkeypatch.setattr(ck, "PARALLEL_BLOCK_TOKENS", block_tokens)
    q, k, v, m, valid = _inputs()
    expected = ck.cosine_attention_reference(q, k, v, m, causal=causal, valid=valid)
    if causal:
        got = ck.cosine_attention_causal(q, k, v, m, chunk_size=8, valid=valid)
    else:
        got = ck.cosine_attention_parallel(q, k, v, m, valid=valid, order="kv_first")
    assert _max_error(got, expected) <= TOLERANCE


@pytest.mark.parametrize("causal", [False, True])
def test_inference_mode_matches_autograd_path(causal: bool) -> None:
    """Without autograd the kernels write into fresh buffers in place; the result must not change."""
    q, k, v, m, valid = _inputs()
    m = m.clone().requires_grad_()
    kernel = ck.cosine_attention_causal if causal else ck.cosine_attention_parallel
    with_grad = kernel(q, k, v, m, valid=valid)
    with torch.inference_mode():
        without_grad = kernel(q, k, v, m, valid=valid)
    assert with_grad.requires_grad and not without_grad.requires_grad
    assert _max_error(with_grad.detach(), without_grad) <= TOLERANCE


def test_causal_divisor_follows_key_position() -> None:
    """All tokens identical: o_i = sum_{j<=i} 1 / max(1, j^s) -- the key position j, not the query row i."""
    length = 9
    x = torch.ones(1, 1, length, 4)
    m = torch.tensor([0.3])
    s = torch.sigmoid(m).item()
    expected = torch.tensor([sum(1 / max(1.0, j**s) for j in range(1, i + 1)) for i in range(1, length + 1)])
    out = ck.cosine_attention_causal(x, x, x, m, chunk_size=4)
    assert torch.allclose(out[0, 0, :, 0], expected, atol=TOLERANCE)


# ---- recurrent ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padded", [False, True])
def test_recurrent_matches_chunked(padded: bool) -> None:
    q, k, v, m, valid = _inputs()
    mask = valid if padded else None
    chunked = ck.cosine_attention_causal(q, k, v, m, chunk_size=16, valid=mask)
    assert _max_error(ck.cosine_attention_recurrent(q, k, v, m, valid=mask), chunked) <= TOLERANCE


def test_decode_state_is_float64_and_constant_size() -> None:
    q, k, v, m, _ = _inputs()
    decoder = ck.CosineDecodeState.init(BATCH, HEADS, DK, DV, m=m)
    for t in range(5):
        out = decoder.step(q[:, :, t], k[:, :, t], v[:, :, t], t + 1)
        assert out.shape == (BATCH, HEADS, DV) and out.dtype == torch.float32
        assert decoder.state.shape == (BATCH, HEADS, DV, DK) and decoder.state.dtype == torch.float64
    expected = ck.cosine_attention_reference(q[:, :, :5], k[:, :, :5], v[:, :, :5], m, causal=True)
    assert _max_error(out, expected[:, :, -1]) <= TOLERANCE


# ---- autograd and padding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kernel",
    [
        lambda q, k, v, m, valid: ck.cosine_attention_parallel(q, k, v, m, valid=valid),
        lambda q, k, v, m, valid: ck.cosine_attention_causal(q, k, v, m, chunk_size=16, valid=valid),
        lambda q, k, v, m, valid: ck.cosine_attention_recurrent(q[:, :, :20], k[:, :, :20], v[:, :, :20], m),
    ],
    ids=["parallel", "causal", "recurrent"],
)
def test_gradient_reaches_m_and_inputs(kernel) -> None:
    q, k, v, m, valid = _inputs()
    m = m.clone().requires_grad_()
    q, k, v = (x.clone().requires_grad_() for x in (q, k, v))
    weights = torch.randn(BATCH, HEADS, 1, DV, generator=torch.Generator().manual_seed(1))
    (kernel(q, k, v, m, valid) * weights).sum().backward()
    for name, tensor in {"m": m, "q": q, "k": k, "v": v}.items():
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all(), name
    assert (m.grad != 0).all(), "every head's m must get a gradient"


def test_causal_gradient_matches_reference() -> None:
    q, k, v, m, valid = _inputs()
    grads = []
    for causal_kernel in (
        lambda *a: ck.cosine_attention_causal(*a, chunk_size=16, valid=valid),
        lambda *a: ck.cosine_attention_reference(*a, causal=True, valid=valid),
    ):
        leaves = [x.clone().requires_grad_() for x in (q, k, v, m)]
        causal_kernel(*leaves).square().sum().backward()
        grads.append([x.grad for x in leaves])
    for fast, slow in zip(*grads):
        assert torch.allclose(fast, slow, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_zero_padding_rows_give_no_nan(causal: bool) -> None:
    """Rows zeroed upstream (no mask given), and NaN garbage under a mask, must both give finite outputs and
    gradients; masked query rows output exactly zero."""
    q, k, v, m, valid = _inputs()
    rows = valid[:, None, :, None]
    zeroed = [torch.where(rows, x, 0.0).requires_grad_() for x in (q, k, v)]
    garbage = [torch.where(rows, x, math.nan) for x in (q, k, v)]
    m = m.clone().requires_grad_()

    def run(q_, k_, v_, mask):
        if causal:
            return ck.cosine_attention_causal(q_, k_, v_, m, chunk_size=16, valid=mask)
        return ck.cosine_attention_parallel(q_, k_, v_, m, valid=mask)

    out = run(*zeroed, None)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(x.grad).all() for x in zeroed) and torch.isfinite(m.grad).all()

    masked = run(*garbage, valid)
    assert torch.isfinite(masked).all()
    assert torch.all(masked[1, :, 60:] == 0)
    ref = ck.cosine_attention_reference(*garbage, m, causal=causal, valid=valid)
    assert _max_error(masked, ref) <= TOLERANCE


def test_fully_padded_sequence_is_zero_not_nan() -> None:
    q, k, v, m, valid = _inputs()
    valid[1] = False
    m = m.clone().requires_grad_()
    out = ck.cosine_attention_parallel(q, k, v, m, valid=valid)
    out.sum().backward()
    assert torch.all(out[1] == 0) and torch.isfinite(m.grad).all()


# ---- bad input ----------------------------------------------------------------------------------------------


def test_bad_shapes_are_clear_errors() -> None:
    q, k, v, m, valid = _inputs()
    with pytest.raises(ValueError, match="one scalar per head"):
        ck.cosine_attention_parallel(q, k, v, torch.zeros(HEADS + 1))
    with pytest.raises(ValueError, match="Tq == Tk"):
        ck.cosine_attention_causal(q[:, :, :5], k, v, m)
    with pytest.raises(ValueError, match="valid must be a bool tensor"):
        ck.cosine_attention_causal(q, k, v, m, valid=valid[:, :10])
    with pytest.raises(ValueError, match="matching B, H and Tk"):
        ck.cosine_attention_parallel(q, k, v[:, :, :10], m)
