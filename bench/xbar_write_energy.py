"""What the K/V writes' per-slice tile energies cost, and whether they may be summed in another order.

The tile energies a write sums (squares of each slice's noisy digits per 64 x 64 tile) are the fast mode's
dynamic-ADC step factor (``adc_kappa``), which every product with the written matrix uses. Two measurements:

* the share of a write's CPU time that goes to the energy ops (torch profiler, self CPU time per op, on MiniLM's
  K and Vᵀ shapes, 4 x 12 heads x 21 tokens x 32), split into what computes the energies and the rest;
* MiniLM (4 x 21 tokens, default device, seed 0) run twice on the crossbar, the second time with every write's
  tile energies one ulp larger: how many output elements change.

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/xbar_write_energy.py``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
torch.set_num_threads(1)

from compiler.api import CompiledModel, apply_passes, compile_model, parse_pipeline  # noqa: E402
from targets.crossbar import programming  # noqa: E402
from targets.crossbar.chip_store import ENVIRONMENT  # noqa: E402
from targets.crossbar.device import CrossbarConfig  # noqa: E402

WRITES = 100


def write_profile() -> None:
    from torch.profiler import ProfilerActivity, profile

    cfg = CrossbarConfig()
    gen = torch.Generator().manual_seed(0)
    for shape in ((4, 12, 21, 32), (4, 12, 32, 21)):
        matrix = torch.randn(shape)
        for _ in range(20):
            programming.write_fast(matrix, cfg, gen)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(WRITES):
                programming.write_fast(matrix, cfg, gen)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        by_name = {e.key: e.self_cpu_time_total for e in events}
        print(f"write {shape}: {total / WRITES / 1e3:.3f} ms of self CPU time a write")
        for name in ("aten::normal_", "aten::sum", "aten::pow", "aten::einsum", "aten::sqrt", "aten::where"):
            print(f"  {name:16s} {by_name.get(name, 0) / WRITES / 1e3:.3f} ms  {100 * by_name.get(name, 0) / total:5.1f} %")
        # aten::sum and aten::pow are the tile energies and ||W_eff||² (two of each a write), plus sig**2;
        # einsum/sqrt/where turn them into the ADC factor.
        energy = sum(by_name.get(n, 0) for n in ("aten::sum", "aten::pow", "aten::einsum", "aten::sqrt", "aten::where"))
        print(f"  energy ops together: {100 * energy / total:.1f} % of the write")


def nudged_energies_change_outputs() -> None:
    os.environ[ENVIRONMENT] = "off"
    base = compile_model("minilm", "attn-raise")
    module = base.module.clone()
    apply_passes(module, parse_pipeline("lower-to-xbar"))
    xbar = CompiledModel(module, base.weights, base.inputs, base.input_names)

    def run() -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return xbar.executor(0)(*xbar.inputs)

    expected = run()
    original = programming._fast_tiles

    def one_ulp_more(w_eff_t, n_out, slice_energy, scale, cfg, gen):
        if w_eff_t.dim() > 2:  # the batched K/V writes only, not the programmed weights
            slice_energy = torch.nextafter(slice_energy, torch.full_like(slice_energy, float("inf")))
        return original(w_eff_t, n_out, slice_energy, scale, cfg, gen)

    programming._fast_tiles = one_ulp_more
    try:
        got = run()
    finally:
        programming._fast_tiles = original
    for index, (a, b) in enumerate(zip(expected, got, strict=True)):
        differ = int((a != b).sum())
        print(f"MiniLM output {index}: {differ} of {a.numel()} elements change, max |diff| {float((a - b).abs().max()):.3g}")


if __name__ == "__main__":
    write_profile()
    nudged_energies_change_outputs()
