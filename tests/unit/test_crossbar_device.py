"""Behaviour of the crossbar device model (targets/crossbar/device.py): mapping, noise, ClipFormer, MVM."""

from __future__ import annotations

import math

import pytest
import torch

from targets.crossbar.device import (
    ClipFormer,
    CrossbarConfig,
    apply_stuck_at,
    clipformer_conductance,
    clipformer_values,
    conductances_to_values,
    map_to_conductances,
    mvm,
    program,
    program_noise,
    slice_levels,
    weight_noise_std,
    write,
    write_noise,
    write_noise_weight_std,
    zero_tiles,
)

IDEAL_IO = dict(input_bits=None, adc_bits=None)  # no DAC/ADC quantisation: only the weight mapping


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).norm() / ref.norm())


@pytest.fixture(scope="module")
def layer() -> tuple[torch.Tensor, torch.Tensor]:
    """A 100x130 weight (not a multiple of the 64x64 tile, so padding is exercised) and 48 inputs."""
    g = gen(1)
    return torch.randn(100, 130, generator=g), torch.randn(48, 130, generator=g)


# ---------------------------------------------------------------------------------------------- mapping


@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_mapping_round_trip_is_exact_to_half_an_lsb(mapping: str) -> None:
    cfg = CrossbarConfig(signed_mapping=mapping)
    w = torch.randn(3, 70, 90, generator=gen(2))  # batched matrices, one scale each
    mapped = map_to_conductances(w, cfg)
    back = conductances_to_values(mapped.g, mapped.scale, cfg)
    lsb = mapped.scale / cfg.weight_levels
    assert back.shape == w.shape
    assert torch.all((back - w).abs() <= lsb / 2 * (1 + 1e-4))
    assert torch.all((mapped.g >= cfg.g_min * (1 - 1e-6)) & (mapped.g <= cfg.g_max * (1 + 1e-6)))


def test_slices_are_most_significant_first() -> None:
    cfg = CrossbarConfig()  # 8-bit values, 2-bit cells -> 4 slices
    digits = slice_levels(torch.tensor([0.0, 1.0, 64.0, 255.0, 0b10_01_11_00]), cfg)
    assert digits[:, 1].tolist() == [0, 0, 0, 1]
    assert digits[:, 2].tolist() == [1, 0, 0, 0]
    assert digits[:, 3].tolist() == [3, 3, 3, 3]
    assert digits[:, 4].tolist() == [2, 1, 3, 0]
    assert cfg.slice_significance() == [64, 16, 4, 1]


def test_differential_pair_carries_the_sign() -> None:
    cfg = CrossbarConfig()
    w = torch.tensor([[0.5, -0.5], [1.0, 0.0]])
    g = map_to_conductances(w, cfg).g  # (devices, slices, in, out): crossbar orientation is w.T
    g_pos, g_neg = g[0], g[1]
    positive, negative, zero = (0, 0), (1, 0), (1, 1)  # (in, out) positions of w[0,0], w[0,1], w[1,1]
    assert torch.all(g_neg[:, positive[0], positive[1]] == cfg.g_min)
    assert torch.any(g_pos[:, positive[0], positive[1]] > cfg.g_min)
    assert torch.all(g_pos[:, negative[0], negative[1]] == cfg.g_min)
    assert torch.equal(g_neg[:, negative[0], negative[1]], g_pos[:, positive[0], positive[1]])
    assert torch.all(g[:, :, zero[0], zero[1]] == cfg.g_min)


@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_negating_the_weight_negates_the_output(layer, mapping: str) -> None:
    w, x = layer
    cfg = CrossbarConfig(signed_mapping=mapping, adc_bits=None)
    y = mvm(program(w, cfg), x)
    y_neg = mvm(program(-w, cfg), x)
    if mapping == "differential":
        assert torch.allclose(y_neg, -y, atol=1e-5)
    else:  # offset binary is symmetric too once the offset is removed digitally
        assert torch.allclose(y_neg, -y, atol=1e-4)


# ---------------------------------------------------------------------------------------------- MVM


@pytest.mark.parametrize("mode", ["fast", "exact"])
@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_noise_free_mvm_matches_x_wt_within_weight_quantisation(layer, mode: str, mapping: str) -> None:
    w, x = layer
    cfg = CrossbarConfig(mode=mode, signed_mapping=mapping, **IDEAL_IO)
    y = mvm(program(w, cfg), x)
    lsb = w.abs().max() / cfg.weight_levels
    bound = x.abs().sum(dim=-1, keepdim=True) * lsb / 2  # |x (W_q - W)^T| <= sum|x| * LSB/2
    assert y.shape == (48, 100)
    assert torch.all((y - x @ w.T).abs() <= bound * 1.001 + 1e-5)


def test_high_resolution_dac_and_adc_converge_to_the_ideal(layer) -> None:
    w, x = layer
    weights_only = mvm(program(w, CrossbarConfig(**IDEAL_IO)), x)  # 8-bit weights: ~0.5 % error alone
    for mode in ("fast", "exact"):
        cfg = CrossbarConfig(mode=mode, input_bits=16, adc_bits=20)
        assert relative_error(mvm(program(w, cfg), x), weights_only) < 1e-4
        coarse = CrossbarConfig(mode=mode, input_bits=4, adc_bits=4)
        assert relative_error(mvm(program(w, coarse), x), weights_only) > 1e-2


def test_fast_and_exact_agree_exactly_without_adc(layer) -> None:
    w, x = layer
    fast = mvm(program(w, CrossbarConfig(adc_bits=None, program_noise=0.02), gen(3)), x)
    exact = mvm(program(w, CrossbarConfig(adc_bits=None, program_noise=0.02, mode="exact"), gen(3)), x)
    assert torch.allclose(fast, exact, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("adc_range", ["dynamic", "calibrated", "max"])
def test_fast_mode_adc_error_matches_the_exact_per_slice_adc(adc_range: str) -> None:
    """The fast mode's variance-matched ADC gives about the exact mode's error (6-bit ADC)."""
    w, x = torch.randn(128, 256, generator=gen(4)), torch.randn(128, 256, generator=gen(5))
    errors = {}
    for mode in ("fast", "exact"):
        cfg = CrossbarConfig(mode=mode, adc_range=adc_range)
        errors[mode] = relative_error(mvm(program(w, cfg, adc_calibration=x), x), x @ w.T)
    assert errors["exact"] > 0.01  # the 6-bit ADC is visible
    # Close while the ADC step is small against the currents; "max" is the coarse, approximate case.
    tolerance = 0.35 if adc_range == "max" else 0.2
    assert abs(errors["fast"] / errors["exact"] - 1) < tolerance, errors


def test_calibrated_adc_saturates_beyond_its_range(layer) -> None:
    w, x = layer
    cfg = CrossbarConfig(mode="exact", adc_range="calibrated")
    state = program(w, cfg, adc_calibration=x)
    y_in_range = mvm(state, x)
    # Inputs with one dominant element saturate some columns; the DAC rescales each vector, so the
    # per-vector currents exceed what the calibration saw.
    spiky = torch.zeros_like(x)
    spiky[:, 0] = 1.0
    assert relative_error(y_in_range, x @ w.T) < 0.1
    assert relative_error(mvm(state, spiky), spiky @ w.T) > relative_error(y_in_range, x @ w.T)


def test_calibrated_adc_without_calibration_is_a_clear_error(layer) -> None:
    w, x = layer
    with pytest.raises(ValueError, match="adc_calibration"):
        mvm(program(w, CrossbarConfig(adc_range="calibrated")), x)


def test_batched_matrices_match_per_matrix_results() -> None:
    k = torch.randn(2, 3, 40, 70, generator=gen(6))  # e.g. K per (batch, head): (seq, head_dim)
    q = torch.randn(2, 3, 5, 70, generator=gen(7))
    cfg = CrossbarConfig(gamma=0.0)
    y = mvm(write(k, cfg), q)
    for b in range(2):
        for h in range(3):
            single = mvm(write(k[b, h], cfg), q[b, h])
            assert torch.allclose(y[b, h], single, rtol=1e-5, atol=1e-5)


def test_leading_input_dims_are_kept(layer) -> None:
    w, x = layer
    state = program(w, CrossbarConfig())
    assert mvm(state, x.view(4, 12, 130)).shape == (4, 12, 100)


def test_mvm_rejects_a_wrong_input_width(layer) -> None:
    w, _ = layer
    with pytest.raises(ValueError, match="130 rows"):
        mvm(program(w, CrossbarConfig()), torch.randn(3, 99))


# ---------------------------------------------------------------------------------------------- noise


def test_write_noise_std_grows_with_conductance_as_the_formula_says() -> None:
    cfg = CrossbarConfig(gamma=1.0, sigma=0.05)
    fractions = [0.0, 0.1, 0.25, 0.5, 0.75]
    g = torch.tensor([cfg.g_min + f * cfg.g_range for f in fractions]).repeat(40_000, 1)
    noisy = write_noise(g, cfg, gen(8))
    measured = (noisy - g).std(dim=0)
    expected = [cfg.gamma * cfg.sigma * math.sqrt(f * cfg.g_range * cfg.g_range) for f in fractions]
    assert measured[0] == 0  # no noise at g_min
    for m, e in zip(measured[1:].tolist(), expected[1:], strict=True):
        assert m == pytest.approx(e, rel=0.03)
    assert torch.all(measured[1:] > measured[:-1])
    assert noisy.min() >= cfg.g_min and noisy.max() <= cfg.g_max  # stated clamp


def test_write_noise_is_clamped_to_the_device_window() -> None:
    cfg = CrossbarConfig(gamma=5.0, sigma=1.0)
    g = torch.full((10_000,), cfg.g_max)
    noisy = write_noise(g, cfg, gen(9))
    assert noisy.max() == cfg.g_max and noisy.min() >= cfg.g_min and noisy.min() < cfg.g_max


def test_programming_noise_in_weight_units_matches_the_nominal_helper() -> None:
    # Noise well below g_min so the clamp at 0 never acts; the helper is then exact.
    cfg = CrossbarConfig(program_noise=0.002)
    w = torch.randn(256, 256, generator=gen(10))
    ideal = program(w, CrossbarConfig()).effective_weight()
    noisy = program(w, cfg, gen(11)).effective_weight()
    measured = float((noisy - ideal).std() / w.abs().max())
    assert measured == pytest.approx(weight_noise_std(cfg, "program"), rel=0.03)


def test_write_noise_in_weight_units_matches_the_nominal_helper() -> None:
    cfg = CrossbarConfig(gamma=1.0, sigma=0.01)
    w = torch.randn(128, 128, generator=gen(12))
    ideal = write(w, CrossbarConfig(gamma=0.0)).effective_weight()
    copies = w.expand(20, 128, 128)  # 20 independent writes of the same matrix, in one call
    errors = write(copies, cfg, gen(1)).effective_weight() - ideal
    measured = float(errors.pow(2).mean().sqrt() / w.abs().max())
    nominal = float(write_noise_weight_std(w, cfg).pow(2).mean().sqrt())
    assert measured == pytest.approx(nominal, rel=0.05)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_read_noise_output_std_matches_the_per_cell_model(mode: str) -> None:
    cfg = CrossbarConfig(mode=mode, read_noise=0.01, **IDEAL_IO)
    w, x = torch.randn(64, 128, generator=gen(13)), torch.randn(8, 128, generator=gen(14))
    state = program(w, cfg)
    repeats = x.expand(300, 8, 128)  # each input row is a separate read: 300 reads of each vector
    samples = mvm(state, repeats, gen(15))
    measured = samples.std(dim=0).mean()
    # Every cell adds read_noise*(g_max-g_min); in value units the weight error std is the helper's value.
    expected = weight_noise_std(cfg, "read") * w.abs().max() * (x / x.abs().amax(-1, keepdim=True)).norm(dim=-1)
    expected = (expected * x.abs().amax(-1)).mean()
    assert float(measured) == pytest.approx(float(expected), rel=0.05)


def test_read_noise_pool_is_reproducible_and_noisy(layer) -> None:
    w, x = layer
    cfg = CrossbarConfig(read_noise=0.01, read_noise_pool=1 << 16)
    state = program(w, cfg, gen(16))
    a, b = mvm(state, x, gen(17)), mvm(state, x, gen(17))
    assert torch.equal(a, b)
    assert not torch.equal(a, mvm(state, x, gen(18)))


def test_stuck_at_count_matches_the_rate() -> None:
    cfg = CrossbarConfig(stuck_at_rate=0.02, stuck_at_high_fraction=0.25)
    g = map_to_conductances(torch.randn(200, 200, generator=gen(19)), cfg).g  # 2*4*200*200 = 320k cells
    stuck_g, stuck_map = apply_stuck_at(g, cfg, gen(20))
    n = g.numel()
    count = int(stuck_map.stuck.sum())
    assert abs(count - 0.02 * n) < 5 * math.sqrt(n * 0.02 * 0.98)
    high = stuck_map.stuck & stuck_map.high
    assert torch.all(stuck_g[high] == cfg.g_max)
    assert torch.all(stuck_g[stuck_map.stuck & ~stuck_map.high] == cfg.g_min)
    assert int(high.sum()) / count == pytest.approx(0.25, abs=0.03)
    assert torch.equal(stuck_g[~stuck_map.stuck], g[~stuck_map.stuck])


def test_stuck_cells_are_kept_when_asked(layer) -> None:
    w, _ = layer
    state = program(w, CrossbarConfig(stuck_at_rate=0.05), gen(21), keep_conductances=True)
    assert state.stuck_map is not None
    assert float(state.stuck_map.stuck.float().mean()) == pytest.approx(0.05, abs=0.01)


def test_random_functions_demand_a_generator(layer) -> None:
    w, x = layer
    with pytest.raises(ValueError, match="torch.Generator"):
        program(w, CrossbarConfig(program_noise=0.01))
    state = program(w, CrossbarConfig(read_noise=0.01))
    with pytest.raises(ValueError, match="torch.Generator"):
        mvm(state, x)


# ---------------------------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_same_seed_same_result_different_seed_different_result(layer, mode: str) -> None:
    w, x = layer
    cfg = CrossbarConfig(mode=mode, program_noise=0.01, read_noise=0.005, stuck_at_rate=0.01)

    def run(seed: int) -> torch.Tensor:
        g = gen(seed)
        return mvm(program(w, cfg, g), x, g)

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))

    kv = CrossbarConfig(mode=mode, gamma=3.0)
    assert torch.equal(write(w, kv, gen(5)).w_eff_t, write(w, kv, gen(5)).w_eff_t)
    assert not torch.equal(write(w, kv, gen(5)).w_eff_t, write(w, kv, gen(6)).w_eff_t)


# ---------------------------------------------------------------------------------------------- ClipFormer


def test_clipformer_alpha0_beta1_is_the_identity() -> None:
    cfg = CrossbarConfig(gamma=0.0)
    identity = ClipFormer(alpha=0.0, beta=1.0)
    g = cfg.g_min + torch.rand(1000, generator=gen(22)) * cfg.g_range
    assert torch.equal(clipformer_conductance(g, 0.0, 1.0, cfg), g)
    x = torch.randn(4, 30, 40, generator=gen(23))
    assert torch.allclose(clipformer_values(x, identity, cfg), x, atol=1e-6)
    assert torch.equal(write(x, cfg, clip=identity).w_eff_t, write(x, cfg).w_eff_t)


def test_clipformer_moves_conductances_down_and_caps_them() -> None:
    cfg = CrossbarConfig()
    alpha, beta = 2.0, 0.25
    g = cfg.g_min + torch.linspace(0, 1, 1001) * cfg.g_range
    clipped = clipformer_conductance(g, alpha, beta, cfg)
    assert torch.all(clipped <= g)
    assert torch.all(clipped >= cfg.g_min)
    assert clipped.max() == pytest.approx(beta * cfg.g_max)
    shifted = g - alpha * cfg.g_min
    in_range = (shifted >= cfg.g_min) & (shifted <= beta * cfg.g_max)
    assert torch.allclose(clipped[in_range], shifted[in_range])
    assert torch.all(clipped[g <= (1 + alpha) * cfg.g_min] == cfg.g_min)  # dead zone


def test_clipformer_beta_quarter_empties_the_msb_slice_of_8bit_values_in_2bit_cells() -> None:
    """beta*g_max = 2.5 uS caps the level at round(255*(2.5-0.1)/9.9) = 62 < 64: the top slice is 0."""
    cfg = CrossbarConfig()
    x = torch.randn(64, 64, generator=gen(24))
    plain_digits = map_to_conductances(x, cfg).g
    clipped = map_to_conductances(x, cfg, ClipFormer(alpha=2.0, beta=0.25)).g
    msb, second = 0, 1
    assert torch.any(plain_digits[:, msb] > cfg.g_min)
    assert torch.all(clipped[:, msb] == cfg.g_min)
    # The next slice still uses its whole range: the cap (level 62 = 0b00_11_11_10) is not a power of 4.
    top_digit = (clipped[:, second].max() - cfg.g_min) / cfg.g_range * cfg.cell_levels
    assert round(float(top_digit)) == cfg.cell_levels
    # beta = 0.3 (level 75) no longer empties it.
    assert torch.any(map_to_conductances(x, cfg, ClipFormer(alpha=2.0, beta=0.3)).g[:, msb] > cfg.g_min)


def test_clipformer_value_domain_equals_the_noise_free_crossbar() -> None:
    cfg = CrossbarConfig(gamma=0.0)
    x = torch.randn(3, 50, 40, generator=gen(25))
    for clip in (ClipFormer(2.0, 0.25), ClipFormer(3.0, 0.5), ClipFormer(2.0, 0.25, at="per_slice")):
        on_crossbar = write(x, cfg, clip=clip).effective_weight()
        reference = clipformer_values(x, clip, cfg)
        lsb = x.abs().amax(dim=(-2, -1), keepdim=True) / cfg.weight_levels
        assert torch.all((on_crossbar - reference).abs() <= lsb / 2 * (1 + 1e-4) + 1e-7), clip


def test_clipformer_reduces_write_noise_in_weight_units() -> None:
    cfg = CrossbarConfig(gamma=5.0)
    x = torch.randn(64, 64, generator=gen(26))
    plain = write_noise_weight_std(x, cfg).pow(2).mean().sqrt()
    clipped = write_noise_weight_std(x, cfg, ClipFormer(2.0, 0.25)).pow(2).mean().sqrt()
    assert clipped < 0.6 * plain


def test_clipformer_options_are_validated() -> None:
    with pytest.raises(ValueError, match="beta"):
        ClipFormer(alpha=2.0, beta=0.0)
    with pytest.raises(ValueError, match="alpha"):
        ClipFormer(alpha=-1.0)
    with pytest.raises(ValueError, match="differential"):
        map_to_conductances(torch.ones(2, 2), CrossbarConfig(signed_mapping="offset"), ClipFormer())


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="adc_range"):
        CrossbarConfig(adc_range="auto")
    with pytest.raises(ValueError, match="g_min"):
        CrossbarConfig(g_min=1e-5, g_max=1e-6)


def test_programming_noise_clamps_only_at_zero() -> None:
    cfg = CrossbarConfig(program_noise=0.5)
    g = torch.full((10_000,), cfg.g_min)
    noisy = program_noise(g, cfg, gen(27))
    assert noisy.min() == 0 and noisy.max() > cfg.g_max * 0.5


def test_attention_through_written_k_and_v_matches_within_quantisation() -> None:
    """Q @ K.T with K written as is, P @ V with V written transposed, noise-free: only 8-bit mapping error."""
    g = gen(28)
    q, k, v = (torch.randn(2, 4, 16, 32, generator=g) for _ in range(3))
    cfg = CrossbarConfig(gamma=0.0, **IDEAL_IO)
    scores = mvm(write(k, cfg), q) / math.sqrt(32)
    probs = torch.softmax(scores, dim=-1)
    out = mvm(write(v.transpose(-1, -2), cfg), probs)
    reference = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(32), dim=-1) @ v
    assert out.shape == reference.shape
    assert relative_error(out, reference) < 0.02


# ------------------------------------------------------------------------------------------ zero tiles


def test_zero_tiles_are_found_in_crossbar_orientation_with_padded_edges() -> None:
    weight = torch.ones(100, 130)  # (out, in): 3 row tiles over the inputs, 2 column tiles over the outputs
    weight[64:, :64] = 0.0  # outputs 64..99 of inputs 0..63: row tile 0, column tile 1
    weight[:64, 128:] = 0.0  # the two inputs of the padded row tile 2, outputs 0..63
    expected = torch.zeros(3, 2, dtype=torch.bool)
    expected[0, 1] = expected[2, 0] = True
    assert torch.equal(zero_tiles(weight, 64, 64), expected)
    weight[99, 10] = 1e-30  # one non-zero cell keeps a tile
    assert not zero_tiles(weight, 64, 64)[0, 1]


@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_skipped_tiles_hold_exact_zeros_and_the_others_keep_their_noise(layer, mapping: str) -> None:
    weight, x = layer[0].clone(), layer[1]
    weight[64:, :64] = 0.0
    skip = zero_tiles(weight, 64, 64)
    assert int(skip.sum()) == 1
    cfg = CrossbarConfig(program_noise=0.02, stuck_at_rate=0.01, signed_mapping=mapping, **IDEAL_IO)
    skipped = program(weight, cfg, gen(5), skip_tiles=skip).effective_weight()
    programmed = program(weight, cfg, gen(5)).effective_weight()
    assert torch.equal(skipped[64:, :64], torch.zeros(36, 64))
    assert programmed[64:, :64].abs().max() > 0  # noise and stuck cells on an array that holds zeros
    outside = torch.ones_like(weight, dtype=torch.bool)
    outside[64:, :64] = False
    assert torch.equal(skipped[outside], programmed[outside])
    ideal = CrossbarConfig(**IDEAL_IO, signed_mapping=mapping)
    assert torch.equal(mvm(program(weight, ideal, skip_tiles=skip), x), mvm(program(weight, ideal), x))
