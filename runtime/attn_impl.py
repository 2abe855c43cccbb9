"""Torch implementations of the ``attn`` dialect for the reference executor."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls

from dialects import attn
from runtime.clip_kernels import kv_clip_values
from runtime.cosine_kernels import cosine_attention_causal, cosine_attention_parallel, cosine_attention_recurrent


@register_impls
class AttnFunctions(InterpreterFunctions):
    """Reference (float, noiseless) semantics of the attention ops."""

    @impl(attn.SdpaOp)
    def run_sdpa(self, interpreter: Interpreter, op: attn.SdpaOp, args):
        q, k, v = args[:3]
        mask = args[3] if len(args) > 3 else None
        softcap = attn.softcap_value(op)
        if softcap is not None:
            scores = q @ k.transpose(-2, -1)
            probs = masked_softmax(scores, mask, op.scale.value.data, bool(op.causal.value.data), softcap)
            return (probs @ v,)
        return (
            F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=bool(op.causal.value.data), scale=op.scale.value.data
            ),
        )

    @impl(attn.CosineOp)
    def run_cosine(self, interpreter: Interpreter, op: attn.CosineOp, args):
        q, k, v, m = args[:4]
        causal = bool(op.causal.value.data)
        valid = key_padding(args[4], q.shape, k.shape[2], causal) if len(args) > 4 else None
        if not causal:
            return (cosine_attention_parallel(q, k, v, m, valid=valid),)
        if op.form.data == "recurrent":
            return (cosine_attention_recurrent(q, k, v, m, valid=valid).to(q.dtype),)
        return (cosine_attention_causal(q, k, v, m, valid=valid),)

    @impl(attn.KvClipOp)
    def run_kv_clip(self, interpreter: Interpreter, op: attn.KvClipOp, args):
        return (
            kv_clip_values(args[0], op.alpha.value.data, op.beta.value.data, op.g_min.value.data, op.g_max.value.data),
        )

    @impl(attn.SoftmaxOp)
    def run_softmax(self, interpreter: Interpreter, op: attn.SoftmaxOp, args):
        mask = args[1] if len(args) > 1 else None
        return (masked_softmax(args[0], mask, op.scale.value.data, bool(op.causal.value.data), attn.softcap_value(op)),)


def masked_softmax(
    scores: torch.Tensor, mask: torch.Tensor | None, scale: float, causal: bool, softcap: float | None = None
) -> torch.Tensor:
    """softmax(cap(scale * scores) + mask) over the last dim, with attn.sdpa's mask, causal and softcap conventions."""
    logits = scores * scale
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    if causal:
        queries, keys = scores.shape[-2:]
        keep = torch.ones(queries, keys, dtype=torch.bool, device=scores.device).tril()
        logits = logits.masked_fill(~keep, float("-inf"))
    elif mask is not None:
        logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask
    return torch.softmax(logits, dim=-1)


def key_padding(keep: torch.Tensor, query_shape, key_length: int, causal: bool) -> torch.Tensor:
    """The (batch, keys) padding mask a keep-mask encodes; raises if the mask is more than padding (+causal).

    Cosine attention's linear forms can honour key padding (and the causal triangle) but not an arbitrary
    pattern, so anything else is an error rather than a silently different result.
    """
    batch, _, length, _ = query_shape
    full = keep.expand(batch, keep.shape[1] if keep.dim() == 4 else 1, length, key_length)
    valid = full.any(dim=(1, 2))
    padding = valid[:, None, None, :].expand_as(full)
    rows = valid[:, None, :, None] if length == key_length else torch.ones_like(full[:, :, :, :1])
    if torch.equal(full & rows, padding & rows):
        return valid
    if causal and torch.equal(full & rows, padding & torch.ones(length, key_length, dtype=torch.bool).tril() & rows):
        return valid
    raise ValueError("attn.cosine mask is not a key-padding mask (nor padding + causal)")
