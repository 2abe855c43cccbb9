"""The stepwise kernels (runtime/abft_kernels.py ``stepwise_attention``): the flash invariants written as pure
per-block steps for a compiler to fuse. They must agree with SDPA to 1e-5, leave clean inputs unflagged, and
catch one deterministic fault at every attention site, eagerly (no compiler is needed to run them).
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from runtime.abft_kernels import ATTENTION_SITES, stepwise_attention
from runtime.fault_injection import Fault, FaultInjector

TOL = 1e-5


def _qkv(shape, seed=0, spread=1.0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(spread * torch.randn(*shape, generator=gen) for _ in range(3))


@pytest.mark.parametrize("check", ["none", "flash"])
@pytest.mark.parametrize("block", [1, 16, 50, 128])
def test_stepwise_kernels_match_sdpa(check, block):
    q, k, v = _qkv((2, 3, 77, 16))
    for scale in (None, 0.3):
        expected = F.scaled_dot_product_attention(q, k, v, scale=scale)
        result = stepwise_attention(q, k, v, scale=scale, block=block, check=check, tol=TOL)
        assert (result.output - expected).abs().max().item() <= 1e-5
        assert result.fired() == []
        assert (check == "flash") == bool(result.failed)


def test_stepwise_clean_random_inputs_are_not_flagged():
    rng = random.Random(1)
    for case in range(30):
        lq, lk, dim = rng.randint(1, 300), rng.randint(1, 300), rng.choice([8, 32, 64])
        gen = torch.Generator().manual_seed(case)
        spread = rng.choice([0.1, 1.0, 4.0])
        q = spread * torch.randn(1, 2, lq, dim, generator=gen)
        k = spread * torch.randn(1, 2, lk, dim, generator=gen) + rng.uniform(-2, 2)
        v = torch.randn(1, 2, lk, dim, generator=gen) * rng.choice([0.01, 1.0, 30.0])
        result = stepwise_attention(q, k, v, block=rng.choice([16, 64, 128]), check="flash", tol=TOL)
        assert result.fired() == [], (case, lq, lk, dim, spread)


CATCHES = {"q": "score-rowsum", "k": "score-rowsum", "s": "score-rowsum", "p": "normaliser", "l": "normaliser",
           "v": "output-checksum", "acc": "output-checksum", "o": "output-checksum", "checksum": "output-checksum"}


@pytest.mark.parametrize("site", ATTENTION_SITES)
@pytest.mark.parametrize("model", ["bitflip-exponent", "bitflip-mantissa", "random", "nan"])
def test_stepwise_flash_catches_a_fault_at_every_site(site, model):
    q, k, v = _qkv((1, 2, 40, 16))
    clean = stepwise_attention(q, k, v, block=16).output
    fault = Fault(site, call=1 if site in ("s", "p", "l", "acc", "checksum") else 0, element=7, model=model,
                  bit=30 if model == "bitflip-exponent" else 22, draw=0.9)
    injector = FaultInjector(fault)
    result = stepwise_attention(q, k, v, block=16, check="flash", tol=TOL,
                                hook=lambda name, tensor, step: injector.visit(name, tensor, "test"))
    assert injector.fired
    assert CATCHES[site] in result.fired(), (site, injector.before, injector.after)
    if site != "checksum":
        assert not torch.allclose(result.output, clean, atol=1e-6), "the fault must change the output"


def test_unknown_check_is_refused():
    q, k, v = _qkv((1, 1, 4, 8))
    with pytest.raises(ValueError):
        stepwise_attention(q, k, v, check="per-gemm")
