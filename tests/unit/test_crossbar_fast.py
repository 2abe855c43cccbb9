"""The crossbar simulator's fast paths give the original implementation's outputs bit for bit, and the cost report.

The original implementation is ``device.program``/``device.write`` (unchanged): the fast programming and the
fast K/V writes are checked against them field by field (values, sign of zero, memory layout), and whole models
are run both ways with the same seed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses

import pytest
import torch

from compiler.api import CompiledModel, apply_passes, parse_pipeline
from compiler.frontend.fx_importer import import_exported_program
from targets.crossbar import device, simulator
from targets.crossbar.cost import matrix_costs, totals, used_slices
from targets.crossbar.device import ClipFormer, CrossbarConfig
from targets.crossbar.programming import CHIP_CACHE, program_fast, shortcut_applies, write_fast, write_shortcut_applies
from targets.crossbar.simulator import device_config

CONFIGS = [
    CrossbarConfig(),
    CrossbarConfig(adc_range="max"),
    CrossbarConfig(signed_mapping="offset"),
    CrossbarConfig(bits_per_cell=1),
    CrossbarConfig(bits_per_cell=3, weight_bits=7),
    CrossbarConfig(adc_bits=None, input_bits=None),
    CrossbarConfig(tile_rows=32, tile_cols=128),
    CrossbarConfig(gamma=3.0, sigma=0.3),
    CrossbarConfig(read_noise=0.02, read_noise_pool=1000),
    CrossbarConfig(program_noise=0.02),  # not a shortcut: the fallback must be device.program itself
    CrossbarConfig(mode="exact"),
]


def same_tiles(a: device.CrossbarTiles, b: device.CrossbarTiles) -> list[str]:
    """Fields that differ in value, sign of zero or memory layout."""
    differ = []
    for item in dataclasses.fields(a):
        x, y = getattr(a, item.name), getattr(b, item.name)
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            same = x.shape == y.shape and x.stride() == y.stride() and torch.equal(x, y)
            if not (same and torch.equal(x.signbit(), y.signbit())):
                differ.append(item.name)
        elif isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor) or x != y:
            differ.append(item.name)
    return differ


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"cfg{CONFIGS.index(c)}")
def test_fast_programming_is_device_program_bit_for_bit(cfg: CrossbarConfig) -> None:
    torch.manual_seed(0)
    sparse = torch.randn(100, 70)
    sparse[sparse.abs() < 0.5] = 0.0
    for weight in (torch.randn(384, 384), torch.randn(192, 96) * 0.02, sparse, torch.zeros(64, 64), -torch.rand(10, 300) * 1e-3):
        expected = device.program(weight, cfg, torch.Generator().manual_seed(1))
        got = program_fast(weight, cfg, torch.Generator().manual_seed(1))
        assert same_tiles(expected, got) == [], (cfg, tuple(weight.shape))
    # 3-bit digits do not survive the siemens round trip exactly (7 reads back as 6.9999995): no shortcut there.
    shortcut = cfg.program_noise == 0 and cfg.mode == "fast" and cfg.bits_per_cell != 3
    assert shortcut_applies(torch.randn(4, 4), cfg) == shortcut  # the fast path is exercised, not only the fallback


def test_fast_paths_in_several_threads_match_one_thread() -> None:
    """Each thread keeps its own scratch buffers: concurrent programming and writes give the sequential tiles."""
    probe = torch.randn(4, 4)
    cfg = next(c for c in CONFIGS if shortcut_applies(probe, c) and write_shortcut_applies(probe, c, None))
    torch.manual_seed(2)
    weights = [torch.randn(384, 384), torch.randn(192, 96), torch.randn(2, 3, 21, 32), torch.randn(2, 3, 32, 21)]

    def work(index: int):
        weight = weights[index % len(weights)]
        run = program_fast if weight.dim() == 2 else write_fast
        return [run(weight, cfg, torch.Generator().manual_seed(index)) for _ in range(3)]

    expected = [work(i) for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(work, range(8)))
    for want, have in zip(expected, got, strict=True):
        for a, b in zip(want, have, strict=True):
            assert same_tiles(a, b) == []


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"cfg{CONFIGS.index(c)}")
def test_fast_writes_are_device_write_bit_for_bit(cfg: CrossbarConfig) -> None:
    torch.manual_seed(1)
    clips = [None, ClipFormer(2.0, 0.25), ClipFormer(0.0, 1.0), ClipFormer(2.0, 0.25, at="per_slice")]
    for matrix in (torch.randn(2, 3, 21, 32), torch.randn(2, 3, 32, 21), torch.randn(2, 64, 128), torch.randn(70, 100)):
        for clip in clips if cfg.signed_mapping == "differential" else [None]:
            expected = device.write(matrix, cfg, torch.Generator().manual_seed(5), clip=clip)
            got = write_fast(matrix, cfg, torch.Generator().manual_seed(5), clip=clip)
            assert same_tiles(expected, got) == [], (cfg, tuple(matrix.shape), clip)
    shortcut = cfg.signed_mapping == "differential" and cfg.mode == "fast"
    assert write_shortcut_applies(torch.randn(2, 4, 4), cfg, None) == shortcut


class _Original:
    """The simulator with ``device.program``/``device.write`` in place of its fast paths."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        class Direct:
            @staticmethod
            def program(weight, cfg, gen, skip):
                return device.program(weight.detach(), cfg, gen, skip_tiles=skip)

        monkeypatch.setattr(simulator, "CHIP_CACHE", Direct())
        monkeypatch.setattr(simulator, "write_fast", lambda m, cfg, gen, clip=None: device.write(m.detach(), cfg, gen, clip=clip))


def lowered(exported, name: str, pipeline: str) -> CompiledModel:
    spec, program, _ = exported(name)
    imported = import_exported_program(program)
    apply_passes(imported.module, parse_pipeline(pipeline))
    return CompiledModel(imported.module, imported.weights, spec.inputs, imported.input_names)


@pytest.mark.parametrize(
    "lowering",
    ["lower-to-xbar", "kv-clip{alpha=2.0 beta=0.25},lower-to-xbar", "lower-to-xbar{adc-range=max read-noise=0.01}"],
)
def test_minilm_on_the_crossbar_is_bit_identical_to_the_original_simulator(exported, monkeypatch, lowering) -> None:
    compiled = lowered(exported, "minilm", f"attn-raise,{lowering}")
    CHIP_CACHE.clear()
    cold = compiled.run(seed=3)
    warm = compiled.run(seed=3)  # programmed tiles from the chip cache
    with monkeypatch.context() as patch:
        _Original(patch)
        original = compiled.run(seed=3)
        other_seed = compiled.run(seed=4)
    for runs in (cold, warm):
        assert all(torch.equal(a, b) and torch.equal(a.signbit(), b.signbit()) for a, b in zip(runs, original, strict=True))
    assert not torch.equal(original[0], other_seed[0])  # the seed matters: the comparison is not vacuous


def test_the_chip_cache_programs_once_per_weight_and_again_after_a_change(monkeypatch) -> None:
    import targets.crossbar.programming as programming

    calls = []

    monkeypatch.setattr(programming, "program_fast", lambda *a, **k: calls.append(1) or device.program(a[0].detach(), a[1], a[2]))
    cache = programming.ChipCache()
    weight = torch.randn(8, 8)
    cfg = CrossbarConfig()
    first = cache.program(weight, cfg, None, None)
    assert cache.program(weight, cfg, None, None) is first and len(calls) == 1
    with torch.no_grad():
        weight.mul_(2)  # an in-place change bumps the tensor's version: programmed again
    assert cache.program(weight, cfg, None, None) is not first and len(calls) == 2
    cache.program(weight, dataclasses.replace(cfg, gamma=1.0), None, None)  # another device: programmed again
    assert len(calls) == 3
    noisy = dataclasses.replace(cfg, program_noise=0.01)  # random programming is never cached
    cache.program(weight, noisy, torch.Generator(), None)
    cache.program(weight, noisy, torch.Generator(), None)
    assert len(calls) == 5


# --------------------------------------------------------------------------------------------------------
# Cost report
# --------------------------------------------------------------------------------------------------------


def test_clipformer_ceiling_leaves_the_top_slice_unused() -> None:
    cfg = CrossbarConfig()  # 8-bit values in four 2-bit slices, g_max/g_min = 100
    assert used_slices(cfg, None) == 4
    assert used_slices(cfg, (2.0, 0.25)) == 3  # level <= 62 < 64: the top slice is always zero
    assert used_slices(cfg, (0.0, 1.0)) == 4
    assert used_slices(cfg, (2.0, 0.05)) == 2  # level <= 11 < 16


def test_cost_counts_of_a_small_attention(exported) -> None:
    compiled = lowered(exported, "mha", "attn-raise,kv-clip{alpha=2.0 beta=0.25},lower-to-xbar")
    cfg = device_config(compiled.module.attributes["xbar.device"])
    costs = matrix_costs(compiled.module, cfg)
    writes = [c for c in costs if c.kind == "dynamic"]
    assert len(writes) == 2 and all(c.attention and c.used_slices == 3 for c in writes)
    from dialects import xbar

    for op, cost in zip((o for o in compiled.module.walk() if isinstance(o, (xbar.ProgramOp, xbar.WriteOp))), costs, strict=True):
        *batch, n_out, n_in = op.result.type.get_shape()
        rows, cols = op.result.type.grid()
        matrices = 1
        for d in batch:
            matrices *= d
        assert cost.arrays == matrices * rows * cols * 2 * cost.used_slices
        assert cost.adcs == matrices * rows * cols * cost.used_slices
        if cost.kind == "dynamic":
            assert cost.cell_writes == matrices * n_in * n_out * 2 * 3
        mvm_rows = sum(torch.Size(use.operation.input.type.get_shape()[:-1]).numel() for use in op.result.uses)
        assert cost.adc_conversions == mvm_rows * 8 * rows * cost.used_slices * n_out  # 8 bit-serial input cycles
    model, attention = totals(costs), totals(costs, attention_only=True)
    assert 0 < attention["energy nJ per inference"] <= model["energy nJ per inference"]


def test_attnc_run_report_prints_the_crossbar_cost_and_the_clipformer_saving(tmp_path, capsys) -> None:
    from compiler.cli.main import main

    out = tmp_path / "out"
    assert main(["compile", "mha", "-p", "attn-raise,kv-clip{alpha=2.0 beta=0.25},lower-to-xbar", "-o", str(out)]) == 0
    assert main(["run", str(out), "--report"]) == 0
    printed = capsys.readouterr().out
    assert "crossbar cost (per inference" in printed and "attention: arrays" in printed
    saving = printed.split("ClipFormer's always-zero slices save ")[1]
    energy, area = float(saving.split(" %")[0]), float(saving.split("energy and ")[1].split(" %")[0])
    assert 0 < energy <= 25 and 0 < area <= 25  # at most one of four slices of every attention array


def test_the_slices_added_in_order_are_the_einsum_of_the_original() -> None:
    """Writes add the slices one by one where a probe shows that is the einsum's order on this machine (so on
    the default 4 slices), and run the einsum itself elsewhere (8 one-bit slices are summed in another order)."""
    from targets.crossbar.programming import _recombine, _sequential_recombination_is_einsum

    assert _sequential_recombination_is_einsum(CrossbarConfig(), torch.float32)
    for cfg in (CrossbarConfig(), CrossbarConfig(bits_per_cell=1), CrossbarConfig(bits_per_cell=3, weight_bits=7)):
        for dtype in (torch.float32, torch.float64):
            torch.manual_seed(cfg.bits_per_cell)
            shape = (4, 12, cfg.n_slices, 21, 64)
            per_slice = torch.randn(shape, dtype=dtype) * torch.rand(shape, dtype=dtype) ** 3
            sig = torch.tensor(cfg.slice_significance(), dtype=dtype)
            expected = torch.einsum("s,...sio->...io", sig, per_slice).contiguous()
            got = _recombine(per_slice, cfg)
            assert got.stride() == expected.stride() and torch.equal(got, expected), (cfg, dtype)



def test_the_write_tile_energies_set_the_outputs_bits(monkeypatch) -> None:
    """The per-slice tile energies a K/V write sums are the dynamic ADC's step factor (``adc_kappa``), not a
    report figure: one ulp more in each changes the step and so the bits of the products with the written matrix.
    This is why the writes keep ``device._build_tiles``' exact reduction on its padded layout."""
    from targets.crossbar import programming

    cfg = CrossbarConfig()
    torch.manual_seed(3)
    matrix, rows = torch.randn(2, 3, 21, 32), torch.randn(2, 3, 5, 32)
    state = write_fast(matrix, cfg, torch.Generator().manual_seed(5))
    original = programming._fast_tiles

    def one_ulp_more(w_eff_t, n_out, slice_energy, scale, cfg, gen):
        more = torch.nextafter(slice_energy, torch.full_like(slice_energy, float("inf")))
        return original(w_eff_t, n_out, more, scale, cfg, gen)

    monkeypatch.setattr(programming, "_fast_tiles", one_ulp_more)
    nudged = write_fast(matrix, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(state.w_eff_t, nudged.w_eff_t)  # the same written matrix and noise
    assert not torch.equal(state.adc_kappa, nudged.adc_kappa)
    y, y_nudged = device.mvm(state, rows), device.mvm(nudged, rows)
    assert not torch.equal(y, y_nudged)
