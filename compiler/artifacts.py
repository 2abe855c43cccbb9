"""The on-disk artifact: written whole or not at all, checked when read, never unpickled.

A compiled model is a directory: ``model.mlir``, ``weights.safetensors``, ``inputs.safetensors``, optionally
``reference.safetensors``, and ``manifest.json`` with the sha256 of each of them. ``write_directory``
writes everything into a fresh temporary directory beside the target and renames it into place, so a
reader sees the old artifact or the new one, never a mix, and a failed or killed write (a full disk, an
interrupt) leaves the old one untouched. When several writers race for one directory the last rename
wins, whole. ``verify_manifest`` refuses a directory whose files do not match their manifest (a mixed
or tampered artifact); a directory without a manifest (written before manifests existed) loads with a
warning.

Tensor files are read with safetensors only (no pickle) and checked against what the program declares
(``check_tensors``) before any op runs, so a wrong file is one error naming the tensor.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from compiler.errors import AttncError
from dialects.diagnostics import AttncWarning

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "attnc-artifact/1"
TensorSpec = tuple[tuple[int, ...], torch.dtype]


# --------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------


def check_output_directory(outdir: Path) -> None:
    """Fails early, naming the path, when ``outdir`` cannot become a directory we write."""
    if outdir.exists() and not outdir.is_dir():
        raise AttncError(f"cannot write {outdir}: it exists and is not a directory")
    parent = outdir.absolute().parent
    if not parent.is_dir():
        raise AttncError(f"cannot write {outdir}: its parent directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AttncError(f"cannot write {outdir}: {parent} is not writable")


def write_directory(outdir: str | Path, write_files: Callable[[Path], None]) -> Path:
    """Calls ``write_files(tmp)`` to fill a temporary directory, adds the manifest, then swaps it in."""
    outdir = Path(outdir)
    check_output_directory(outdir)
    parent = outdir.absolute().parent
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.new-", dir=parent))
    try:
        write_files(staging)
        write_manifest(staging)
        _swap_into_place(staging, outdir.absolute())
    except OSError as error:
        raise AttncError(f"cannot write {outdir}: {error.strerror or error}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return outdir


def _swap_into_place(staging: Path, outdir: Path) -> None:
    """Renames ``staging`` to ``outdir``, moving whatever is there aside first; retries if another writer
    got in between (the last writer wins, and every directory it can win with is complete)."""
    for _ in range(100):
        try:
            os.rename(staging, outdir)
            return
        except OSError as error:
            try:  # one look at what is there: another writer may move it aside between two looks
                mode = os.lstat(outdir).st_mode
            except FileNotFoundError:
                continue  # a race emptied it; just try again
            if not stat.S_ISDIR(mode):
                raise AttncError(f"cannot write {outdir}: it exists and is not a directory") from error
        old = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=outdir.parent))
        try:
            os.rename(outdir, old / "artifact")
        except FileNotFoundError:
            pass  # another writer moved it first
        finally:
            shutil.rmtree(old, ignore_errors=True)
    raise AttncError(f"cannot write {outdir}: other writers kept replacing it")


def _atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """Calls ``write(temporary)`` on a temporary file beside ``path``, then renames it into place, so a reader
    sees the old file or the new one, never half of one; a failure is one AttncError naming ``path``."""
    path = Path(path)
    if path.is_dir():
        raise AttncError(f"cannot write {path}: it is a directory")
    if not path.absolute().parent.is_dir():
        raise AttncError(f"cannot write {path}: directory {path.absolute().parent} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.absolute().parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise AttncError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def atomic_write_tensors(tensors: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """``save_file`` into a temporary file beside ``path``, renamed into place (``attnc run -o``)."""
    _atomic_write(path, lambda temporary: save_file({name: t.detach().contiguous() for name, t in tensors.items()}, temporary))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Writes ``text`` (UTF-8) into a temporary file beside ``path``, renamed into place (``attnc export``)."""
    _atomic_write(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: str | Path) -> None:
    """Records the sha256 of every file of ``directory`` in its ``manifest.json``."""
    directory = Path(directory)
    files = {p.name: _sha256(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST_FILE}
    (directory / MANIFEST_FILE).write_text(json.dumps({"format": MANIFEST_FORMAT, "files": files}, indent=1) + "\n")


# --------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------


def verify_manifest(directory: str | Path) -> dict[str, str]:
    """Refuses a directory whose files are not the ones its manifest recorded; returns the checked sha256 of
    each file by name (empty without a manifest)."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        warnings.warn(
            f"{directory} has no {MANIFEST_FILE}: its files cannot be checked for consistency", AttncWarning, stacklevel=2
        )
        return {}
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise AttncError(f"cannot read {manifest_path}: not an attnc manifest") from None
    for name, expected in files.items():
        path = directory / str(name)
        if PurePosixPath(str(name)).name != name or not path.is_file():
            raise AttncError(f"{directory} is incomplete: {name} is in its manifest but missing")
        if _sha256(path) != expected:
            raise AttncError(
                f"{path} does not match {MANIFEST_FILE} (a mixed or modified artifact): compile into the directory again"
            )
    return {str(name): str(digest) for name, digest in files.items()}


def file_inside(directory: Path, name: str, what: str) -> Path:
    """``directory/name`` for a plain file name; absolute paths and ``..`` are refused."""
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name or len(pure.parts) != 1:
        raise AttncError(f"{what} must name a file inside {directory}, got '{name}'")
    return directory / name


def read_tensors(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; a missing, empty, corrupt or foreign file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise AttncError(f"no such file: {path} ({what})")
    if path.stat().st_size == 0:
        raise AttncError(f"cannot read {path} ({what}): the file is empty")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        detail = " ".join(str(error).split()) or type(error).__name__
        raise AttncError(f"cannot read {path} ({what}): not a valid safetensors file ({detail})") from None


def check_tensors(
    tensors: Mapping[str, torch.Tensor],
    expected: Mapping[str, TensorSpec],
    source: str,
    optional: frozenset[str] = frozenset(),
    extra_ok: bool = False,
) -> None:
    """Every expected tensor present with its shape and dtype; names the first one that is not."""
    for name, (shape, dtype) in expected.items():
        tensor = tensors.get(name)
        if tensor is None:
            if name in optional:
                continue
            have = ", ".join(sorted(tensors)[:8]) + (", ..." if len(tensors) > 8 else "")
            raise AttncError(f"{source} lacks tensor '{name}' (it has: {have or 'nothing'})")
        if tuple(tensor.shape) != tuple(shape):
            raise AttncError(f"{source}: tensor '{name}' has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
        if tensor.dtype != dtype:
            raise AttncError(f"{source}: tensor '{name}' has dtype {tensor.dtype}, expected {dtype}")
    if not extra_ok:
        extra = sorted(set(tensors) - set(expected))
        if extra:
            raise AttncError(f"{source} has tensors the program does not take: {', '.join(extra[:8])}")


def check_finite(tensors: Mapping[str, torch.Tensor], source: str, strict: bool = False) -> None:
    """Warns (or, ``strict``, fails) naming the first tensor that holds NaN or Inf."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor).all()):
            message = f"{source}: tensor '{name}' holds NaN or Inf"
            if strict:
                raise AttncError(message)
            warnings.warn(message, AttncWarning, stacklevel=2)
            return


# --------------------------------------------------------------------------------------------------------
# .pt2 archives
# --------------------------------------------------------------------------------------------------------

_PICKLED_PREFIXES = ("custom_obj", "opaque_obj")


def check_pt2(path: Path, trust_pickle: bool = False) -> None:
    """Refuses a ``.pt2`` that is not a zip archive, or whose loading would unpickle anything.

    ``torch.export.load`` unpickles weights and constants whose config says ``use_pickle``, custom and
    opaque objects, and sample inputs that a restricted load rejects; pickles can run code.
    """
    if path.stat().st_size == 0:
        raise AttncError(f"cannot read {path}: the file is empty")
    if not zipfile.is_zipfile(path):
        raise AttncError(f"cannot read {path}: not a .pt2 archive (not a zip file)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if not any(name.endswith("/models/model.json") or "/models/" in name for name in names):
                raise AttncError(f"cannot read {path}: not a torch.export archive (no models/ entry)")
            if trust_pickle:
                return
            for name in names:
                if name.endswith("_config.json") and "/data/" in name:
                    _check_payload_config(path, name, json.loads(archive.read(name)))
                elif "/data/sample_inputs/" in name:
                    _check_restricted_load(path, name, archive.read(name))
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as error:
        raise AttncError(f"cannot read {path}: corrupt .pt2 archive ({error})") from None


def _check_payload_config(path: Path, entry: str, config: dict) -> None:
    for fqn, payload in (config.get("config") or {}).items():
        pickled = bool(payload.get("use_pickle")) or str(payload.get("path_name", "")).startswith(_PICKLED_PREFIXES)
        if pickled:
            raise AttncError(
                f"refusing {path}: '{fqn}' ({entry}) is stored as a pickle, which can run code on load; "
                "pass --trust-pickle if you trust this file"
            )


def _check_restricted_load(path: Path, entry: str, data: bytes) -> None:
    if not data:
        return
    import io

    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception:
        raise AttncError(
            f"refusing {path}: entry '{entry}' needs unrestricted unpickling, which can run code on load; "
            "pass --trust-pickle if you trust this file"
        ) from None
