"""Range policies and the clip domain of the crossbar's K/V writes (targets/crossbar/kv_ranges.py)."""

from __future__ import annotations

import pytest
import torch

from compiler.api import CompiledModel, apply_passes, parse_pipeline
from compiler.frontend.fx_importer import import_exported_program
from dialects import xbar
from runtime.clip_kernels import matrix_max
from runtime.executor import Executor
from targets.crossbar.device import CrossbarConfig, conductances_to_values, map_to_conductances
from targets.crossbar.kv_ranges import KvPolicy, KvRangeFunctions, calibrated_ranges
from targets.crossbar.simulator import XbarFunctions, device_config

IDEAL = "lower-to-xbar{weight-bits=16 input-bits=0 adc-bits=0 gamma=0.0}"
NOISY = "lower-to-xbar{gamma=5.0 sigma=0.3}"


def lowered(exported, pipeline: str) -> CompiledModel:
    spec, program, _ = exported("vit-tiny")
    imported = import_exported_program(program)
    apply_passes(imported.module, parse_pipeline(pipeline))
    return CompiledModel(imported.module, imported.weights, spec.inputs, imported.input_names)


def run(compiled: CompiledModel, functions: XbarFunctions) -> torch.Tensor:
    with torch.no_grad():
        outputs = Executor(compiled.module, compiled.weights, extra_functions=[functions])(*compiled.inputs)
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def functions_for(compiled: CompiledModel, seed: int = 0, policy: KvPolicy | None = None, record: bool = False):
    return KvRangeFunctions(device_config(compiled.module.attributes["xbar.device"]), seed, policy, record)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).norm() / ref.norm())


def recorded(compiled: CompiledModel) -> dict[str, list[torch.Tensor]]:
    recorder = functions_for(compiled, record=True)
    run(compiled, recorder)
    return recorder.samples


def test_a_given_scale_saturates_the_mapping() -> None:
    cfg = CrossbarConfig(weight_bits=16, gamma=0.0)
    x = torch.randn(2, 3, 10, 8, generator=torch.Generator().manual_seed(0))
    limit = torch.full((3, 1, 1), 0.5)
    mapped = map_to_conductances(x, cfg, scale=limit)
    back = conductances_to_values(mapped.g, mapped.scale, cfg)
    assert torch.allclose(back, x.clamp(-0.5, 0.5), atol=1e-4)
    unscaled = map_to_conductances(x, cfg)
    assert torch.equal(unscaled.scale, matrix_max(x))


def test_matrix_policy_is_the_simulator_bit_for_bit(exported) -> None:
    compiled = lowered(exported, f"attn-raise,kv-clip{{alpha=2.0 beta=0.5}},{NOISY}")
    plain = run(compiled, XbarFunctions(device_config(compiled.module.attributes["xbar.device"]), 7))
    assert torch.equal(run(compiled, functions_for(compiled, 7)), plain)


@pytest.mark.parametrize("policy", ["token", "global", "head"])
def test_every_range_policy_is_exact_on_an_ideal_crossbar(exported, policy: str) -> None:
    reference = lowered(exported, "attn-raise")
    compiled = lowered(exported, f"attn-raise,{IDEAL}")
    ranges = calibrated_ranges(recorded(compiled), policy, 100.0) if policy != "token" else {}
    out = run(compiled, functions_for(compiled, 0, KvPolicy(policy, "conductance", ranges)))
    assert relative_error(out, reference.run()[0]) < 1e-3


def test_calibrated_ranges_global_is_one_value_per_site_head_one_per_head(exported) -> None:
    samples = recorded(lowered(exported, f"attn-raise,{IDEAL}"))
    depth = 4  # vit-tiny: one K and one V write per block, named in execution order
    assert list(samples) == [f"write{2 * i}_matmul_k_tiles" if j == 0 else f"write{2 * i + 1}_matmul_v_tiles"
                             for i in range(depth) for j in range(2)]
    glob, head = calibrated_ranges(samples, "global", 99.0), calibrated_ranges(samples, "head", 99.0)
    for site in samples:
        assert glob[site].shape == head[site].shape == (4,)
        assert torch.all(glob[site] == glob[site][0])
        assert not torch.all(head[site] == head[site][0])
        assert float(glob[site][0]) <= float(torch.cat(samples[site], dim=-1).max())
    with pytest.raises(ValueError, match="calibrated"):
        calibrated_ranges(samples, "token", 99.0)


def test_a_small_calibrated_range_saturates_and_costs_accuracy(exported) -> None:
    reference = lowered(exported, "attn-raise").run()[0]
    compiled = lowered(exported, f"attn-raise,{IDEAL}")
    tight = calibrated_ranges(recorded(compiled), "global", 50.0)  # half of K and V beyond the range
    out = run(compiled, functions_for(compiled, 0, KvPolicy("global", "conductance", tight)))
    assert relative_error(out, reference) > 1e-2


def test_value_domain_equals_conductance_domain_without_noise_and_differs_with_it(exported) -> None:
    clip = "kv-clip{alpha=2.0 beta=0.25}"
    ideal = lowered(exported, f"attn-raise,{clip},{IDEAL}")
    assert relative_error(run(ideal, functions_for(ideal, 0, KvPolicy("matrix", "value"))),
                          run(ideal, functions_for(ideal, 0, KvPolicy("matrix", "conductance")))) < 1e-3
    noisy = lowered(exported, f"attn-raise,{clip},lower-to-xbar{{weight-bits=16 input-bits=0 adc-bits=0 gamma=5.0 sigma=0.03}}")
    conductance = run(noisy, functions_for(noisy, 1, KvPolicy("matrix", "conductance")))
    value = run(noisy, functions_for(noisy, 1, KvPolicy("matrix", "value")))
    assert bool(torch.isfinite(value).all()) and relative_error(value, conductance) > 1e-2  # other cells, other noise


def test_bad_policies_and_missing_ranges_are_errors(exported) -> None:
    with pytest.raises(ValueError, match="range policy"):
        KvPolicy("percentile")
    with pytest.raises(ValueError, match="clip domain"):
        KvPolicy("matrix", "current")
    compiled = lowered(exported, f"attn-raise,{IDEAL}")
    with pytest.raises(Exception, match="no calibrated range"):
        run(compiled, functions_for(compiled, 0, KvPolicy("global", "conductance", {})))


# ---- range policies as a lowering option: lower-to-xbar{kv-range=... clip-domain=...} ----

CLIP = "kv-clip{alpha=2.0 beta=0.5}"


def through_the_ir(exported, options: str, seed: int) -> tuple[CompiledModel, torch.Tensor]:
    """Lowered with the policy as a pass option, the driver's calibration step on the example inputs, saved as
    text and parsed back, and run by the target's own runtime functions."""
    from compiler.api import parse_module, print_module
    from fitting.steps import run_pending_steps

    compiled = lowered(exported, f"attn-raise,{CLIP},lower-to-xbar{{gamma=5.0 sigma=0.3 {options}}}")
    run_pending_steps(compiled.module, compiled.weights, lambda: [compiled.inputs])
    reloaded = CompiledModel(parse_module(print_module(compiled.module)), compiled.weights, compiled.inputs,
                             compiled.input_names)
    with torch.no_grad():
        return reloaded, reloaded.run(seed=seed)[0]


@pytest.mark.parametrize("policy", ["token", "head", "global"])
def test_a_range_policy_lowered_into_the_ir_runs_as_the_simulator_option(exported, policy: str) -> None:
    """The lowering option gives the simulator option's outputs bit for bit, the calibrated ranges included
    (recorded as the ClipFormer sweeps do: a noise-free, ideal-converter lowering without clipping)."""
    reloaded, out = through_the_ir(exported, f"kv-range={policy} clip-domain=value", 3)
    writes = [op for op in reloaded.module.walk() if isinstance(op, xbar.WriteOp)]
    assert writes and all(op.range_policy == policy and op.clip_domain is not None for op in writes)
    assert all((op.kv_scale is not None) == (policy != "token") for op in writes)
    ranges = {}
    if policy != "token":
        ranges = calibrated_ranges(recorded(lowered(exported, "attn-raise,lower-to-xbar{gamma=0.0 adc-bits=0 input-bits=0}")),
                                   policy, 99.9)
    simulator = lowered(exported, f"attn-raise,{CLIP},{NOISY}")
    expected = run(simulator, functions_for(simulator, 3, KvPolicy(policy, "value", ranges)))
    assert torch.equal(out, expected)
    plain = run(simulator, XbarFunctions(device_config(simulator.module.attributes["xbar.device"]), 3))
    assert not torch.equal(out, plain)  # the policy did act


def test_the_default_lowering_carries_no_range_attributes(exported) -> None:
    compiled = lowered(exported, f"attn-raise,{CLIP},{NOISY}")
    for op in compiled.module.walk():
        if isinstance(op, xbar.WriteOp):
            assert (op.kv_range, op.kv_scale, op.kv_percentile, op.clip_domain) == (None, None, None, None)
