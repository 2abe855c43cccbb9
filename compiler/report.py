"""Summaries of a module for reports: ops per dialect, attention blocks with their module paths."""

from __future__ import annotations

from collections import Counter

from xdsl.dialects.builtin import FloatAttr, IntegerAttr, ModuleOp, i1

from dialects.locations import module_path_of

ATTENTION_OPS = ("attn.sdpa", "attn.cosine")


def ops_by_dialect(module: ModuleOp) -> Counter[str]:
    """How many ops of each dialect the module holds (the module op itself excluded)."""
    return Counter(op.name.split(".")[0] for op in module.walk() if op is not module)


def attention_blocks(module: ModuleOp) -> list[tuple[str, str, str]]:
    """(module path, op name, key attributes) for every attention op, in program order."""
    blocks = []
    for op in module.walk():
        if op.name in ATTENTION_OPS:
            attrs = ", ".join(f"{k}={_short(v)}" for k, v in op.attributes.items())
            if getattr(op, "mask", None) is not None:
                attrs += ", mask"
            blocks.append((module_path_of(op) or "<top>", op.name, attrs))
    return blocks


def _short(attr) -> str:
    if isinstance(attr, IntegerAttr) and attr.type == i1:
        return str(bool(attr.value.data)).lower()
    if isinstance(attr, (IntegerAttr, FloatAttr)):
        data = attr.value.data
        return f"{data:.4g}" if isinstance(data, float) else str(data)
    return str(attr)
