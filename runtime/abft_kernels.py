"""Blockwise (FlashAttention-style) softmax attention, unchecked and checked, and a checked linear layer.

One loop serves both kernels: keys and values are visited in blocks of ``block``; each query row keeps its
running max ``m``, normaliser ``ℓ`` and unnormalised output ``õ``, rescaled by ``a = exp(m_old - m_new)``
whenever the max grows. The checked kernel adds, beside them (docs/methods/abft.md):

* ``flash`` — three per-row invariants, each checked once per query row after the last block:
  - ``output-checksum`` (Flash-ABFT): V carries two extra columns, ``c_j = Σ_d v_jd`` and ``|v_j|₁``, taken
    from V as loaded, so the one P·V product also accumulates ``cs_i = Σ_j p_ij c_j`` with the same rescale
    as ``õ``. Check ``|Σ_d o_id − cs_i/ℓ_i| ≤ τ·Σ_j p_ij|v_j|₁/ℓ_i``. Covers V, the P·V products, the
    output accumulator, the final output and the checksum itself.
  - ``score-rowsum``: ``Σ_j s_ij = q_i·Σ_j k_j``; the right side is encoded from Q and K as loaded, the left
    side summed from the scores as computed. Covers Q, K and the Q·Kᵀ products (S), which the output
    checksum cannot see (a wrong score feeds both of its sides).
  - ``normaliser``: ℓ is accumulated a second time from an independent evaluation of the exponentials,
    ``ℓ'_i = Σ_j exp(s_ij − m_i)``; check ``|ℓ_i − ℓ'_i| ≤ τ·ℓ'_i``. Covers exp/P and ℓ, which also feed
    both sides of the output checksum.
* ``per-gemm`` — classic ABFT on each block's two products, checked per block before accumulation: the
  score row sums against ``q_i·Σ_{j∈block} k_j`` and the P·V row sums against ``P·c``. It sees S and the
  P·V products but neither exp/P, ℓ, the accumulator across blocks, nor the final division.

Every tolerance is relative: a residual is compared with ``τ`` times the sum of the absolute values of the
terms it is made of, which bounds the floating-point rounding error of that sum.

Fault sites: the kernel calls ``hook(site, tensor, step)`` at each named point (``q``, ``k``, ``v`` after
the encodings were taken, ``s`` and ``p`` per block, ``l``, ``acc`` and ``checksum`` after each block's
update, ``o`` at the end); a fault injector returns a corrupted tensor there. ``hook=None`` costs nothing.

``stepwise_attention`` holds the same flash invariants (unmasked) as pure per-block steps, for a compiler
to fuse; it runs eagerly as it is, and the bench compiles its steps (bench/abft.py ``--compile``).

This module imports only torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Hook = Callable[[str, torch.Tensor, int], torch.Tensor]

CHECKS = ("none", "flash", "per-gemm", "both")
FLASH_INVARIANTS = ("output-checksum", "score-rowsum", "normaliser")
PER_GEMM_INVARIANTS = ("gemm-scores", "gemm-pv")
LINEAR_INVARIANTS = ("linear-row", "linear-column")
ATTENTION_SITES = ("q", "k", "v", "s", "p", "l", "acc", "o", "checksum")
LINEAR_SITES = ("weight", "output")


@dataclass
class KernelResult:
    """The attention output and, per invariant, which query rows failed (bool, the output's shape minus Ev)."""

    output: torch.Tensor
    failed: dict[str, torch.Tensor] = field(default_factory=dict)
    residuals: dict[str, torch.Tensor] = field(default_factory=dict)

    def failing_rows(self) -> torch.Tensor | None:
        """Union of the failing rows over every invariant (None when nothing was checked)."""
        rows = None
        for flags in self.failed.values():
            rows = flags if rows is None else rows | flags
        return rows

    def fired(self) -> list[str]:
        """Names of the invariants that failed on at least one row."""
        return [name for name, flags in self.failed.items() if bool(flags.any())]


def _violates(residual: torch.Tensor, bound: torch.Tensor, tol: float) -> torch.Tensor:
    """``|residual| > tol·bound``; a non-finite residual or bound always violates (NaN compares false)."""
    return ~(residual.abs() <= tol * bound)


def _ratio(residual: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    """The relative residual ``|residual| / bound`` (what τ is compared with), for calibration and plots."""
    tiny = torch.finfo(bound.dtype).tiny
    return residual.abs() / bound.clamp_min(tiny)


def _key_blocks(length: int, block: int) -> list[tuple[int, int]]:
    return [(start, min(start + block, length)) for start in range(0, length, block)]


def _accumulate(acc: torch.Tensor, p: torch.Tensor, values: torch.Tensor) -> None:
    """``acc += p @ values`` in place, as one fused batched product when the operands flatten to three dimensions."""
    if p.shape[:-2] == values.shape[:-2] == acc.shape[:-2] and acc.is_contiguous() and p.is_contiguous():
        acc.view(-1, *acc.shape[-2:]).baddbmm_(p.view(-1, *p.shape[-2:]), values.reshape(-1, *values.shape[-2:]))
    else:
        acc.add_(torch.matmul(p, values))


def blockwise_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
    causal: bool = False,
    block: int = 128,
    check: str = "none",
    tol: float = 1e-5,
    hook: Hook | None = None,
    query_offset: int = 0,
    keep_residuals: bool = False,
    flash_invariants: tuple[str, ...] = FLASH_INVARIANTS,
) -> KernelResult:
    """``softmax(scale·QKᵀ + mask)V`` by key blocks with an online softmax, checked when ``check`` != "none".

    Shapes as ``attn.sdpa``: q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev), ``mask`` broadcastable to
    (..., Lq, Lk), i1 keeps ``True``, a float mask is added. ``causal`` keeps key j for query i when
    ``j <= i + query_offset`` (``query_offset``: where these query rows start, for re-executing a block).
    Rows whose keys are all masked give 0, as PyTorch's SDPA does. ``keep_residuals`` also returns each
    invariant's relative residual per row (what ``tol`` is compared with). ``flash_invariants`` narrows
    ``flash`` to some of its invariants (to measure what each one costs).
    """
    if check not in CHECKS:
        raise ValueError(f"check must be one of {', '.join(CHECKS)}, got {check!r}")
    flash = check in ("flash", "both")
    per_gemm = check in ("per-gemm", "both")
    output_checksum = flash and "output-checksum" in flash_invariants
    score_rowsum = flash and "score-rowsum" in flash_invariants
    normaliser = flash and "normaliser" in flash_invariants
    extended = output_checksum or per_gemm  # V carries its checksum columns
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    lq, lk, ev = q.shape[-2], k.shape[-2], v.shape[-1]
    blocks = _key_blocks(lk, block)
    result = KernelResult(output=q.new_empty(0))
    failed = result.failed

    def flag(name: str, residual: torch.Tensor, bound: torch.Tensor) -> None:
        bad = _violates(residual, bound, tol)
        failed[name] = failed[name] | bad if name in failed else bad
        if keep_residuals:
            ratio = _ratio(residual, bound)
            result.residuals[name] = torch.maximum(result.residuals[name], ratio) if name in result.residuals else ratio

    q = q * scale  # the scale folded into Q once: the scores are the logits before the mask
    if flash or per_gemm:  # encodings, from the operands as loaded (before a fault can strike the working copies)
        v_sums = torch.stack([v.sum(-1), v.abs().sum(-1)], dim=-1) if extended else v  # c_j, |v_j|₁
        if score_rowsum:
            score_sum = q @ k.sum(-2).unsqueeze(-1)  # (..., Lq, 1): q_i · Σ_j k_j
            score_bound = q.abs() @ k.abs().sum(-2).unsqueeze(-1)
        if per_gemm:
            k_block_sums = torch.stack([k[..., s:e, :].sum(-2) for s, e in blocks], dim=-2)  # (..., nb, E)
            k_block_abs = torch.stack([k[..., s:e, :].abs().sum(-2) for s, e in blocks], dim=-2)
            block_score_sum = q @ k_block_sums.transpose(-1, -2)  # (..., Lq, nb)
            block_score_bound = q.abs() @ k_block_abs.transpose(-1, -2)
    if hook is not None:
        q, k, v = hook("q", q, 0), hook("k", k, 0), hook("v", v, 0)
    if extended:  # the working V beside the checksums of V as loaded, and a ones column that accumulates ℓ
        values = torch.cat([v, v_sums, torch.ones_like(v[..., :1])], dim=-1)
    else:
        values = v

    if mask is not None:
        mask = mask.expand(*mask.shape[:-2], lq, lk)
    keep: torch.Tensor | None = mask
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    m = q.new_full((*lead, lq), float("-inf"))
    norm = q.new_zeros((*lead, lq))
    norm_check = q.new_zeros((*lead, lq))
    score_total = q.new_zeros((*lead, lq))
    acc = q.new_zeros((*lead, lq, values.shape[-1]))
    rows = torch.arange(query_offset, query_offset + lq, device=q.device).unsqueeze(-1)
    keys_t = k.transpose(-1, -2)
    exponentials: torch.Tensor | None = None  # reused from block to block (a fresh one per block costs a pass)

    for step, (start, end) in enumerate(blocks):
        scores = torch.matmul(q, keys_t[..., start:end])
        if hook is not None:
            scores = hook("s", scores, step)
        if score_rowsum:
            score_total += scores.sum(-1)
        if per_gemm:
            flag("gemm-scores", scores.sum(-1) - block_score_sum[..., step], block_score_bound[..., step])
        logits = scores  # masked and shifted in place from here on (the scores are no longer needed)
        if causal:
            keys = torch.arange(start, end, device=q.device)
            logits.masked_fill_(keys > rows, float("-inf"))
        elif keep is not None:
            block_mask = keep[..., start:end]
            if block_mask.dtype == torch.bool:
                logits.masked_fill_(~block_mask, float("-inf"))
            else:
                logits.add_(block_mask)
        m_new = torch.maximum(m, logits.amax(-1))
        shift = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))
        rescale = torch.exp(m - shift)
        shifted = logits.sub_(shift.unsqueeze(-1))
        if normaliser:  # the exponentials in a buffer of their own: the normaliser evaluates them again below
            if exponentials is None or exponentials.shape != shifted.shape:
                exponentials = torch.empty_like(shifted)
            p = torch.exp(shifted, out=exponentials)
        else:
            p = shifted.exp_()
        if hook is not None:
            p = hook("p", p, step)
        block_values = values[..., start:end, :]
        if per_gemm:
            product = torch.matmul(p, block_values)
            flag("gemm-pv", product[..., :ev].sum(-1) - product[..., ev], product[..., ev + 1])
            acc.mul_(rescale.unsqueeze(-1)).add_(product)
        else:
            _accumulate(acc.mul_(rescale.unsqueeze(-1)), p, block_values)
        norm = acc[..., ev + 2] if extended else norm.mul_(rescale).add_(p.sum(-1))
        if hook is not None:
            norm = hook("l", norm, step)
            if extended:
                acc[..., ev + 2] = norm
        if normaliser:  # ℓ again, from exponentials evaluated a second time
            norm_check = norm_check.mul_(rescale).add_(shifted.exp_().sum(-1))
        if hook is not None:
            acc = torch.cat([hook("acc", acc[..., :ev], step), acc[..., ev:]], dim=-1) if extended else hook("acc", acc, step)
            if extended:
                acc = torch.cat([acc[..., :ev], hook("checksum", acc[..., ev : ev + 1], step), acc[..., ev + 1 :]], dim=-1)
        m = m_new

    if extended:
        norm = acc[..., ev + 2]
    attended = torch.isfinite(m)  # rows with at least one key: a row whose keys are all masked outputs 0, as SDPA
    out = acc[..., :ev] / torch.where(attended, norm, torch.ones_like(norm)).unsqueeze(-1)
    if hook is not None:
        out = hook("o", out, 0)
    if output_checksum:
        denominator = torch.where(attended, norm, torch.ones_like(norm))
        flag("output-checksum", out.sum(-1) - acc[..., ev] / denominator, acc[..., ev + 1] / denominator)
    if score_rowsum:
        flag("score-rowsum", score_total - score_sum[..., 0], score_bound[..., 0])
    if normaliser:
        flag("normaliser", norm - norm_check, norm_check.masked_fill(~attended, 1.0))
    result.output = out
    return result


def attention_rows(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, start: int, end: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The operands of query rows ``start:end`` (for re-executing one block of rows)."""
    if mask is not None and mask.shape[-2] != 1:
        mask = mask[..., start:end, :]
    return q[..., start:end, :], k, v, mask


LINEAR_GROUPS = 8


@dataclass
class LinearEncoding:
    """Checksums of a linear layer's weight and bias, taken once from the stored (fault-free) tensors.

    The output features are split into ``groups`` contiguous groups with one weight checksum each
    (Σ_{o∈g} W_o), so a row check compares a group's output sum with ``x·Σ_{o∈g} W_o``: its rounding bound
    covers one group, not the whole row, which makes it that much more sensitive to one wrong weight.
    """

    group_of: torch.Tensor  # (out, groups) one-hot membership of each output feature
    weight_sums: torch.Tensor  # (groups, in)
    weight_abs_sums: torch.Tensor
    bias_sums: torch.Tensor  # (groups,) (zeros without bias)
    bias_abs_sums: torch.Tensor
    weight_norms: torch.Tensor  # (out,) ‖W_o‖₂: the column check's rounding bound (Cauchy–Schwarz), taken once

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor | None, groups: int = LINEAR_GROUPS) -> LinearEncoding:
        out = weight.shape[0]
        groups = max(1, min(groups, out))
        group_of = torch.nn.functional.one_hot(torch.arange(out) * groups // out, groups).to(weight.dtype)
        bias = bias if bias is not None else weight.new_zeros(out)
        return cls(group_of, group_of.T @ weight, group_of.T @ weight.abs(), group_of.T @ bias, group_of.T @ bias.abs(),
                   weight.norm(dim=1))


def checked_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    encoding: LinearEncoding,
    tol: float,
    hook: Hook | None = None,
    keep_residuals: bool = False,
) -> KernelResult:
    """``y = x Wᵀ + b`` with classic ABFT: per output row and group of output features, the output sum
    against the encoded weight checksum (``linear-row``: covers W and y), and per output feature the sum over
    rows against ``(Σ_n x_n) Wᵀ`` (``linear-column``: covers y). The checksum row ``Σ_n x_n`` is appended to
    the input, so the layer's one product also computes the column check's expected side (the weight is read
    once); its rounding bound is ``‖Σ_n |x_n|‖₂ ‖W_o‖₂ + N|b_o|`` (Cauchy–Schwarz, from the encoded norms).

    The flags have the shape of ``x`` with its last dimension replaced by the groups (``linear-row``) and
    ``(out,)`` (``linear-column``).
    """
    if hook is not None:
        weight = hook("weight", weight, 0)
    rows = x.reshape(-1, x.shape[-1])
    count = rows.shape[0]
    extended = torch.nn.functional.linear(torch.cat([rows, rows.sum(0, keepdim=True)]), weight, bias)
    y = extended[:count].reshape(*x.shape[:-1], extended.shape[-1])
    column_expected = extended[count] + ((count - 1) * bias if bias is not None else 0)  # (Σ_n x_n) Wᵀ + N b
    if hook is not None:
        y = hook("output", y, 0)
    result = KernelResult(output=y)
    row_residual = y @ encoding.group_of - (x @ encoding.weight_sums.T + encoding.bias_sums)
    row_bound = x.abs() @ encoding.weight_abs_sums.T + encoding.bias_abs_sums
    column_bound = rows.abs().sum(0).norm() * encoding.weight_norms + (count * bias.abs() if bias is not None else 0)
    column_residual = y.reshape(-1, y.shape[-1]).sum(0) - column_expected
    result.failed["linear-row"] = _violates(row_residual, row_bound, tol)
    result.failed["linear-column"] = _violates(column_residual, column_bound, tol)
    if keep_residuals:
        result.residuals["linear-row"] = _ratio(row_residual, row_bound)
        result.residuals["linear-column"] = _ratio(column_residual, column_bound)
    return result


# ---- the same invariants as pure per-block steps, for a compiler to fuse ------------------------------------------


def _unchecked_step(q, keys_t, values, m, norm, acc, hook: Hook | None, step: int):
    """One key block of the unchecked online softmax, out of place (no buffers reused): what a compiler fuses."""
    scores = torch.matmul(q, keys_t)
    if hook is not None:
        scores = hook("s", scores, step)
    m_new = torch.maximum(m, scores.amax(-1))
    rescale = torch.exp(m - m_new)
    p = torch.exp(scores - m_new.unsqueeze(-1))
    if hook is not None:
        p = hook("p", p, step)
    return m_new, norm * rescale + p.sum(-1), acc * rescale.unsqueeze(-1) + torch.matmul(p, values)


def _flash_step(q, keys_t, values, m, acc, norm_check, score_total, hook: Hook | None, step: int):
    """One key block of the checked online softmax (``flash``), out of place.

    ``values`` is V augmented with ``[c | |v|₁ | 1]``, so the P·V product also yields the output checksum,
    its bound and ℓ. The independent normaliser is ``e·Σ_j exp(x_ij − 1)``: the same value as ℓ, evaluated by
    a second, different expression, so a compiler cannot merge it with the exponentials it checks.
    """
    scores = torch.matmul(q, keys_t)
    if hook is not None:
        scores = hook("s", scores, step)
    score_total = score_total + scores.sum(-1)
    m_new = torch.maximum(m, scores.amax(-1))
    rescale = torch.exp(m - m_new)
    shifted = scores - m_new.unsqueeze(-1)
    p = torch.exp(shifted)
    if hook is not None:
        p = hook("p", p, step)
    acc = acc * rescale.unsqueeze(-1) + torch.matmul(p, values)
    if hook is not None:
        ev = acc.shape[-1] - 3
        acc = torch.cat([hook("acc", acc[..., :ev], step), hook("checksum", acc[..., ev : ev + 1], step),
                         acc[..., ev + 1 : ev + 2], hook("l", acc[..., ev + 2], step).unsqueeze(-1)], dim=-1)
    norm_check = norm_check * rescale + torch.exp(shifted - 1.0).sum(-1)
    return m_new, acc, norm_check, score_total


@dataclass(frozen=True)
class BlockSteps:
    """The two per-block step functions of :func:`stepwise_attention` (plain torch, or compiled by the caller)."""

    unchecked: Callable = _unchecked_step
    flash: Callable = _flash_step


EAGER_STEPS = BlockSteps()


def stepwise_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    block: int = 128,
    check: str = "none",
    tol: float = 1e-5,
    hook: Hook | None = None,
    steps: BlockSteps = EAGER_STEPS,
) -> KernelResult:
    """Unmasked blockwise attention, unchecked or with every ``flash`` invariant, as pure per-block steps.

    The same invariants as :func:`blockwise_attention` (output checksum, score row sum, independent
    normaliser), written out of place so that ``torch.compile`` can fuse each step's elementwise work and
    reductions into few loops; pass ``steps=BlockSteps(torch.compile(...), torch.compile(...))`` for that.
    Nothing here needs a compiler: the default steps run eagerly. Sites for ``hook``: s, p, acc, checksum, l
    per block, o at the end.
    """
    if check not in ("none", "flash"):
        raise ValueError(f"check must be none or flash, got {check!r}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    q = q * scale
    ev = v.shape[-1]
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    rows = (*lead, q.shape[-2])
    m = q.new_full(rows, float("-inf"))
    keys_t = k.transpose(-1, -2)
    blocks = _key_blocks(k.shape[-2], block)
    result = KernelResult(output=q.new_empty(0))
    if check == "none":
        norm, acc = q.new_zeros(rows), q.new_zeros((*rows, ev))
        for step, (start, end) in enumerate(blocks):
            m, norm, acc = steps.unchecked(q, keys_t[..., start:end], v[..., start:end, :], m, norm, acc, hook,
                                           step if hook is not None else 0)  # one compiled graph for every block
        out = acc / norm.unsqueeze(-1)
        result.output = hook("o", out, 0) if hook is not None else out
        return result
    values = torch.cat([v, v.sum(-1, keepdim=True), v.abs().sum(-1, keepdim=True), torch.ones_like(v[..., :1])], dim=-1)
    score_sum = (q @ k.sum(-2).unsqueeze(-1))[..., 0]  # encodings from Q and K as loaded
    score_bound = (q.abs() @ k.abs().sum(-2).unsqueeze(-1))[..., 0]
    if hook is not None:
        q, k, v = hook("q", q, 0), hook("k", k, 0), hook("v", v, 0)
        keys_t = k.transpose(-1, -2)
        values = torch.cat([v, values[..., ev:]], dim=-1)
    acc, norm_check, score_total = q.new_zeros((*rows, ev + 3)), q.new_zeros(rows), q.new_zeros(rows)
    for step, (start, end) in enumerate(blocks):
        m, acc, norm_check, score_total = steps.flash(
            q, keys_t[..., start:end], values[..., start:end, :], m, acc, norm_check, score_total, hook,
            step if hook is not None else 0)
    norm = acc[..., ev + 2]
    out = acc[..., :ev] / norm.unsqueeze(-1)
    if hook is not None:
        out = hook("o", out, 0)
    norm_check = norm_check * torch.e
    for name, residual, bound in (
        ("output-checksum", out.sum(-1) - acc[..., ev] / norm, acc[..., ev + 1] / norm),
        ("score-rowsum", score_total - score_sum, score_bound),
        ("normaliser", norm - norm_check, norm_check),
    ):
        result.failed[name] = _violates(residual, bound, tol)
    result.output = out
    return result
