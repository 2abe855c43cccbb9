"""The training step on TinyCL in fixed point: the element-wise units and the SGD update bit-exact against
apytypes, the backward units within their documented error of the float formulas, and a lowered training step
whose every compute op is a ``tinycl`` op (only the reported loss stays in float)."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
import torch
from xdsl.context import Context

from compiler.api import parse_module
from compiler.training import compiled_trainer, training_data
from dialects import tinycl
from runtime import grad_impl
from runtime.executor import Executor
from targets.tinycl import fixed_point as fp
from targets.tinycl.lowering import LowerToTinyclPass
from targets.tinycl.runtime import TinyclFunctions

apy = pytest.importorskip("apytypes")

QUANTIZATION = {"nearest-even": apy.QuantizationMode.TIES_EVEN, "truncate": apy.QuantizationMode.TO_NEG}
OVERFLOW = {"saturate": apy.OverflowMode.SAT, "wrap": apy.OverflowMode.WRAP}
MODES = [(r, o) for r in QUANTIZATION for o in OVERFLOW]
DATA, GRAD = (16, 8), (16, 12)


def apy_codes(array) -> np.ndarray:
    return np.rint(np.asarray(array.to_numpy(), dtype=np.float64) * 2.0**array.frac_bits).astype(np.int64)


def apy_of(codes: torch.Tensor, total: int, frac: int):
    return apy.APyFixedArray.from_float(codes.double().numpy() * 2.0**-frac, bits=total, frac_bits=frac)


def cast(array, fmt, rounding, overflow):
    return apy_codes(array.cast(bits=fmt[0], frac_bits=fmt[1], quantization=QUANTIZATION[rounding], overflow=OVERFLOW[overflow]))


def codes(shape, bits: int, seed: int) -> torch.Tensor:
    return torch.randint(-(2 ** (bits - 1)), 2 ** (bits - 1), shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_add_mul_and_sum_are_bit_exact_against_apytypes(rounding, overflow):
    """Broadcast add and product of two formats, then a narrow result format (so both modes matter), and the
    exact sum over a dim requantised."""
    a, b = codes((6, 5), 16, 0), codes((5,), 12, 1)
    a_apy, b_apy = apy_of(a, 16, 8), apy_of(b, 12, 10).broadcast_to((6, 5))
    out = (10, 4)
    ours = fp.add(a, 8, b, 10, out, rounding, overflow)
    np.testing.assert_array_equal(ours.numpy(), cast(a_apy + b_apy, out, rounding, overflow))
    ours = fp.multiply(a, 8, b, 10, out, rounding, overflow)
    np.testing.assert_array_equal(ours.numpy(), cast(a_apy * b_apy, out, rounding, overflow))
    ours = fp.reduce_sum(a, 8, [0], False, out, rounding, overflow)
    np.testing.assert_array_equal(ours.numpy(), cast(a_apy.sum(0), out, rounding, overflow))


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_softmax_backward_is_bit_exact_against_apytypes(rounding, overflow):
    """``y·(dy − Σ dy·y)`` with probabilities at 16/14 and gradients at 16/12, into 10/8 (narrow, so large
    gradients overflow)."""
    y = fp.softmax(codes((3, 7, 9), 16, 2), DATA, 0.5, False, out=(16, 14))
    dy = codes((3, 7, 9), 16, 3)
    ours = fp.softmax_backward(y, 14, dy, 12, (10, 8), rounding, overflow)
    y_apy, dy_apy = apy_of(y, 16, 14), apy_of(dy, 16, 12)
    rows = [dy_apy[i, j] * y_apy[i, j] for i in range(3) for j in range(7)]
    expected = np.stack([
        cast(y_apy[i, j] * (dy_apy[i, j] - (rows[i * 7 + j]).sum()), (10, 8), rounding, overflow)
        for i in range(3) for j in range(7)
    ]).reshape(3, 7, 9)
    np.testing.assert_array_equal(ours.numpy(), expected)


@pytest.mark.parametrize("function", ["gelu", "relu"])
@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_activation_backward_is_bit_exact_against_apytypes(function, rounding, overflow):
    """The derivative table's entries are the derivative rounded to 16/14 (nearest even); the product with the
    gradient is exact, then requantised."""
    x, dy = codes((300,), 16, 4), codes((300,), 16, 5)
    ours = fp.activation_backward(x, DATA, dy, 12, function, (12, 10), rounding, overflow)
    values = fp.dequantize(x, DATA, torch.float64)
    derivative = fp.DERIVATIVES[function](values).numpy()
    table = apy.APyFixedArray.from_float(derivative, bits=80, frac_bits=60).cast(
        bits=16, frac_bits=14, quantization=apy.QuantizationMode.TIES_EVEN, overflow=apy.OverflowMode.SAT
    )
    np.testing.assert_array_equal(ours.numpy(), cast(table * apy_of(dy, 16, 12), (12, 10), rounding, overflow))


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_lowered_sgd_with_momentum_is_bit_exact_against_apytypes(rounding, overflow):
    """``grad.sgd`` lowered to the array's update mode: ``v' = g − (−μ)·v`` and ``p' = p − (η/16)·v'`` (loss scale 16), each
    product exact, each difference exact, then requantised to the gradient (velocity) and weight formats."""
    module = parse_module(SGD)
    LowerToTinyclPass(total_bits=16, frac_bits=8, weight_frac_bits=12, rounding=rounding, overflow=overflow).apply(
        Context(), module
    )
    assert Counter(op.mode.data for op in module.walk() if isinstance(op, tinycl.MacOp)) == {"update": 2}
    assert not any(op.dialect_name() == "grad" for op in module.walk())
    generator = torch.Generator().manual_seed(6)
    p = codes((8, 5), 16, 7)
    g, v = codes((8, 5), 15, 8), codes((8, 5), 16, 9)
    weights = {"w": fp.dequantize(p, (16, 12)), "w.momentum": fp.dequantize(v, GRAD)}
    new_p, new_v = Executor(module, weights, extra_functions=[TinyclFunctions()])(fp.dequantize(g, GRAD))
    del generator
    mu = apy.APyFixedArray.from_float(np.full((8, 5), -0.9), bits=16, frac_bits=15)  # the constant's format
    lr = apy.APyFixedArray.from_float(np.full((8, 5), 0.05 / 16), bits=24, frac_bits=23)  # η / loss-scale
    velocity = cast(apy_of(g, 16, 12) - apy_of(v, 16, 12) * mu, GRAD, rounding, overflow)
    param = cast(apy_of(p, 16, 12) - apy_of(torch.from_numpy(velocity), 16, 12) * lr, (16, 12), rounding, overflow)
    np.testing.assert_array_equal(fp.quantize(new_v, GRAD, "truncate", "wrap").numpy(), velocity)
    np.testing.assert_array_equal(fp.quantize(new_p, (16, 12), "truncate", "wrap").numpy(), param)


SGD = """
builtin.module attributes {attnc.updates = ["w", "w.momentum"]} {
  func.func @main(%g: tensor<8x5xf32>) -> (tensor<8x5xf32>, tensor<8x5xf32>) {
    %w = nn.param @w : tensor<8x5xf32>
    %v = nn.param @w.momentum : tensor<8x5xf32>
    %w1, %v1 = grad.sgd %w, %g velocity %v {lr = 0.05 : f64, momentum = 0.9 : f64}
        : (tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>) -> (tensor<8x5xf32>, tensor<8x5xf32>)
    func.return %w1, %v1 : tensor<8x5xf32>, tensor<8x5xf32>
  }
}
"""


def test_backward_units_are_within_their_documented_error():
    """Against the float formulas on the same codes: each unit's result is within one step of the 16/12
    gradient format (2^-12) plus the rounding of its inputs (x̂, g, the table entries, the probabilities)."""
    generator = torch.Generator().manual_seed(10)

    def q(values, fmt):
        return fp.quantize(values, fmt, "nearest-even", "saturate")

    def f(codes_, fmt):
        return fp.dequantize(codes_, fmt, torch.float64)

    step = 2.0**-12
    x = q(torch.randn(4, 16, 64, generator=generator) * 2, DATA)
    dy = q(torch.randn(4, 16, 64, generator=generator) * 0.5, GRAD)
    gamma = q(torch.rand(64, generator=generator) + 0.5, DATA)
    ours = f(fp.layer_norm_backward(x, DATA, dy, 12, gamma, 8, 1e-5, GRAD, "nearest-even", "saturate"), GRAD)
    reference = grad_impl.layer_norm_backward(f(x, DATA), f(dy, GRAD), f(gamma, DATA), 1, 1e-5)
    assert (ours - reference).abs().max().item() <= 2 * step, (ours - reference).abs().max().item()

    logits = q(torch.randn(32, 10, generator=generator) * 3, DATA)
    labels = torch.randint(0, 10, (32,), generator=generator)
    for scale in (1, 16):
        ours = f(fp.cross_entropy_backward(logits, DATA, labels, scale, 32, GRAD, "nearest-even", "saturate"), GRAD)
        reference = grad_impl.cross_entropy_backward(f(logits, DATA), labels) * scale
        assert (ours - reference).abs().max().item() <= step, scale

    xs = q(torch.randn(2000, generator=generator) * 3, DATA)
    dys = q(torch.randn(2000, generator=generator), GRAD)
    ours = f(fp.activation_backward(xs, DATA, dys, 12, "gelu", GRAD, "nearest-even", "saturate"), GRAD)
    reference = grad_impl.gelu_backward(f(xs, DATA), f(dys, GRAD), "none")
    assert (ours - reference).abs().max().item() <= step  # table entry 2^-15 · |dy| < 2^-13, plus the final 2^-13


@pytest.fixture(scope="module")
def patch_digits():
    return training_data("patch-digits")


@pytest.mark.parametrize("pipeline", ["attn-raise", "attn-raise,attn-cosine"])
def test_the_lowered_training_step_is_fixed_point_end_to_end(patch_digits, pipeline):
    """Every compute op of patch-digits' training step, with softmax or cosine attention, is a ``tinycl`` op (the
    reported loss excepted); the update runs on the array's update mode; one step lands within two weight steps
    (2^-11 at 16/12) of the float step from the same weights, and every gradient points the same way as the
    float one."""
    model, example, (x, y, _, _) = patch_digits
    options = {"total-bits": "16", "frac-bits": "8", "weight-frac-bits": "12"}
    fixed = compiled_trainer(model, example, "tinycl", lr=0.05, momentum=0.9, target_options=options, batch_size=16,
                             pipeline=pipeline)
    float_ = compiled_trainer(model, example, "reference", lr=0.05, momentum=0.9, batch_size=16, pipeline=pipeline)
    executor, keys = fixed._step(16)  # type: ignore[attr-defined]
    kinds = Counter(op.name for op in executor.module.walk())
    if "attn-cosine" in pipeline:  # the cosine backward on the array, m's gradient included
        assert kinds["tinycl.l2_normalize_backward"] == 2 and kinds["tinycl.head_scale_backward"] == 1
        assert "block.attn.cosine_m" in keys
    host = {name for name in kinds if name.split(".")[0] in ("nn", "attn", "grad")}
    movement = {"nn.param", "nn.reshape", "nn.transpose", "nn.permute", "nn.full"}
    assert host - movement == {"grad.cross_entropy"}, host - movement
    modes = Counter(op.mode.data for op in executor.module.walk() if isinstance(op, tinycl.MacOp))
    assert modes["update"] == len(keys) and modes["forward"] > 0 and modes["weight-gradient"] > 0
    start = {k: torch.round(v * 4096) / 4096 for k, v in fixed.weights.items()}  # codes of the 16/12 weights
    fixed.weights, float_.weights = dict(start), dict(start)  # type: ignore[attr-defined]
    fixed.train_epoch(x[:16], y[:16], batch_size=16, seed=0)
    float_.train_epoch(x[:16], y[:16], batch_size=16, seed=0)
    for key in float_.weights:  # type: ignore[attr-defined]
        ours, theirs = fixed.weights[key], float_.weights[key]  # type: ignore[attr-defined]
        if key.endswith(".momentum"):  # after one step the velocity is the gradient; the array holds 16·v
            if theirs.abs().max() < 1e-6:  # the key bias: softmax ignores it, its gradient is 0 (rounding noise in both)
                continue
            cosine = torch.nn.functional.cosine_similarity(ours.flatten() / 16, theirs.flatten(), dim=0).item()
            assert cosine > 0.99, (key, cosine)  # the same direction through a 16/8 forward
            continue
        moved = (theirs - start[key]).abs().max().item()
        error = (ours - theirs).abs().max().item()
        assert error <= 2 * 2.0**-12 + 0.05 * moved, (key, error, moved)


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_embedding_backward_is_bit_exact_against_apytypes(rounding, overflow):
    """Rows of the gradient summed into the table rows their indices name (repeats included), into 12/9."""
    dy, indices = codes((3, 7, 5), 16, 11), torch.randint(0, 6, (3, 7), generator=torch.Generator().manual_seed(12))
    ours = fp.embedding_backward(dy, 12, indices, 6, (12, 9), rounding, overflow)
    dy_apy = apy_of(dy.reshape(21, 5), 16, 12)
    zero = apy.APyFixedArray.from_float(np.zeros(5), bits=16, frac_bits=12)
    expected = []
    for row in range(6):
        total = zero
        for position in (indices.reshape(-1) == row).nonzero().flatten().tolist():
            total = total + dy_apy[position]
        expected.append(cast(total, (12, 9), rounding, overflow))
    np.testing.assert_array_equal(ours.numpy(), np.stack(expected))


def test_a_gpt2_training_step_lowers_its_embedding_backward():
    """gpt2-tiny's step: the token embedding's gradient is a tinycl.embedding_backward, nothing of the backward
    but the loss stays in float."""
    from compiler.api import compile_model

    compiled = compile_model("gpt2-tiny", "attn-raise,training-step{lr=0.01},lower-to-tinycl{sram-kb=65536}")
    kinds = Counter(op.name for op in compiled.module.walk())
    assert kinds["tinycl.embedding_backward"] >= 1
    assert not [name for name in kinds if name.startswith("grad.") and name != "grad.cross_entropy"], kinds


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_l2_normalize_backward_is_bit_exact_against_apytypes(rounding, overflow):
    """``(dn − n·Σ(n·dn)) / ‖x‖`` into 12/10 (narrow, so large gradients overflow): the norm by an exact integer square
    root (math.isqrt) and n rounded half up as the forward does, dn rounded to 10 fractional bits with the mode,
    the bracket exact in apytypes, the division rounded half up to 10 + 8 bits, the last cast with the modes."""
    x, dn = codes((3, 4, 8), 16, 13), codes((3, 4, 8), 16, 14)
    x[0, 0] = 0  # a zero row: zero gradient
    x[1, 1] = torch.tensor([3, -1, 0, 0, 2, 0, 0, 1])  # a short row: a large gradient
    out, guard = (12, 10), fp.NORM_GUARD_BITS
    f = out[1]
    ours = fp.l2_normalize_backward(x, DATA, dn, 12, out, rounding, overflow)
    expected = np.zeros((3, 4, 8), dtype=np.int64)
    for i in range(3):
        for j in range(4):
            row = [int(c) for c in x[i, j]]
            root = math.isqrt(sum(c * c for c in row) << (2 * guard))
            if root == 0:
                continue
            unit = apy.APyFixedArray.from_float(
                np.array([_half_up(c << (f + guard), root) for c in row], dtype=np.float64) * 2.0**-f, bits=20, frac_bits=f
            )
            g = apy_of(dn[i, j], 16, 12).cast(bits=20, frac_bits=f, quantization=QUANTIZATION[rounding],
                                                overflow=apy.OverflowMode.WRAP)
            bracket = g - unit * (unit * g).sum()  # exact: 3f fractional bits
            exponent = DATA[1] + 2 * guard - 2 * f
            quotient = [_half_up(int(b) << max(exponent, 0), root << max(-exponent, 0)) for b in apy_codes(bracket)]
            exact = apy.APyFixedArray.from_float(np.array(quotient, dtype=np.float64) * 2.0 ** -(f + guard), bits=48,
                                                 frac_bits=f + guard)
            expected[i, j] = cast(exact, out, rounding, overflow)
    assert bracket.frac_bits == 3 * f
    np.testing.assert_array_equal(ours.numpy(), expected)
    assert (ours[0, 0] == 0).all() and ours[1, 1].abs().max() > 2**10  # the zero row, a large gradient


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_head_scale_backward_is_bit_exact_against_apytypes(rounding, overflow):
    """``−ln L · s(1 − s) · Σ a·b`` per head (dim 1) into 8/5 (narrow, so some heads overflow): the sum exact in
    apytypes, cast to 44/13 with the modes, the factor rounded to 12/8 (``total`` + 4 bits, ``total`` fractional),
    the exact product cast with the modes."""
    a, b = codes((2, 5, 4, 3), 12, 15), codes((2, 5, 4, 3), 12, 16)
    m = torch.tensor([0.5, -1.0, 2.0, 0.0, 3.0])
    out, length = (8, 5), 17
    ours = fp.head_scale_backward(a, 12, b, 8, m, length, out, rounding, overflow)
    factor_format = fp.head_scale_factor_format(out[0])
    assert factor_format == (12, 8)
    s = torch.sigmoid(m.double())
    factors = apy.APyFixedArray.from_float((-math.log(length) * s * (1 - s)).numpy(), bits=80, frac_bits=60).cast(
        bits=factor_format[0], frac_bits=factor_format[1], quantization=apy.QuantizationMode.TIES_EVEN,
        overflow=apy.OverflowMode.SAT,
    )
    expected = []
    for head in range(5):
        lhs, rhs = apy_of(a[:, head].reshape(-1), 16, 12), apy_of(b[:, head].reshape(-1), 16, 8)
        total = (lhs * rhs).sum().cast(bits=fp.HEAD_SUM_BITS, frac_bits=out[1] + fp.NORM_GUARD_BITS,
                                       quantization=QUANTIZATION[rounding], overflow=OVERFLOW[overflow])
        result = (total * factors[head]).cast(bits=out[0], frac_bits=out[1], quantization=QUANTIZATION[rounding],
                                              overflow=OVERFLOW[overflow])
        expected.append(round(float(result) * 2.0 ** out[1]))
    np.testing.assert_array_equal(ours.numpy(), np.array(expected))
    saturated = fp.head_scale_backward(a, 12, b, 8, m, length, out, rounding, "saturate")
    assert (saturated == -(2 ** (out[0] - 1))).any()  # a head overflows: the modes matter
    assert torch.equal(ours, saturated) == (overflow == "saturate")


COSINE_BACKWARD = """
builtin.module attributes {attnc.updates = []} {
  func.func @main(%q: tensor<2x3x6x8xf32>, %k: tensor<2x3x6x8xf32>, %v: tensor<2x3x6x4xf32>, %m: tensor<3xf32>,
                  %dy: tensor<2x3x6x4xf32>) -> (tensor<2x3x6x8xf32>, tensor<2x3x6x8xf32>, tensor<2x3x6x4xf32>, tensor<3xf32>) {
    %dq, %dk, %dv, %dm = grad.cosine_backward %q, %k, %v, %m, %dy {causal = false, form = "chunked"}
        : (tensor<2x3x6x8xf32>, tensor<2x3x6x8xf32>, tensor<2x3x6x4xf32>, tensor<3xf32>, tensor<2x3x6x4xf32>)
        -> (tensor<2x3x6x8xf32>, tensor<2x3x6x8xf32>, tensor<2x3x6x4xf32>, tensor<3xf32>)
    func.return %dq, %dk, %dv, %dm : tensor<2x3x6x8xf32>, tensor<2x3x6x8xf32>, tensor<2x3x6x4xf32>, tensor<3xf32>
  }
}
"""


def test_lowered_cosine_backward_is_within_its_format_bound_of_the_float_one():
    """``grad.cosine_backward`` on the array (16/8 data, 16/12 gradients) against the float op on the same inputs.

    The bound of each gradient is the worst case of the roundings it passes through, propagated through the
    products: δ = 2⁻⁹ per unit-vector element and per S element (data format), ε = 2⁻¹³ per gradient element
    (each requantisation), 2⁻¹⁵ on 1/f and 2⁻¹⁷ on the factor of dm (their formats), 2⁻¹⁶ of the norm from the
    integer square root; each carried through the products element by element as |XY − X'Y'| ≤ (|X| + eX)(|Y| + eY)
    − |X||Y| (a worst case: no cancellation between roundings is assumed)."""
    from runtime.cosine_kernels import cosine_normalize

    generator = torch.Generator().manual_seed(17)

    def on_grid(values, fmt):
        return fp.dequantize(fp.quantize(values, fmt, "nearest-even", "saturate"), fmt)

    batch, heads, length, depth, width = 2, 3, 6, 8, 4
    q = on_grid(torch.randn(batch, heads, length, depth, generator=generator), DATA)
    k = on_grid(torch.randn(batch, heads, length, depth, generator=generator), DATA)
    v = on_grid(torch.randn(batch, heads, length, width, generator=generator), DATA)
    m = torch.tensor([0.5, -1.0, 2.0])
    dy = on_grid(torch.randn(batch, heads, length, width, generator=generator) * 0.3, GRAD)
    reference = Executor(parse_module(COSINE_BACKWARD), {})(q, k, v, m, dy)
    module = parse_module(COSINE_BACKWARD)
    LowerToTinyclPass(total_bits=16, frac_bits=8).apply(Context(), module)
    kinds = Counter(op.name for op in module.walk())
    assert not [name for name in kinds if name.startswith(("grad.", "attn."))], kinds
    assert kinds["tinycl.l2_normalize_backward"] == 2 and kinds["tinycl.head_scale_backward"] == 1
    modes = Counter(op.mode.data for op in module.walk() if isinstance(op, tinycl.MacOp))
    assert modes == {"forward": 1, "input-gradient": 4}  # S recomputed; A, dV, dN(K), dN(Q)
    ours = Executor(module, {}, extra_functions=[TinyclFunctions()])(q, k, v, m, dy)

    # the float intermediates, and each element's bound as the formats give it
    d64 = {name: t.double() for name, t in (("q", q), ("k", k), ("v", v), ("dy", dy))}
    delta, eps = 2.0**-9, 2.0**-13

    def product(x, ex, y, ey):  # the bound of X·Y − X'·Y' for |X − X'| ≤ ex, |Y − Y'| ≤ ey, element-wise
        return (x.abs() + ex) @ (y.abs() + ey) - x.abs() @ y.abs()

    def t(x):
        return x.transpose(-1, -2)

    s = torch.sigmoid(m.double())
    qn, kn = cosine_normalize(d64["q"]), cosine_normalize(d64["k"])
    # a unit vector: the quotient rounded to 2^-8 (δ), the integer square root's floor (2^-16 of the norm)
    e_qn, e_kn = (torch.full_like(x, delta) + 2.0**-16 / x.norm(dim=-1, keepdim=True) for x in (d64["q"], d64["k"]))
    state = t(kn) @ d64["v"]
    e_state = t(e_kn) @ d64["v"].abs() + delta
    dh = d64["dy"] / (float(length) ** s).reshape(1, -1, 1, 1)
    e_dh = eps + d64["dy"].abs() * 2.0**-15  # the product rounded, 1/f rounded to 16/14
    a = t(qn) @ dh
    e_a = product(t(qn), t(e_qn), dh, e_dh) + eps
    e_dv = product(kn, e_kn, a, e_a) + eps
    dkn, e_dkn = d64["v"] @ t(a), d64["v"].abs() @ t(e_a) + eps
    dqn, e_dqn = dh @ t(state), product(dh, e_dh, t(state), t(e_state)) + eps

    def e_dx(x, dn, e_dn):  # (dn − n·Σ n·dn)/‖x‖: n at 2^-12 (plus the square root's floor), dn within e_dn
        norm = x.norm(dim=-1, keepdim=True)
        n, e_n = cosine_normalize(x).abs(), eps + 2.0**-16 / norm
        inner = ((n + e_n) * (dn.abs() + e_dn)).sum(-1, keepdim=True)
        projection = (n + e_n) * inner - n * (n * dn.abs()).sum(-1, keepdim=True)
        exact = (dn - cosine_normalize(x) * (cosine_normalize(x) * dn).sum(-1, keepdim=True)) / norm
        return (e_dn + projection) / norm + exact.abs() * 2.0**-15 / norm + 2.0**-19 + eps

    factor = math.log(length) * (s * (1 - s))
    sums = (a * state).sum(dim=(0, 2, 3))
    e_sum = ((a.abs() + e_a) * (state.abs() + e_state) - a.abs() * state.abs()).sum(dim=(0, 2, 3)) + 2.0**-21
    e_dm = 2.0**-17 * (sums.abs() + e_sum) + factor * e_sum + eps  # the factor rounded to 20/16
    bounds = (e_dx(d64["q"], dqn, e_dqn), e_dx(d64["k"], dkn, e_dkn), e_dv, e_dm)
    for name, got, want, bound in zip(("dq", "dk", "dv", "dm"), ours, reference, bounds):
        error = (got.double() - want.double()).abs()
        assert (error <= bound).all(), (name, (error - bound).max().item())
        assert want.abs().max().item() > 10 * bound.max().item(), name  # the bound is tight enough to mean something
    assert torch.allclose(-factor * sums, reference[3].double(), atol=1e-5)  # dm = −ln L·s(1−s)·Σ A∘S, in float


def test_attnc_train_learns_with_cosine_attention_on_tinycl(tmp_path, capsys):
    """``attnc train patch-digits -p 'attn-raise,attn-cosine' --target tinycl``: one epoch of the fully fixed-point
    step (the cosine backward on the array) takes held-out accuracy from chance to above 80 %."""
    from compiler.cli.main import main

    out = tmp_path / "trained"
    argv = ["train", "patch-digits", "-p", "attn-raise,attn-cosine", "--target", "tinycl", "--option", "total-bits=16",
            "--option", "frac-bits=8", "--epochs", "1", "-o", str(out)]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["pipeline"] == "attn-raise,attn-cosine"
    assert results["accuracy_before"] < 0.2 and results["accuracy_after"] > 0.8, results
    assert not [remark for remark in results["remarks"] if "cosine" in remark], results["remarks"]
    assert main(["train", "vit-cl", "--strategy", "naive", "-p", "attn-raise,attn-cosine", "-o", str(tmp_path / "x")]) == 1
    assert "-p/--pipeline applies to plain training" in capsys.readouterr().err
