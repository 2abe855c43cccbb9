"""The from-scratch Cottention benches: a GPT-2 trained with the runtime's cosine kernel compiles through
attn-cosine into the same function (its trained m included), and step-by-step decoding (KV cache, recurrent
cosine state) reproduces the full forward pass."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import byte_gpt  # noqa: E402
import cosine_lm_perplexity as lm_bench  # noqa: E402
import cottention_decode as decode  # noqa: E402
import cottention_encoder as encoder  # noqa: E402
import cottention_scratch as scratch  # noqa: E402

SETTINGS = lm_bench.TrainSettings(layers=2, width=32, heads=2, context=24, batch=4, steps=3, warmup_steps=1)


def _trained_cosine_model() -> torch.nn.Module:
    """A tiny cosine GPT-2 after a few training steps, with m set far from attn-cosine's initial 0.5."""
    stream = torch.randint(1, lm_bench.VOCAB, (4000,), generator=torch.Generator().manual_seed(0))
    weights, log = lm_bench.train(SETTINGS, stream, build=scratch.make_cosine_lm)
    assert log["parameters"] == sum(p.numel() for p in lm_bench.make_lm(SETTINGS).parameters()) + 2 * SETTINGS.heads
    model = scratch.make_cosine_lm(SETTINGS)
    model.load_state_dict(weights)
    with torch.no_grad():
        for layer, block in enumerate(model.transformer.h):
            block.attn.cosine_m.copy_(torch.tensor([-2.0, 1.5]) + layer)
    return lm_bench.LogitsOnly(model).eval()


def test_trained_cosine_gpt_compiles_to_attn_cosine_with_its_m():
    model = _trained_cosine_model()
    ids = torch.randint(1, lm_bench.VOCAB, (3, SETTINGS.context), generator=torch.Generator().manual_seed(1))
    compiled = scratch.compiled_cosine(SETTINGS, model, ids)
    names = {op.name for op in compiled.module.walk()}
    assert "attn.cosine" in names and "attn.sdpa" not in names
    with torch.no_grad():
        expected = model(ids)
        softmax_architecture = model.lm.state_dict()
        eager = lm_bench.make_lm(SETTINGS)
        eager.load_state_dict({n: t for n, t in softmax_architecture.items() if not n.endswith("cosine_m")})
        softmax_logits = eager(input_ids=ids, use_cache=False).logits
    got = compiled.run((ids,))[0]
    assert (got - expected).abs().max().item() < 1e-4 * expected.abs().max().item()
    # The cosine model is not the softmax one with the same weights, and the trained m values matter.
    assert (softmax_logits - expected).abs().max().item() > 1e-2
    initial = {n: torch.full_like(t, scratch.COSINE_M_INIT) for n, t in compiled.weights.items() if n.endswith("cosine_m")}
    compiled.weights.update(initial)
    assert (compiled.run((ids,))[0] - expected).abs().max().item() > 1e-3


def test_step_by_step_decoding_matches_the_full_forward():
    errors = decode.check(replace(SETTINGS, context=decode.CHECK_TOKENS), seed=0)
    assert set(errors) == {"softmax", "cosine"}
    assert max(errors.values()) < 1e-4


def test_cosine_state_is_constant_and_kv_cache_grows():
    cache = decode.SoftmaxCache(layers=2, heads=2, head_dim=16, capacity=64)
    assert cache.held_bytes(64) == 4 * cache.held_bytes(16) == 2 * 2 * 2 * 64 * 16 * 4
    lm = scratch.make_cosine_lm(SETTINGS)
    states = decode.CosineStates(lm, heads=2, head_dim=16)
    before = states.held_bytes()
    q = k = v = torch.randn(1, 2, 16)
    for position in range(20):
        states(0, q, k, v, position)
    assert states.held_bytes() == before


def test_plain_torch_gpt_loads_into_hf_gpt2_and_computes_the_same_logits():
    """bench/byte_gpt.py trains without transformers; its weights must be HF GPT-2's, function included."""
    shape = byte_gpt.GPTShape(layers=2, width=32, heads=2, context=SETTINGS.context)
    ids = torch.randint(0, lm_bench.VOCAB, (3, SETTINGS.context), generator=torch.Generator().manual_seed(2))
    for attention, build in (("softmax", lm_bench.make_lm), ("cosine", scratch.make_cosine_lm)):
        torch.manual_seed(0)
        model = byte_gpt.ByteGPT(shape, attention).eval()
        if attention == "cosine":
            with torch.no_grad():
                for layer, block in enumerate(model.transformer.h):
                    block.attn.cosine_m.copy_(torch.tensor([-1.0, 2.0]) + layer)
        hf = build(replace(SETTINGS, layers=2, width=32, heads=2)).eval()
        hf.load_state_dict(byte_gpt.hf_state_dict(model), strict=True)
        with torch.no_grad():
            expected = hf(input_ids=ids, use_cache=False).logits
            got = model(ids)
        assert (got - expected).abs().max().item() < 1e-5 * expected.abs().max().item()


def test_device_training_returns_weights_that_the_report_evaluates_through_attnc(tmp_path, monkeypatch):
    """--train's job, archive and summary, then --report's unpack and evaluation, on a random corpus."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    generator = torch.Generator().manual_seed(3)
    splits = {}
    for name, length in (("train", 6000), ("validation", 800), ("test", 800)):
        data = torch.randint(1, lm_bench.VOCAB, (length,), generator=generator).to(torch.uint8).numpy().tobytes()
        (corpus / f"{name}.bin").write_bytes(data)
        splits[name] = {"articles": 1, "bytes": length, "sha256": hashlib.sha256(data).hexdigest()}
    (corpus / "manifest.json").write_text(json.dumps({"source": "random", "split_seed": 0, "splits": splits}))
    monkeypatch.setitem(scratch.SIZES, "T", {"layers": 1, "width": 32, "heads": 2, "steps": 4, "lr": 1e-3, "dropout": 0.1})
    jobs = scratch.make_jobs(["T"], [0], ["softmax", "cosine"], steps=None, batch=4)
    args = argparse.Namespace(device="cpu", threads=1, corpus=corpus, amp=False, deadline=1e18, subset_windows=3,
                              work_dir=tmp_path / "work")
    for job in jobs:
        scratch.run_one(args, job)
    out = tmp_path / "out"
    out.mkdir()
    scratch.pack(jobs, args.work_dir, out, max_parts=1)
    monkeypatch.setattr(scratch, "RUNS_CACHE", tmp_path / "runs")
    folder, summary = scratch.unpack(out)
    assert [r["name"] for r in summary["records"]] == ["T-softmax-s0", "T-cosine-s0"]
    windows = scratch.eval_windows(scratch.load_corpus(corpus)[0]["test"], scratch.CONTEXT)[:3]
    for record in summary["records"]:
        assert record["complete"] and record["weights_returned"] and record["steps_done"] == 4
        here = scratch.evaluate_here(record, folder, windows, batch=2)
        assert here["attention_ops"] == (["attn.cosine"] if record["job"]["attention"] == "cosine" else ["attn.sdpa"])
        assert abs(here["ppl_attnc"] - record["ppl_device_subset"]) < 1e-4 * record["ppl_device_subset"]
        assert abs(here["ppl_torch_here"] - here["ppl_attnc"]) < 1e-4 * here["ppl_attnc"]


def test_encoder_trained_in_plain_torch_runs_the_same_through_attnc():
    """bench/cottention_encoder.py: the plain-torch encoder has TinyViT's weights; compiled (softmax: attn-raise;
    cosine: attn-raise,attn-cosine with the trained m) the executor computes the same logits."""
    from compiler.api import ModelSpec, compile_model
    from compiler.models import TinyViT

    config = encoder.SIZES["small"]["config"]
    images = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    for attention, pipeline in (("softmax", "attn-raise"), ("cosine", "attn-raise,attn-cosine")):
        torch.manual_seed(0)
        model = encoder.Encoder(**config, attention=attention).eval()
        weights = model.state_dict()
        if attention == "cosine":
            for layer, block in enumerate(model.blocks):
                weights[f"blocks.{layer}.attn.cosine_m"] = torch.tensor([-2.0, -0.5, 1.0, 3.0]) + layer
            model.load_state_dict(weights)
        eager = TinyViT(**config).eval()
        eager.load_state_dict({n: t for n, t in weights.items() if not n.endswith("cosine_m")}, strict=True)
        compiled = compile_model(ModelSpec("encoder", eager, (images,)), pipeline)
        m_names = [n for n in compiled.weights if n.endswith("cosine_m")]
        assert len(m_names) == (config["depth"] if attention == "cosine" else 0)
        for name in m_names:
            compiled.weights[name] = weights[name].clone()
        with torch.no_grad():
            expected = model(images)
        got = compiled.run((images,))[0]
        assert (got - expected).abs().max().item() < 1e-5 * expected.abs().max().item()
        assert {op.name for op in compiled.module.walk() if op.name.startswith("attn.")} == {
            "attn.cosine" if attention == "cosine" else "attn.sdpa"
        }
