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
a file that cannot be read or does not fit its key is ignored and written again. The store is held to
``$ATTNC_CHIP_CACHE_MAX`` (``500M``, ``2G``; 2 GiB by default): when a process first writes to it, the
oldest-written states are removed until it fits (that process may then add one model's states beyond the
limit). ``attnc cache`` shows where it is and how big; ``attnc cache --clear`` empties it. Reading maps a file's tensors
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
import sys
import tempfile
import warnings
from pathlib import Path
from typing import cast

import torch
import xxhash
from safetensors.torch import save_file

from dialects.diagnostics import AttncWarning
from runtime.weight_origins import origin_of
from targets.crossbar.device import CrossbarConfig, CrossbarTiles

FORMAT = "attnc-chip-1"
ENVIRONMENT = "ATTNC_CHIP_CACHE"
LIMIT_ENVIRONMENT = "ATTNC_CHIP_CACHE_MAX"
DEFAULT_LIMIT = 2 << 30  # bytes: about 50 MiniLM-sized chips
_LIMITED: set[Path] = set()  # stores this process has held to their size limit
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def size_limit() -> int:
    """The store's size limit in bytes: ``$ATTNC_CHIP_CACHE_MAX`` (``500M``, ``2G``, plain bytes), else 2 GiB.
    Raises ValueError for a value that is not a size."""
    text = os.environ.get(LIMIT_ENVIRONMENT, "").strip().upper().removesuffix("B").removesuffix("I")
    if not text:
        return DEFAULT_LIMIT
    number, unit = (text[:-1], text[-1]) if text[-1] in _UNITS else (text, "")
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not value >= 0 or not math.isfinite(value):
        raise ValueError(f"{LIMIT_ENVIRONMENT} must be a size such as 500M or 2G, got {os.environ[LIMIT_ENVIRONMENT]!r}")
    return int(value * _UNITS[unit])


def store_directory() -> Path | None:
    """Where programmed matrices are kept, or None when the store is off."""
    return _directory_for(os.environ.get(ENVIRONMENT), os.environ.get("XDG_CACHE_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=8)
def _directory_for(chosen: str | None, xdg_cache_home: str | None, home: str | None) -> Path | None:
    """``store_directory`` for these environment values (worked out once: a run asks once per matrix)."""
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "none") else Path(chosen)
    base = xdg_cache_home or str((Path(home) if home else Path.home()) / ".cache")
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
    if sys.byteorder != "little":  # safetensors files are little-endian; the view below is the host's order
        raise ValueError("a big-endian host")
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
        fits = 0 <= begin <= end <= size - start and end - begin == math.prod(shape) * dtype.itemsize
        if not fits or min(shape, default=0) < 0 or (start + begin) % dtype.itemsize:
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
        except Exception:  # missing, damaged or replaced meanwhile: a store file never stops a run
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
        if path.parent not in _LIMITED:  # once per process and store: a scan stats every file
            _LIMITED.add(path.parent)
            try:
                limit = size_limit()
            except ValueError as error:
                warnings.warn(f"{error}: the chip store is not limited", AttncWarning, stacklevel=2)
            else:
                self.evict(limit, keep=path)

    def _entries(self) -> list[tuple[Path, int]]:
        """``(path, bytes)`` of the stored states, oldest written first (one ``stat`` each)."""
        if self.directory is None or not self.directory.is_dir():
            return []
        dated = []
        for path in self.directory.glob("*.safetensors"):
            try:
                info = path.stat()
            except OSError:  # removed meanwhile (another process evicting)
                continue
            dated.append((info.st_mtime_ns, path, info.st_size))
        return [(path, size) for _, path, size in sorted(dated)]

    def usage(self) -> tuple[int, int]:
        """``(files, bytes)`` held by the store."""
        entries = self._entries()
        return len(entries), sum(size for _, size in entries)

    def evict(self, limit: int, keep: Path | None = None) -> int:
        """Removes the oldest-written states until the store holds at most ``limit`` bytes (never ``keep``, the
        state just written); returns how many it removed. A state evicted is programmed again when next needed."""
        entries = self._entries()
        total, removed = sum(size for _, size in entries), 0
        for path, size in entries:
            if total <= limit:
                break
            if path == keep:
                continue
            try:
                path.unlink()
            except OSError:
                continue
            total, removed = total - size, removed + 1
        return removed

    def clear(self) -> int:
        """Removes every stored state (and temporary files left by an interrupted write); returns how many states."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        removed = 0
        for path in [*self.directory.glob("*.safetensors"), *self.directory.glob(".*.tmp")]:
            try:
                path.unlink()
            except OSError:
                continue
            removed += path.suffix == ".safetensors"
        return removed
