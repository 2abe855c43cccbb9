"""Where a weight tensor's values came from: a digest of the file that held them and the tensor's name in it.

Whoever reads a weights file whose digest is known (``CompiledModel.load``, from the artifact's checked
manifest) records it here, so that a cache keyed by a tensor's contents (the crossbar's on-disk chip store) can
name the tensor without hashing its bytes again. The record holds for that tensor object only while its version
counter is unchanged: any in-place change through ordinary ops drops it (a change through ``.data``, which
bypasses the counter, would not be noticed).
"""

from __future__ import annotations

import weakref

import torch

# id(tensor) -> (a weak reference to it, its version when recorded, "digest:name")
_ORIGINS: dict[int, tuple[weakref.ref, int, str]] = {}


def record_origin(tensor: torch.Tensor, file_digest: str, name: str) -> None:
    """Notes that ``tensor`` holds the values stored as ``name`` in the file whose digest is ``file_digest``."""
    ident = id(tensor)
    _ORIGINS[ident] = (weakref.ref(tensor, lambda _: _ORIGINS.pop(ident, None)), tensor._version, f"{file_digest}:{name}")


def origin_of(tensor: torch.Tensor) -> str | None:
    """``"digest:name"`` recorded for this very tensor, unchanged since; else None."""
    entry = _ORIGINS.get(id(tensor))
    if entry is None or entry[0]() is not tensor or entry[1] != tensor._version:
        return None
    return entry[2]
