"""The TinyCL target: integer arithmetic bit-exact against apytypes, the lowering run through the executor,
the fixed-point nonlinearities within their documented error, vit-digits at 16/8, the cost model, and the CLI
flow (compile, then run --report and verify in a new process)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from compiler.api import ModelSpec, compile_model, parse_module
from compiler.models import BUNDLED, digits_split
from dialects import tinycl
from runtime.executor import Executor
from targets.registry import target_of
from targets.tinycl import fixed_point as fp
from targets.tinycl.cost import ArrayConfig, layer_costs, memory_plan, tile_loads
from targets.tinycl.lowering import LowerToTinyclPass
from targets.tinycl.runtime import TinyclFunctions
from targets.tinycl.target import TINYCL

apy = pytest.importorskip("apytypes")

QUANTIZATION = {"nearest-even": apy.QuantizationMode.TIES_EVEN, "truncate": apy.QuantizationMode.TO_NEG}
OVERFLOW = {"saturate": apy.OverflowMode.SAT, "wrap": apy.OverflowMode.WRAP}
MODES = [(r, o) for r in QUANTIZATION for o in OVERFLOW]


def apy_codes(array) -> np.ndarray:
    """The signed integer codes of an APyFixedArray (its values times 2^frac, exact below 53 bits)."""
    return np.rint(np.asarray(array.to_numpy(), dtype=np.float64) * 2.0**array.frac_bits).astype(np.int64)


def apy_from_codes(codes: torch.Tensor, total: int, frac: int):
    return apy.APyFixedArray.from_float(codes.double().numpy() * 2.0**-frac, bits=total, frac_bits=frac)


def apy_quantize(values: torch.Tensor, total: int, frac: int, rounding: str, overflow: str) -> np.ndarray:
    exact = apy.APyFixedArray.from_float(values.double().numpy(), bits=64, frac_bits=40)  # f32 values are exact here
    return apy_codes(exact.cast(bits=total, frac_bits=frac, quantization=QUANTIZATION[rounding], overflow=OVERFLOW[overflow]))


def golden_values() -> torch.Tensor:
    """Ties (x.5 steps), both signs, values that overflow 8 bits, and random values."""
    ties = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.25, -0.75]) / 16
    extremes = torch.tensor([7.99, 8.0, -8.0, -8.1, 100.0, -100.0, 15.97, -15.97])
    return torch.cat([ties, extremes, torch.randn(200, generator=torch.Generator().manual_seed(0)) * 6])


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_quantize_is_bit_exact_against_apytypes(rounding, overflow):
    values = golden_values()
    for total, frac in ((8, 4), (12, 6), (16, 8), (6, 0)):
        ours = fp.quantize(values, (total, frac), rounding, overflow).numpy()
        np.testing.assert_array_equal(ours, apy_quantize(values, total, frac, rounding, overflow), err_msg=f"{total}/{frac}")


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_requantize_is_bit_exact_against_apytypes(rounding, overflow):
    codes = torch.randint(-(2**19), 2**19, (500,), generator=torch.Generator().manual_seed(1))
    codes[:6] = torch.tensor([8, 24, -8, -24, 2**19 - 1, -(2**19)])  # ties at a 4-bit shift, the extremes
    source = apy_from_codes(codes, 20, 8)
    for total, frac in ((8, 4), (12, 6), (16, 8), (10, 9)):
        ours = fp.requantize(codes, (20, 8), (total, frac), rounding, overflow).numpy()
        cast = source.cast(bits=total, frac_bits=frac, quantization=QUANTIZATION[rounding], overflow=OVERFLOW[overflow])
        theirs = apy_codes(cast)
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{total}/{frac}")


def test_stochastic_rounding_is_seeded_unbiased_and_between_neighbours():
    codes = torch.full((20000,), 0b1011, dtype=torch.int64)  # 11/4 = 2.75 after a 2-bit shift
    draw = [fp.shift_right(codes, 2, "stochastic", torch.Generator().manual_seed(seed)) for seed in (5, 5, 6)]
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])
    assert set(draw[0].unique().tolist()) == {2, 3}
    assert abs(draw[0].double().mean().item() - 2.75) < 0.02
    floats = fp.quantize(torch.full((20000,), 0.3), (16, 2), "stochastic", "saturate", torch.Generator().manual_seed(0))
    assert set(floats.unique().tolist()) == {1, 2} and abs(floats.double().mean().item() / 4 - 0.3) < 0.005


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_matmul_with_its_accumulator_width_is_bit_exact(overflow):
    generator = torch.Generator().manual_seed(2)
    x = fp.quantize(torch.randn(6, 40, generator=generator) * 3, (12, 6), "nearest-even", "saturate")
    w = fp.quantize(torch.randn(5, 40, generator=generator), (12, 8), "nearest-even", "saturate")
    exact = (apy_from_codes(x, 12, 6) @ apy_from_codes(w, 12, 8).transpose()).cast(bits=40, frac_bits=14)
    for acc_bits in (40, 18):  # wide enough, and narrow enough that the sum overflows
        ours = fp.mac("forward", x, w, None, acc_bits, overflow)
        theirs = exact.cast(bits=acc_bits, frac_bits=14, overflow=OVERFLOW[overflow])
        np.testing.assert_array_equal(ours.numpy(), apy_codes(theirs))
        if acc_bits == 18:
            assert not torch.equal(ours, fp.mac("forward", x, w, None, 40, overflow))  # the narrow one did overflow


def test_mac_modes_compute_their_contractions():
    generator = torch.Generator().manual_seed(3)
    dy, w, x = (torch.randint(-50, 50, shape, generator=generator) for shape in ((2, 5, 3), (3, 8), (2, 5, 8)))
    assert torch.equal(fp.mac("input-gradient", dy, w, None, 40, "wrap"), dy @ w)
    assert torch.equal(fp.mac("weight-gradient", dy, x, None, 40, "wrap"), torch.einsum("bmn,bmk->nk", dy, x))
    assert torch.equal(fp.mac("update", w, w // 2, None, 40, "wrap"), w - w // 2)
    lhs, rhs = fp.align_for_update(w, 4, w, 6)
    assert torch.equal(lhs, w * 4) and torch.equal(rhs, w)


LAYER = """
func.func @main(%x: tensor<4x24xf32>) -> tensor<4x16xf32> {
  %w = nn.param @fc.weight : tensor<16x24xf32> loc("fc")
  %b = nn.param @fc.bias : tensor<16xf32> loc("fc")
  %y = nn.linear %x, %w, %b : (tensor<4x24xf32>, tensor<16x24xf32>, tensor<16xf32>) -> tensor<4x16xf32> loc("fc")
  func.return %y : tensor<4x16xf32>
}
"""


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_lowered_linear_layer_is_bit_exact_against_apytypes(rounding, overflow):
    """A whole layer through the lowering and the executor: quantize x and W, the bias into the accumulator,
    one MAC, requantise; overflow is provoked by weights that drive the outputs past the 8/4 range."""
    module = parse_module(LAYER)
    lowering = LowerToTinyclPass(total_bits=8, frac_bits=4, rounding=rounding, overflow=overflow)
    from xdsl.context import Context

    lowering.apply(Context(), module)
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(4, 24, generator=generator) * 2
    weights = {"fc.weight": torch.randn(16, 24, generator=generator), "fc.bias": torch.randn(16, generator=generator)}
    (out,) = Executor(module, weights, extra_functions=[TinyclFunctions()])(x)

    acc = next(op for op in module.walk() if isinstance(op, tinycl.MacOp)).result.type.get_element_type()
    acc_total, acc_frac = acc.bits
    xq = apy_quantize(x, 8, 4, rounding, overflow)
    wq = apy_quantize(weights["fc.weight"], 8, 4, rounding, overflow)
    bq = apy_quantize(weights["fc.bias"], acc_total, acc_frac, rounding, overflow)
    a_x, a_w = apy_from_codes(torch.from_numpy(xq), 8, 4), apy_from_codes(torch.from_numpy(wq), 8, 4)
    a_b = apy_from_codes(torch.from_numpy(bq), acc_total, acc_frac)
    summed = (a_x @ a_w.transpose() + a_b).cast(bits=acc_total, frac_bits=acc_frac, overflow=apy.OverflowMode.WRAP)
    expected = summed.cast(bits=8, frac_bits=4, quantization=QUANTIZATION[rounding], overflow=OVERFLOW[overflow])
    np.testing.assert_array_equal((out.double() * 16).round().long().numpy(), apy_codes(expected))
    exact = torch.nn.functional.linear(x, weights["fc.weight"], weights["fc.bias"])
    assert exact.abs().max() > 8  # some outputs do overflow the 8/4 range


def test_nonlinearities_are_within_their_documented_error():
    generator = torch.Generator().manual_seed(5)
    fmt = (16, 8)
    half_step = 2.0 ** -(fmt[1] + 1)
    scores = fp.quantize(torch.randn(6, 4, 17, 17, generator=generator) * 4, fmt, "nearest-even", "saturate")
    for causal in (False, True):
        probs = fp.dequantize(fp.softmax(scores, fmt, 0.25, causal), fmt, torch.float64)
        logits = fp.dequantize(scores, fmt, torch.float64) * 0.25
        if causal:
            logits = logits.masked_fill(~torch.ones(17, 17, dtype=torch.bool).tril(), -math.inf)
        error = (probs - torch.softmax(logits, -1)).abs().max().item()
        assert error <= half_step + 2.0**-fp.TABLE_BITS, error
    keep = torch.rand(6, 1, 1, 17, generator=generator) > 0.3
    keep[0] = False  # a row with no key left: zeros
    probs = fp.dequantize(fp.softmax(scores, fmt, 0.25, False, keep), fmt, torch.float64)
    logits = (fp.dequantize(scores, fmt, torch.float64) * 0.25).masked_fill(~keep, -math.inf)
    assert (probs[1:] - torch.softmax(logits, -1)[1:]).abs().max().item() <= half_step + 2.0**-fp.TABLE_BITS
    assert bool((probs[0] == 0).all())
    x = fp.quantize(torch.randn(8, 17, 64, generator=generator) * 2, fmt, "nearest-even", "saturate")
    gelu = fp.dequantize(fp.lut(x, "gelu", fmt), fmt, torch.float64)
    assert (gelu - torch.nn.functional.gelu(fp.dequantize(x, fmt, torch.float64))).abs().max() <= half_step
    assert torch.equal(fp.lut(x, "relu", fmt), x.clamp(min=0))
    one = torch.full((64,), 1 << fmt[1], dtype=torch.int64)
    normed = fp.dequantize(fp.layer_norm(x, one, torch.zeros(64, dtype=torch.int64), fmt, 1e-5, "nearest-even", "saturate"), fmt)
    reference = torch.nn.functional.layer_norm(fp.dequantize(x, fmt, torch.float64), (64,), eps=1e-5)
    assert (normed.double() - reference).abs().max() <= half_step + 1e-4


def test_integer_sqrt_is_exact():
    values = torch.cat([torch.arange(0, 5000), torch.tensor([2**58 - 1, 2**58, (2**29 + 1) ** 2 - 1, (2**29 + 1) ** 2])])
    roots = fp.integer_sqrt(values)
    assert bool(((roots * roots <= values) & ((roots + 1) * (roots + 1) > values)).all())


@pytest.fixture(scope="module")
def held_out():
    model, _ = BUNDLED["vit-digits"]()
    _, _, x_test, y_test = digits_split()
    with torch.no_grad():
        reference = model(x_test)
    return model, x_test, y_test, reference


def test_vit_digits_at_16_8_keeps_the_predictions(held_out):
    """All 500 held-out images at once (so the on-chip SRAM is sized for them); measured: every prediction the
    same, max |logit error| 0.41 (logits have a std of ~2.8; 0.52 with probabilities at 8 fractional bits)."""
    model, x_test, y_test, reference = held_out
    compiled = compile_model(ModelSpec("vit-digits", model, (x_test,)), "attn-raise,lower-to-tinycl{sram-kb=65536}")
    assert target_of(compiled.module) is TINYCL
    (logits,) = compiled.run()
    agreement = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
    assert agreement >= 0.99
    assert (logits - reference).abs().max().item() < 1.0  # the measured 0.41 with room for the rounding of one run


def test_vit_digits_per_class_formats_cut_the_logit_error(held_out):
    """16 bits everywhere, split by tensor class: activations 16/11, weights 16/14, attention scores 16/8 (sums of
    16 products need the range), probabilities 16/14: measured max |logit error| 0.019, against 0.41 at 16/8
    (bench/tinycl_error.py); the 1e-2 goal is not reached at 16 bits."""
    model, x_test, _, reference = held_out
    options = "total-bits=16 frac-bits=11 weight-frac-bits=14 score-frac-bits=8 sram-kb=65536"
    (logits,) = compile_model(ModelSpec("vit-digits", model, (x_test,)), f"attn-raise,lower-to-tinycl{{{options}}}").run()
    assert bool((logits.argmax(-1) == reference.argmax(-1)).all())
    assert (logits - reference).abs().max().item() < 0.025


def test_cost_model_counts_and_snake_saves():
    lhs, rhs_raster = tile_loads(16, 16, 64, 136, 192, snake=False)
    _, rhs_snake = tile_loads(16, 16, 64, 136, 192, snake=True)
    tiles_m = math.ceil(136 / 16)
    assert lhs == 136 * 64 and rhs_raster == tiles_m * 192 * 64 and rhs_snake == rhs_raster - (tiles_m - 1) * 16 * 64
    assert tile_loads(16, 16, 64, 136, 10, snake=True) == tile_loads(16, 16, 64, 136, 10, snake=False)  # one column
    module = parse_module(LAYER)
    from xdsl.context import Context

    LowerToTinyclPass(pe_rows=4, pe_cols=8).apply(Context(), module)
    (layer,) = layer_costs(module)
    assert layer.layer == "fc" and layer.macs == 4 * 16 * 24
    assert layer.cycles == 1 * 2 * (24 + 4 + 8 - 2) + math.ceil(4 * 16 / 8)  # one tile row of 2 tiles; the requantisation
    assert 0 < layer.utilisation(32) <= 1
    assert layer.off_chip == 16 * 24 + 16 and layer.off_chip_raster == layer.off_chip  # one tile row: nothing to save
    assert ArrayConfig.of(module).pe_rows == 4
    plan = memory_plan(module)
    assert plan.peak_bytes == 4 * 24 * 2 + 4 * 16 * math.ceil(TINYCL_ACC_BITS(module) / 8)
    report = TINYCL.report(module)
    assert "fc" in report and "peak on-chip" in report


def TINYCL_ACC_BITS(module) -> int:
    return next(op for op in module.walk() if isinstance(op, tinycl.MacOp)).result.type.get_element_type().total.data


CLI_COMPILE = """
import sys
from compiler.cli.main import main
code = main(["compile", "vit-digits", "-p", "attn-raise,lower-to-tinycl{total-bits=16 frac-bits=8}", "-o", sys.argv[1]])
bad = main(["compile", "vit-digits", "-p", "attn-raise,lower-to-tinycl{total-bits=1}", "-o", sys.argv[1] + "-bad"])
print("CODES", code, bad)
"""

CLI_USE = """
import contextlib, io, json, sys
from compiler.cli.main import main
results = {}
for name, argv in [("run", ["run", sys.argv[1], "--report", "-o", sys.argv[2]]),
                   ("verify", ["verify", "vit-digits", "-p", "attn-raise,lower-to-tinycl", "--tol", "1e-2"])]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    results[name] = [code, out.getvalue()]
print(json.dumps(results))
"""


def test_cli_compile_then_run_report_and_verify_in_new_processes(tmp_path):
    outdir, outputs = tmp_path / "t", tmp_path / "out.safetensors"
    compiled = subprocess.run([sys.executable, "-c", CLI_COMPILE, str(outdir)], capture_output=True, text=True, timeout=600)
    assert "CODES 0 1" in compiled.stdout, compiled.stderr
    assert "attnc: error: lower-to-tinycl: total-bits must be in [2, 16], got 1" in compiled.stderr
    assert "Traceback" not in compiled.stderr
    used = subprocess.run([sys.executable, "-c", CLI_USE, str(outdir), str(outputs)], capture_output=True, text=True, timeout=600)
    results = json.loads(used.stdout.strip().splitlines()[-1])
    code, text = results["run"]
    assert code == 0
    assert "target: TinyCL 16x16 MAC array, 16/8 fixed point" in text
    for layer in ("patches.proj", "blocks.0.attn ", "blocks.3.mlp.2", "head", "total", "memory plan: "):
        assert layer in text, layer
    code, text = results["verify"]
    error = float(text.split("max_abs_err=")[1].split()[0])
    assert code == (0 if error <= 1e-2 else 1)  # the measured 16/8 error on vit-digits is ~0.5 (see docs)
    # the artifact read back in the new process runs bit-identically to the module in this one
    from safetensors.torch import load_file

    in_memory = compile_model("vit-digits", "attn-raise,lower-to-tinycl{total-bits=16 frac-bits=8}").run()
    assert torch.equal(load_file(str(outputs))["output_0"], in_memory[0])


def test_cosine_attention_on_the_array_matches_the_reference():
    """attn.cosine lowered (L2 norms, two products linear in L, the per-head divisor) against the float kernel."""
    from xdsl.context import Context

    from runtime.cosine_kernels import cosine_attention_reference

    module = parse_module(COSINE)
    LowerToTinyclPass().apply(Context(), module)
    assert any(isinstance(op, tinycl.L2NormalizeOp) for op in module.walk())
    generator = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(2, 3, 9, 8, generator=generator) for _ in range(3))
    m = torch.tensor([-1.0, 0.0, 2.0])
    (out,) = Executor(module, {"attn.m": m}, extra_functions=[TinyclFunctions()])(q, k, v)
    reference = cosine_attention_reference(q, k, v, m)
    assert (out - reference).abs().max().item() < 0.02  # 16/8: a few steps of 2^-8 through two products
    assert (out - reference).abs().max().item() > 0  # it did run in fixed point
    normed = fp.dequantize(fp.l2_normalize(fp.quantize(q, (16, 8), "nearest-even", "saturate"), (16, 8)), (16, 8))
    assert (normed.norm(dim=-1) - 1).abs().max() < 0.02
    assert torch.equal(fp.l2_normalize(torch.zeros(2, 4, dtype=torch.int64), (16, 8)), torch.zeros(2, 4, dtype=torch.int64))


COSINE = """
func.func @main(%q: tensor<2x3x9x8xf32>, %k: tensor<2x3x9x8xf32>, %v: tensor<2x3x9x8xf32>) -> tensor<2x3x9x8xf32> {
  %m = nn.param @attn.m : tensor<3xf32> loc("attn")
  %o = attn.cosine %q, %k, %v, %m {causal = false, form = "chunked"}
    : (tensor<2x3x9x8xf32>, tensor<2x3x9x8xf32>, tensor<2x3x9x8xf32>, tensor<3xf32>) -> tensor<2x3x9x8xf32> loc("attn")
  func.return %o : tensor<2x3x9x8xf32>
}
"""
