"""Torch implementations of the ``attn`` dialect for the reference executor."""

from __future__ import annotations

import torch.nn.functional as F
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls

from dialects import attn


@register_impls
class AttnFunctions(InterpreterFunctions):
    """Reference (float, noiseless) semantics of the attention ops."""

    @impl(attn.SdpaOp)
    def run_sdpa(self, interpreter: Interpreter, op: attn.SdpaOp, args):
        q, k, v = args[:3]
        mask = args[3] if len(args) > 3 else None
        return (
            F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=bool(op.causal.value.data), scale=op.scale.value.data
            ),
        )
