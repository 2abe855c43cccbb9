"""An on-disk store of programmed crossbar matrices, so that a new process does not program a model again.

Programming is deterministic when it draws no random numbers (no programming noise, no stuck cells, no
read-noise pool: ``ChipCache.cacheable``), so the programmed state of a matrix is a function of its values,
the device configuration and the tiles left out. The store keeps the three tensors that depend on the matrix
(the recombined weight, the dynamic-ADC factor per column tile and the mapping scale, see
``programming.tiles_from_parts``) in one safetensors file per matrix, named by a 128-bit XXH3 digest of the
matrix's bytes, dtype and shape, the configuration and the skipped tiles (a non-cryptographic hash: it tells
matrices apart by accident with certainty, not against someone who writes colliding weights into the store on
purpose; BLAKE3 would take twice as long). A state read back is the state
that was stored, so runs are bit-identical with and without the store.

Where: ``$ATTNC_CHIP_CACHE`` if set (``off`` turns the store off), else ``$XDG_CACHE_HOME/attnc/chips`` or
``~/.cache/attnc/chips``. Files are written atomically (a temporary file renamed into place) with safetensors;
a file that cannot be read or does not fit its key is ignored and written again. Reading maps a file's tensors
from the page cache after checking its header (``_mapped_tensors``): about half of what
``safetensors.torch.load_file`` costs per file (1.4 against 3.1 ms for MiniLM's 36 files), and a run reads
dozens. Hashing reads every byte of the matrix (about 4 ms for MiniLM's 42 MB of weights on one core), a small
part of what programming costs; a weight read
from a compiled artifact whose manifest gives the weights file's digest is named by that digest and its name
instead (``runtime.weight_origins``), with no hashing at all.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from pathlib import Path
from typing import cast

import torch
import xxhash
from safetensors.torch import save_file

from runtime.weight_origins import origin_of
from targets.crossbar.device import CrossbarConfig, CrossbarTiles

FORMAT = "attnc-chip-1"
ENVIRONMENT = "ATTNC_CHIP_CACHE"


def store_directory() -> Path | None:
    """Where programmed matrices are kept, or None when the store is off."""
    return _directory_for(os.environ.get(ENVIRONMENT), os.environ.get("XDG_CACHE_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=8)
def _directory_for(chosen: str | None, xdg_cache_home: str | None, home: str | None) -> Path | None:
    """``store_directory`` for these environment values (worked out once: a run asks once per matrix)."""
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "none") else Path(chosen)
    base = xdg_cache_home or str(Path.home() / ".cache")
    return Path(base) / "attnc" / "chips"


@functools.cache
def _configuration_text(cfg: CrossbarConfig) -> str:
    return repr(cfg)


def state_key(weight: torch.Tensor, cfg: CrossbarConfig, skipped: tuple | None) -> str:
    """The digest that names a matrix's programmed state: its bytes, dtype and shape, the device
    configuration and the tiles left out."""
    digest = xxhash.xxh3_128()
    digest.update(f"{FORMAT}|{weight.dtype}|{tuple(weight.shape)}|{_configuration_text(cfg)}|{skipped!r}|".encode())
    origin = origin_of(weight)
    if origin is not None:  # read from a file of known digest and unchanged since: its name there says it all
        digest.update(f"origin|{origin}".encode())
    else:
        values = weight.detach().contiguous()
        digest.update(b"bytes|")
        digest.update(values.view(torch.uint8).reshape(-1).numpy().data)
    return digest.hexdigest()


_DTYPES = {"F32": torch.float32, "F64": torch.float64}


def _mapped_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a stored state's safetensors file, mapped from the page cache instead of copied (the
    store's files are only ever replaced whole, never written in place). Raises ValueError for a file that is
    not a well-formed safetensors file of float tensors, FileNotFoundError when there is none."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise ValueError("truncated")
        header_size = int.from_bytes(prefix, "little")
        if header_size > size - 8:
            raise ValueError("truncated")
        header = json.loads(handle.read(header_size))
    if not isinstance(header, dict):
        raise ValueError("not a safetensors header")
    start = 8 + header_size
    storage = torch.UntypedStorage.from_file(str(path), shared=False, nbytes=size)
    data = torch.empty(0, dtype=torch.uint8).set_(cast(torch.UntypedStorage, storage))
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(str(entry.get("dtype"))) if isinstance(entry, dict) else None
        if dtype is None:
            raise ValueError(f"{name}: not a float tensor")
        shape, (begin, end) = [int(n) for n in entry["shape"]], [int(n) for n in entry["data_offsets"]]
        if not 0 <= begin <= end <= size - start or end - begin != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"{name}: its data does not fit the file")
        tensors[name] = data[start + begin : start + end].view(dtype).view(shape)
    return tensors


class ChipStore:
    """Programmed states on disk, one file per key (see the module docstring)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.safetensors"

    def load(self, key: str, weight: torch.Tensor, cfg: CrossbarConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """``(w_eff_t, kappa, scale)`` stored under ``key`` for ``weight`` ``(out, in)`` programmed with ``cfg``,
        or None (nothing stored, or a file that does not fit)."""
        path = self.path(key)
        if path is None:
            return None
        try:
            tensors = _mapped_tensors(path)
        except (OSError, ValueError, KeyError, TypeError):  # missing, or not a well-formed file
            return None
        w_eff_t, kappa, scale = tensors.get("w_eff_t"), tensors.get("kappa"), tensors.get("scale")
        if w_eff_t is None or kappa is None or scale is None or len(tensors) != 3:
            return None
        n_out, n_in = weight.shape
        col_tiles = math.ceil(n_out / cfg.tile_cols)
        fits = (
            all(t.dtype == weight.dtype for t in (w_eff_t, kappa, scale))
            and tuple(w_eff_t.shape) == (n_in, col_tiles * cfg.tile_cols)
            and tuple(kappa.shape) == (col_tiles,)
            and tuple(scale.shape) == (1, 1)
        )
        return (w_eff_t, kappa, scale) if fits else None

    def save(self, key: str, state: CrossbarTiles) -> None:
        """Keeps a state's matrix-dependent tensors under ``key``, replacing a file there (one that could not be
        read); a store that cannot be written is skipped."""
        path = self.path(key)
        if path is None:
            return
        tensors = {"w_eff_t": state.w_eff_t, "kappa": state.adc_kappa, "scale": state.scale}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            os.close(handle)
            try:
                save_file({k: v.detach().contiguous() for k, v in tensors.items()}, temporary, metadata={"format": FORMAT})
                os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        except OSError:
            return
