"""ABFT for attention: the blockwise kernels, their invariants, the fault injector and the fault policies.

The unchecked and checked blockwise kernels must agree with PyTorch's SDPA to 1e-5; the invariants must
hold in float64 to rounding; one deterministic fault at every site must be caught by the checks that claim
that site (and the per-gemm baseline must miss the sites it is documented to miss); clean random inputs
must never be flagged; ``recompute`` must return the fault-free output; the injector must be reproducible.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from compiler.api import apply_passes, compile_model, parse_module, parse_pipeline
from runtime.abft_impl import AbftFunctions, FaultDetected
from runtime.abft_kernels import ATTENTION_SITES, LinearEncoding, blockwise_attention, checked_linear
from runtime.executor import Executor
from runtime.fault_injection import FAULT_MODELS, Fault, FaultInjector, SiteProfile, corrupt_value, fault_stream

TOL = 1e-5  # abft-weave's default relative tolerance


def _qkv(shape=(2, 3, 77, 16), dtype=torch.float32, seed=0, spread=1.0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(spread * torch.randn(*shape, generator=gen, dtype=dtype) for _ in range(3))


class _Hook:
    """Adapts a FaultInjector to the kernel's hook signature."""

    def __init__(self, fault: Fault):
        self.injector = FaultInjector(fault)

    def __call__(self, site, tensor, step):
        return self.injector.visit(site, tensor, "test")


# ---- the kernels agree with SDPA ----------------------------------------------------------------------------


@pytest.mark.parametrize("check", ["none", "flash", "per-gemm", "both"])
@pytest.mark.parametrize("block", [1, 16, 50, 128])
def test_blockwise_kernels_match_sdpa(check, block):
    q, k, v = _qkv()
    gen = torch.Generator().manual_seed(1)
    float_mask = torch.randn(2, 1, 1, 77, generator=gen)
    bool_mask = torch.rand(2, 1, 77, 77, generator=gen) > 0.3
    bool_mask[0, 0, 5, :] = False  # a row with every key masked: SDPA outputs 0 there
    cases = [
        (dict(attn_mask=float_mask), dict(mask=float_mask)),
        (dict(attn_mask=bool_mask), dict(mask=bool_mask)),
        (dict(is_causal=True), dict(causal=True)),
        (dict(scale=0.3), dict(scale=0.3)),
    ]
    for sdpa_args, kernel_args in cases:
        expected = F.scaled_dot_product_attention(q, k, v, **sdpa_args)
        result = blockwise_attention(q, k, v, block=block, check=check, tol=TOL, **kernel_args)
        assert (result.output - expected).abs().max().item() <= 1e-5, (sdpa_args, block)
        assert result.fired() == [], (check, sdpa_args)


def test_cross_attention_shapes_and_broadcast_batch():
    q = torch.randn(2, 4, 9, 8)
    k, v = torch.randn(1, 4, 30, 8), torch.randn(1, 4, 30, 5)
    expected = F.scaled_dot_product_attention(q, k, v)
    result = blockwise_attention(q, k, v, block=7, check="both")
    assert (result.output - expected).abs().max().item() <= 1e-5 and not result.fired()


# ---- the invariants hold in float64 -------------------------------------------------------------------------


def test_invariants_hold_in_float64():
    q, k, v = _qkv(dtype=torch.float64)
    scale = q.shape[-1] ** -0.5
    scores = scale * q @ k.transpose(-1, -2)
    p = torch.softmax(scores, dim=-1)
    out = p @ v
    # Flash-ABFT: Σ_d O_id = Σ_j P_ij c_j with c_j = Σ_d V_jd
    assert torch.allclose(out.sum(-1), (p @ v.sum(-1).unsqueeze(-1))[..., 0], rtol=0, atol=1e-12)
    # score row sums: Σ_j S_ij = q_i · Σ_j k_j
    assert torch.allclose(scores.sum(-1), (scale * q @ k.sum(-2).unsqueeze(-1))[..., 0], rtol=0, atol=1e-12)
    # normaliser: the softmax rows sum to one, i.e. ℓ_i = Σ_j exp(s_ij - m_i) from either path
    assert torch.allclose(p.sum(-1), torch.ones_like(p.sum(-1)), rtol=0, atol=1e-12)
    result = blockwise_attention(q, k, v, block=16, check="both", keep_residuals=True)
    assert (result.output - out).abs().max().item() <= 1e-12
    for name, residual in result.residuals.items():
        assert residual.max().item() <= 1e-13, name


# ---- one deterministic fault per site -----------------------------------------------------------------------

# A fault that matters at every site: the exponent's top bit flips, so the value leaves its range.
FLASH_CATCHES = {
    "q": "score-rowsum",
    "k": "score-rowsum",
    "s": "score-rowsum",
    "p": "normaliser",
    "l": "normaliser",
    "v": "output-checksum",
    "acc": "output-checksum",
    "o": "output-checksum",
    "checksum": "output-checksum",
}
PER_GEMM_MISSES = {"p", "l", "acc", "o", "checksum"}


@pytest.mark.parametrize("site", ATTENTION_SITES)
@pytest.mark.parametrize("model", ["bitflip-exponent", "random", "nan"])
def test_one_fault_per_site_is_caught_by_its_invariant(site, model):
    q, k, v = _qkv(shape=(1, 2, 40, 16))
    clean = blockwise_attention(q, k, v, block=16, check="none").output
    fault = Fault(site, call=1 if site in ("s", "p", "l", "acc", "checksum") else 0, element=7, model=model, bit=30, draw=0.9)
    hook = _Hook(fault)
    result = blockwise_attention(q, k, v, block=16, check="flash", tol=TOL, hook=hook)
    assert hook.injector.fired
    assert FLASH_CATCHES[site] in result.fired(), (site, hook.injector.before, hook.injector.after)
    if site != "checksum":
        assert not torch.allclose(result.output, clean, atol=1e-4, equal_nan=False), "the fault must matter"


@pytest.mark.parametrize("site", ATTENTION_SITES)
def test_per_gemm_sees_only_the_two_products(site):
    q, k, v = _qkv(shape=(1, 2, 40, 16))
    fault = Fault(site, call=1 if site in ("s", "p", "l", "acc", "checksum") else 0, element=7, model="bitflip-exponent", bit=30)
    result = blockwise_attention(q, k, v, block=16, check="per-gemm", tol=TOL, hook=_Hook(fault))
    assert bool(result.fired()) == (site not in PER_GEMM_MISSES), (site, result.fired())


@pytest.mark.parametrize("site", ["weight", "output"])
def test_linear_fault_is_caught(site):
    gen = torch.Generator().manual_seed(3)
    x, weight, bias = torch.randn(2, 9, 32, generator=gen), torch.randn(24, 32, generator=gen), torch.randn(24, generator=gen)
    encoding = LinearEncoding.of(weight, bias)
    clean = checked_linear(x, weight, bias, encoding, TOL)
    assert clean.fired() == [] and torch.allclose(clean.output, F.linear(x, weight, bias))
    fault = Fault(site, call=0, element=11, model="bitflip-exponent", bit=29)
    result = checked_linear(x, weight, bias, encoding, TOL, hook=_Hook(fault))
    assert "linear-row" in result.fired()


def test_linear_column_check_rides_in_the_layer_product():
    """The checksum row appended to the input gives the column check's expected side: an output fault is seen by
    the column check too, clean residuals stay far below τ (the Cauchy–Schwarz bound is not loose enough to hide
    a fault of 1 % of an output), and the output is the plain linear's."""
    gen = torch.Generator().manual_seed(5)
    x, weight, bias = torch.randn(3, 7, 48, generator=gen), torch.randn(40, 48, generator=gen), torch.randn(40, generator=gen)
    encoding = LinearEncoding.of(weight, bias)
    clean = checked_linear(x, weight, bias, encoding, TOL, keep_residuals=True)
    assert clean.fired() == [] and torch.allclose(clean.output, F.linear(x, weight, bias), atol=1e-6)
    assert float(clean.residuals["linear-column"].max()) < TOL / 10

    def nudge(site, tensor, step):
        if site != "output":
            return tensor
        bumped = tensor.clone()
        bumped[1, 2, 5] *= 1.01
        return bumped

    faulty = checked_linear(x, weight, bias, encoding, TOL, hook=nudge)
    assert faulty.failed["linear-column"].nonzero().flatten().tolist() == [5]


# ---- clean inputs are not flagged ---------------------------------------------------------------------------


def test_clean_random_inputs_are_not_flagged():
    rng = random.Random(0)
    for case in range(40):
        batch, heads = rng.randint(1, 2), rng.randint(1, 4)
        lq, lk, dim = rng.randint(1, 300), rng.randint(1, 300), rng.choice([8, 32, 64])
        gen = torch.Generator().manual_seed(case)
        spread = rng.choice([0.1, 1.0, 4.0])
        q = spread * torch.randn(batch, heads, lq, dim, generator=gen)
        k = spread * torch.randn(batch, heads, lk, dim, generator=gen) + rng.uniform(-2, 2)
        v = torch.randn(batch, heads, lk, dim, generator=gen) * rng.choice([0.01, 1.0, 30.0])
        mask = torch.randn(batch, 1, 1, lk, generator=gen) * 3 if case % 2 else None
        result = blockwise_attention(q, k, v, mask, block=rng.choice([16, 64, 128]), check="both", tol=TOL)
        assert result.fired() == [], (case, batch, heads, lq, lk, dim, spread)


# ---- through the executor: raise, count, recompute ----------------------------------------------------------

T = "tensor<1x2x40x16xf32>"
ATTENTION_IR = f"""
func.func @main(%q: {T}, %k: {T}, %v: {T}) -> {T} {{
  %o = attn.sdpa %q, %k, %v {{scale = 0.25 : f64, causal = false}} : ({T}, {T}, {T}) -> {T} loc("layer.0.attn")
  func.return %o : {T}
}}
"""


def _woven(options: str):
    module = parse_module(ATTENTION_IR)
    apply_passes(module, parse_pipeline(f"abft-weave{{{options}}}"))
    return module


def test_on_fault_policies():
    q, k, v = _qkv(shape=(1, 2, 40, 16))
    expected = F.scaled_dot_product_attention(q, k, v, scale=0.25)
    fault = Fault("p", call=1, element=100, model="bitflip-exponent", bit=29)

    clean = Executor(_woven("on-fault=raise block=16"), {})(q, k, v)[0]
    assert (clean - expected).abs().max().item() <= 1e-5

    with pytest.raises(FaultDetected, match=r"at 'layer\.0\.attn' \(abft\.sdpa\) by normaliser"):
        Executor(_woven("on-fault=raise block=16"), {}, extra_functions=[AbftFunctions(FaultInjector(fault))])(q, k, v)

    counting = AbftFunctions(FaultInjector(fault))
    faulty = Executor(_woven("on-fault=count block=16"), {}, extra_functions=[counting])(q, k, v)[0]
    assert not torch.allclose(faulty, expected, atol=1e-4)
    assert [(d.location, d.invariants, d.action) for d in counting.detections] == [("layer.0.attn", ("normaliser",), "counted")]

    for site in ATTENTION_SITES:
        call = 1 if site in ("s", "p", "l", "acc", "checksum") else 0
        site_fault = Fault(site, call=call, element=100, model="bitflip-exponent", bit=30)
        recomputing = AbftFunctions(FaultInjector(site_fault))
        repaired = Executor(_woven("on-fault=recompute block=16"), {}, extra_functions=[recomputing])(q, k, v)[0]
        assert recomputing.detections and recomputing.detections[0].action == "recomputed", site
        assert (repaired - expected).abs().max().item() <= 1e-5, site


def test_count_policy_override_and_clean_minilm(exported):
    """abft-weave keeps MiniLM's numerics (every attention and linear checked), and reports nothing clean."""
    spec, program, reference = exported("minilm")
    compiled = compile_model(spec, "attn-raise,abft-weave{linear=true}")
    ops = {op.name for op in compiled.module.walk()}
    assert "abft.sdpa" in ops and "abft.linear" in ops and "attn.sdpa" not in ops and "nn.linear" not in ops
    functions = AbftFunctions()
    outputs = compiled.executor(extra_functions=[functions])(*spec.inputs)
    assert (outputs[0] - reference[0]).abs().max().item() <= 1e-4
    assert functions.detections == []


# ---- the injector -------------------------------------------------------------------------------------------


def test_fault_models_corrupt_one_element_as_described():
    value = torch.tensor(1.5)
    flip = lambda model, bit=0, draw=0.5: corrupt_value(value, Fault("s", 0, 0, model, bit, draw), 2.0).item()  # noqa: E731
    assert flip("bitflip-sign", 31) == -1.5
    assert flip("bitflip-exponent", 23) == 0.75  # exponent 127 -> 126
    assert flip("bitflip-exponent", 30) != flip("bitflip-exponent", 30)  # exponent 255 with a mantissa: NaN
    assert flip("bitflip-mantissa", 22) == 1.0  # 1.5 = 1.1b: the top mantissa bit off gives 1.0
    assert flip("stuck-at-1", 22) == 1.5 and flip("stuck-at-0", 22) == 1.0
    assert flip("random", draw=0.25) == 1.0  # 2 · max|x| · draw
    assert flip("nan") != flip("nan") and flip("inf") == float("inf") and flip("inf", draw=-0.5) == float("-inf")
    assert set(FAULT_MODELS) >= {"bitflip-sign", "bitflip-exponent", "bitflip-mantissa", "random", "stuck-at-0", "nan", "inf"}


def test_injector_is_reproducible_by_seed():
    q, k, v = _qkv(shape=(1, 2, 40, 16))
    profile = SiteProfile()
    blockwise_attention(q, k, v, block=16, check="flash", hook=lambda site, t, step: profile.visit(site, t, "x"))
    assert profile.sites() == list(ATTENTION_SITES)
    first = list(fault_stream(7, ["s", "p"], FAULT_MODELS, profile, 20))
    assert first == list(fault_stream(7, ["s", "p"], FAULT_MODELS, profile, 20))
    assert first != list(fault_stream(8, ["s", "p"], FAULT_MODELS, profile, 20))
    outputs = []
    for _ in range(2):
        hook = _Hook(first[3][1])
        outputs.append(blockwise_attention(q, k, v, block=16, check="flash", hook=hook).output)
    assert torch.equal(torch.nan_to_num(outputs[0], nan=7.0), torch.nan_to_num(outputs[1], nan=7.0))


LINEAR_IR = """
func.func @main(%x: tensor<2x9x32xf32>) -> tensor<2x9x24xf32> {
  %w = nn.param @proj.weight : tensor<24x32xf32> loc("proj")
  %b = nn.param @proj.bias : tensor<24xf32> loc("proj")
  %y = nn.linear %x, %w, %b : (tensor<2x9x32xf32>, tensor<24x32xf32>, tensor<24xf32>) -> tensor<2x9x24xf32> loc("proj")
  func.return %y : tensor<2x9x24xf32>
}
"""


@pytest.mark.parametrize("site", ["weight", "output"])
def test_linear_recompute_returns_the_fault_free_output(site):
    gen = torch.Generator().manual_seed(4)
    weights = {"proj.weight": torch.randn(24, 32, generator=gen), "proj.bias": torch.randn(24, generator=gen)}
    x = torch.randn(2, 9, 32, generator=gen)
    module = parse_module(LINEAR_IR)
    apply_passes(module, parse_pipeline("abft-weave{linear=true on-fault=recompute}"))
    assert [op.name for op in module.walk() if op.name.startswith("abft.")] == ["abft.linear"]
    functions = AbftFunctions(FaultInjector(Fault(site, call=0, element=5, model="bitflip-exponent", bit=30)))
    repaired = Executor(module, weights, extra_functions=[functions])(x)[0]
    assert torch.equal(repaired, F.linear(x, weights["proj.weight"], weights["proj.bias"]))
    assert [(d.location, d.action) for d in functions.detections] == [("proj", "recomputed")]
    assert "linear-row" in functions.detections[0].invariants


def test_attnc_run_prints_what_the_checks_found(tmp_path, monkeypatch, capsys):
    """A woven model that counts its faults: `attnc run` names each detection (module path, invariant)."""
    from compiler.api import CompiledModel, compile_model
    from compiler.cli.main import main

    outdir = compile_model("mha", "attn-raise,abft-weave{on-fault=count block=4}").save(tmp_path / "m")
    fault = Fault("l", call=1, element=3, model="bitflip-exponent", bit=30)
    plain_executor = CompiledModel.executor

    def faulty_executor(self, seed=0, **kwargs):
        return plain_executor(self, seed, extra_functions=[AbftFunctions(FaultInjector(fault))], **kwargs)

    assert main(["run", str(outdir)]) == 0
    assert "abft:" not in capsys.readouterr().out  # clean run: nothing to report
    monkeypatch.setattr(CompiledModel, "executor", faulty_executor)
    assert main(["run", str(outdir)]) == 0
    printed = capsys.readouterr().out
    assert "abft: fault detected at 'mha' (abft.sdpa) by normaliser" in printed, printed
