"""The on-disk chip store: a programmed state read back is the state programming makes, bit for bit, and a
store that does not fit is ignored; through the CLI, a new process that reads the store gives the same outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import targets.crossbar.programming as programming
from targets.crossbar.chip_store import ENVIRONMENT, ChipStore, state_key, store_directory
from targets.crossbar.device import CrossbarConfig, zero_tiles
from targets.crossbar.programming import ChipCache, program_fast, shortcut_applies
from tests.unit.test_crossbar_fast import same_tiles

CONFIGS = [
    CrossbarConfig(),
    CrossbarConfig(adc_range="max"),
    CrossbarConfig(signed_mapping="offset"),
    CrossbarConfig(bits_per_cell=3, weight_bits=7),
    CrossbarConfig(adc_bits=None, input_bits=None),
    CrossbarConfig(tile_rows=32, tile_cols=128),
]


def weights() -> list[torch.Tensor]:
    torch.manual_seed(0)
    sparse = torch.randn(128, 192)
    sparse[:64, :64] = 0.0  # an all-zero tile, skipped
    return [torch.randn(384, 384), torch.randn(100, 70) * 0.02, sparse]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"cfg{CONFIGS.index(c)}")
def test_a_state_read_from_the_store_is_the_programmed_state(cfg, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENVIRONMENT, str(tmp_path))
    applies = 0
    for weight in weights():
        applies += shortcut_applies(weight, cfg)  # only what the fast programming makes is stored
        skip = zero_tiles(weight, cfg.tile_rows, cfg.tile_cols)
        expected = program_fast(weight, cfg, torch.Generator().manual_seed(1), skip_tiles=skip)
        stored = ChipCache().program(weight, cfg, torch.Generator().manual_seed(1), skip)  # programs and stores
        with monkeypatch.context() as patch:
            if shortcut_applies(weight, cfg):
                patch.setattr(programming, "program_fast", lambda *a, **k: pytest.fail("programmed although stored"))
            read_back = ChipCache().program(weight.clone(), cfg, torch.Generator().manual_seed(1), skip)
        assert same_tiles(expected, stored) == [] and same_tiles(expected, read_back) == [], (cfg, tuple(weight.shape))
    assert len(list(tmp_path.glob("*.safetensors"))) == applies


def test_the_key_tells_values_configurations_and_skipped_tiles_apart() -> None:
    weight = torch.randn(64, 64)
    changed = weight.clone()
    changed[3, 5] = torch.nextafter(changed[3, 5], torch.tensor(10.0))
    keys = {
        state_key(weight, CrossbarConfig(), None),
        state_key(changed, CrossbarConfig(), None),
        state_key(weight, CrossbarConfig(adc_bits=8), None),
        state_key(weight, CrossbarConfig(), (True,)),
        state_key(weight.double(), CrossbarConfig(), None),
        state_key(weight.reshape(32, 128), CrossbarConfig(), None),
    }
    assert len(keys) == 6
    assert state_key(weight.clone(), CrossbarConfig(), None) == state_key(weight, CrossbarConfig(), None)


def _with_header(good: bytes, change) -> bytes:
    """``good`` (a stored state's file) with its header changed by ``change(header) -> header text``."""
    header_end = 8 + int.from_bytes(good[:8], "little")
    text = change(json.loads(good[8:header_end])).encode()
    return len(text).to_bytes(8, "little") + text + good[header_end:]


def _first_tensor(header: dict) -> dict:
    return next(entry for name, entry in header.items() if name != "__metadata__")


def _negative_dims(header: dict) -> str:
    entry = _first_tensor(header)
    entry["shape"] = [-entry["shape"][0], -entry["shape"][1]] if len(entry["shape"]) == 2 else [-1, -len(header)]
    return json.dumps(header)


def _misaligned(header: dict) -> str:
    return json.dumps(header) + " "  # the data then starts one byte later than a float allows


def _infinite_offset(header: dict) -> str:
    _first_tensor(header)["data_offsets"][1] = 1e400
    return json.dumps(header)  # Infinity


_HEADER_DAMAGE = (_negative_dims, _misaligned, _infinite_offset, lambda header: "[" * 100_000 + "]" * 100_000)


def test_a_damaged_or_foreign_file_is_ignored_and_replaced(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENVIRONMENT, str(tmp_path))
    weight, cfg = torch.randn(96, 80), CrossbarConfig()
    expected = program_fast(weight, cfg)
    path = tmp_path / f"{state_key(weight, cfg, None)}.safetensors"
    ChipStore(tmp_path).save(state_key(weight, cfg, None), expected)
    good = path.read_bytes()
    header_end = 8 + int.from_bytes(good[:8], "little")
    damaged = (
        b"not a safetensors file",
        b"\x00\x01",
        good[: len(good) - 4],  # truncated: the header promises bytes the file does not have
        good[:header_end].replace(b'"F32"', b'"I32"') + good[header_end:],  # tensors that are not floats
        good[:8] + b"[1, 2, 3]".ljust(header_end - 8) + good[header_end:],  # a header that is not a table
        good[:header_end].replace(b'"shape"', b'"shaep"') + good[header_end:],  # an entry without a shape
        *(_with_header(good, change) for change in _HEADER_DAMAGE),
    )
    for damage in (*damaged, None):
        if damage is None:  # a valid file whose tensors do not fit the matrix
            ChipStore(tmp_path).save(state_key(torch.randn(64, 64), cfg, None), program_fast(torch.randn(64, 64), cfg))
            next(p for p in tmp_path.glob("*.safetensors") if p != path).rename(path)
        else:
            path.write_bytes(damage)
        assert same_tiles(expected, ChipCache().program(weight, cfg, None, None)) == []
        assert path.read_bytes() == good  # written again

    path.unlink()
    ChipCache().program(weight, cfg, None, None)
    assert set(load_file(str(path))) == {"w_eff_t", "kappa", "scale"}


def test_random_programming_and_an_off_store_write_nothing(tmp_path, monkeypatch) -> None:
    weight = torch.randn(64, 64)
    monkeypatch.setenv(ENVIRONMENT, str(tmp_path))
    random_or_exact = (CrossbarConfig(program_noise=0.02), CrossbarConfig(read_noise=0.01, read_noise_pool=100),
                       CrossbarConfig(mode="exact"))
    for cfg in random_or_exact:
        ChipCache().program(weight, cfg, torch.Generator().manual_seed(0), None)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(ENVIRONMENT, "off")
    assert store_directory() is None
    ChipCache().program(weight, CrossbarConfig(), None, None)
    assert list(tmp_path.iterdir()) == []


def test_attnc_run_in_new_processes_reads_the_store_with_unchanged_outputs(tmp_path) -> None:
    attnc = str(Path(sys.executable).parent / "attnc")
    artifact, store = tmp_path / "xbar", tmp_path / "store"
    subprocess.run([attnc, "compile", "vit-digits", "-p", "attn-raise,lower-to-xbar", "-o", str(artifact)], check=True,
                   capture_output=True)

    def run(output: str, chips: str) -> dict[str, torch.Tensor]:
        env = {**os.environ, ENVIRONMENT: chips}
        subprocess.run([attnc, "run", str(artifact), "--seed", "2", "-o", str(tmp_path / output)], check=True,
                       capture_output=True, env=env)
        return load_file(str(tmp_path / output))

    programmed = run("first.safetensors", str(store))  # programs the chip and stores it
    files = sorted(store.glob("*.safetensors"))
    assert files, "nothing was stored"
    stamps = [p.stat().st_mtime_ns for p in files]
    from_store = run("second.safetensors", str(store))
    without = run("off.safetensors", "off")
    assert [p.stat().st_mtime_ns for p in sorted(store.glob("*.safetensors"))] == stamps  # read, not rewritten
    for name, value in without.items():
        assert torch.equal(programmed[name], value) and torch.equal(from_store[name], value)


def test_weights_read_from_an_artifact_are_named_by_its_manifest_not_hashed(tmp_path) -> None:
    from compiler.api import CompiledModel, compile_model
    from runtime.weight_origins import origin_of

    compile_model("vit-digits", "attn-raise,lower-to-xbar").save(tmp_path / "xbar")
    loaded = CompiledModel.load(tmp_path / "xbar")
    digest = json.loads((tmp_path / "xbar" / "manifest.json").read_text())["files"]["weights.safetensors"]
    name, weight = next((n, t) for n, t in loaded.weights.items() if t.dim() == 2)
    assert origin_of(weight) == f"{digest}:{name}"
    cfg = CrossbarConfig()
    by_origin, by_bytes = state_key(weight, cfg, None), state_key(weight.clone(), cfg, None)
    assert by_origin != by_bytes  # the loaded tensor is named, not hashed
    weight.mul_(1.0)  # an in-place change (even one that keeps the values) drops the record
    assert origin_of(weight) is None and state_key(weight, cfg, None) == by_bytes


def test_the_store_is_held_to_its_size_limit_oldest_written_first(tmp_path, monkeypatch) -> None:
    import targets.crossbar.chip_store as chip_store

    monkeypatch.setenv(ENVIRONMENT, str(tmp_path))
    cfg = CrossbarConfig()
    store = ChipStore(tmp_path)
    weights = [torch.randn(64, 64) for _ in range(4)]
    for age, weight in enumerate(weights[:3]):
        store.save(state_key(weight, cfg, None), program_fast(weight, cfg))
        path = tmp_path / f"{state_key(weight, cfg, None)}.safetensors"
        os.utime(path, ns=(10**18 + age * 10**9, 10**18 + age * 10**9))  # written in this order
    one = (tmp_path / f"{state_key(weights[0], cfg, None)}.safetensors").stat().st_size
    monkeypatch.setenv(chip_store.LIMIT_ENVIRONMENT, str(2 * one))
    monkeypatch.setattr(chip_store, "_LIMITED", set())
    newest = state_key(weights[3], cfg, None)
    store.save(newest, program_fast(weights[3], cfg))
    kept = {path.stem for path in tmp_path.glob("*.safetensors")}
    assert kept == {state_key(weights[2], cfg, None), newest}  # the two oldest went
    assert store.usage() == (2, 2 * one)


@pytest.mark.parametrize(
    ("text", "expected"), [("", 2 << 30), ("500M", 500 << 20), ("2g", 2 << 30), ("1.5GiB", 3 << 29), ("4096", 4096)]
)
def test_the_size_limit_reads_sizes(monkeypatch, text, expected) -> None:
    from targets.crossbar.chip_store import LIMIT_ENVIRONMENT, size_limit

    monkeypatch.setenv(LIMIT_ENVIRONMENT, text)
    assert size_limit() == expected


def test_attnc_cache_shows_and_clears_the_store(tmp_path, monkeypatch, capsys) -> None:
    from compiler.cli.main import main
    from targets.crossbar.chip_store import LIMIT_ENVIRONMENT

    monkeypatch.setenv(ENVIRONMENT, str(tmp_path))
    cfg = CrossbarConfig()
    for _ in range(3):
        weight = torch.randn(64, 64)
        ChipStore(tmp_path).save(state_key(weight, cfg, None), program_fast(weight, cfg))
    (tmp_path / ".left-by-an-interrupted-write.tmp").write_bytes(b"")
    assert main(["cache"]) == 0
    shown = capsys.readouterr().out
    assert f"crossbar: programmed crossbar matrices in {tmp_path}\n  3 entries" in shown
    assert "of a 2048 MiB limit" in shown
    monkeypatch.setenv(LIMIT_ENVIRONMENT, "lots")
    assert main(["cache"]) == 0
    shown, warned = capsys.readouterr()
    assert "3 entries" in shown and "no limit" in shown
    assert warned.strip() == f"attnc: warning: {LIMIT_ENVIRONMENT} must be a size such as 500M or 2G, got 'lots'"
    assert main(["cache", "--clear"]) == 0
    assert "crossbar: removed 3 programmed crossbar matrices" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []

def test_a_size_limit_that_is_not_a_size_warns_and_stores_unlimited(tmp_path, monkeypatch) -> None:
    import targets.crossbar.chip_store as chip_store
    from dialects.diagnostics import AttncWarning

    monkeypatch.setenv(ENVIRONMENT, str(tmp_path))
    monkeypatch.setenv(chip_store.LIMIT_ENVIRONMENT, "lots")
    monkeypatch.setattr(chip_store, "_LIMITED", set())
    weight, cfg = torch.randn(64, 64), CrossbarConfig()
    with pytest.warns(AttncWarning, match="ATTNC_CHIP_CACHE_MAX must be a size"):
        state = ChipCache().program(weight, cfg, None, None)
    assert same_tiles(state, program_fast(weight, cfg)) == []
    assert [p.stem for p in tmp_path.glob("*.safetensors")] == [state_key(weight, cfg, None)]
