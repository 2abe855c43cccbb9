"""Calibrated ADC ranges (``lower-to-xbar{adc-range=calibrated}``, fitting/adc_ranges.py) through the driver."""

from __future__ import annotations

import pytest
import torch

from compiler.api import CompiledModel, compile_model
from dialects import xbar
from targets.crossbar.simulator import adc_full_scale

LOWER = "lower-to-xbar{{adc-range={} adc-bits=8 gamma=0.0}}"


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).norm() / ref.norm())


def arrays(compiled: CompiledModel) -> list[xbar.ProgramOp | xbar.WriteOp]:
    return [op for op in compiled.module.walk() if isinstance(op, (xbar.ProgramOp, xbar.WriteOp))]


@pytest.fixture(scope="module")
def calibrated() -> CompiledModel:
    return compile_model("vit-tiny", f"attn-raise,{LOWER.format('calibrated')}")


def test_every_array_gets_a_full_scale_within_the_physical_maximum(calibrated) -> None:
    ops = arrays(calibrated)
    assert ops and all(op.adc_full_scale is not None for op in ops)
    assert any(isinstance(op, xbar.WriteOp) for op in ops)  # K and V too, not only the static weights
    for op in ops:
        full_scale = adc_full_scale(op)
        assert full_scale is not None and float(full_scale.max()) > 0
        # at most every row of a 64-row tile at the top input level (127) and the top cell digit (3)
        assert float(full_scale.max()) <= 64 * 127 * 3
    assert any("calibrated the ADC ranges of" in r.message for r in calibrated.remarks)


def test_a_calibrated_range_is_close_to_auto_ranging_and_far_better_than_the_worst_case(calibrated) -> None:
    reference = compile_model("vit-tiny", "attn-raise").run()[0]
    errors = {"calibrated": relative_error(calibrated.run()[0], reference)}
    for policy in ("dynamic", "max"):
        errors[policy] = relative_error(compile_model("vit-tiny", f"attn-raise,{LOWER.format(policy)}").run()[0], reference)
    assert errors["calibrated"] < 0.5 * errors["max"]
    assert errors["calibrated"] < 3 * errors["dynamic"]


def test_the_ranges_come_from_the_calibration_inputs() -> None:
    spec_inputs = compile_model("vit-tiny", "attn-raise").inputs
    tiny = [tuple(torch.zeros_like(x).index_fill_(-1, torch.tensor([0]), 1.0) for x in spec_inputs)]  # one bright pixel column
    narrow = compile_model("vit-tiny", f"attn-raise,{LOWER.format('calibrated')}", calibration=tiny)
    wide = compile_model("vit-tiny", f"attn-raise,{LOWER.format('calibrated')}")
    first_narrow, first_wide = adc_full_scale(arrays(narrow)[0]), adc_full_scale(arrays(wide)[0])
    assert first_narrow is not None and first_wide is not None and not torch.equal(first_narrow, first_wide)
    assert not torch.equal(narrow.run()[0], wide.run()[0])


def test_the_ranges_survive_save_and_load(calibrated, tmp_path) -> None:
    calibrated.save(tmp_path / "model")
    loaded = CompiledModel.load(tmp_path / "model")
    assert all(op.adc_full_scale is not None for op in arrays(loaded))
    assert torch.equal(loaded.run(seed=2)[0], calibrated.run(seed=2)[0])


def test_an_ideal_adc_needs_no_range() -> None:
    compiled = compile_model("vit-tiny", "attn-raise,lower-to-xbar{adc-range=calibrated adc-bits=0 gamma=0.0}")
    assert all(op.adc_full_scale is None for op in arrays(compiled))
    assert not any("calibrated the ADC ranges" in r.message for r in compiled.remarks)
