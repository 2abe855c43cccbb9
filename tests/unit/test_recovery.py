"""Recovery for cosine-rewritten models (fitting/recovery.py): fitting m against the original model lowers the
held-out error, the fitted values land in ``compiled.weights``, gradients reach m, a causal LM's logits can be
fitted by KL divergence, and bad input fails cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from compiler.api import compile_model
from compiler.errors import AttncError
from fitting.calibration import CALIBRATION_SENTENCES, HELDOUT_SENTENCES, random_batches
from fitting.recovery import (
    attention_scopes,
    cosine_parameters,
    is_embedding_output,
    projection_parameters,
    recover,
    recovery_loss,
)
from runtime.executor import Executor

PIPELINE = "attn-raise,attn-cosine"
CAUSAL_PIPELINE = "attn-raise,attn-cosine{causal=true}"
ATTNC = str(Path(sys.executable).with_name("attnc"))


@pytest.fixture(scope="module")
def vit_batches():
    compiled = compile_model("vit-tiny", PIPELINE)
    return random_batches(compiled, 6, seed=1), random_batches(compiled, 3, seed=99)


def fresh_vit():
    return compile_model("vit-tiny", PIPELINE)


def test_m_only_recovery_reduces_heldout_error_and_updates_weights(vit_batches, tmp_path):
    calibration, heldout = vit_batches
    compiled = fresh_vit()
    report = recover(None, compiled, calibration, steps=30, lr=0.1, heldout_inputs=heldout, progress=False)

    assert report.trained == cosine_parameters(compiled.module) and len(report.trained) == 4
    (before,), (after,) = report.before, report.after
    assert after.rel_err < 0.9 * before.rel_err
    assert after.cos_mean > before.cos_mean
    assert report.heldout_loss_after < 0.9 * report.heldout_loss_before
    assert len(report.losses) == 30

    for name in report.trained:
        fitted = compiled.weights[name]
        assert not fitted.requires_grad
        assert not torch.allclose(fitted, torch.full_like(fitted, 0.5))
        assert report.m_after[name] == fitted.tolist() and report.m_before[name] == [0.5] * 4

    # The reported "after" quality is what the saved program computes on the held-out inputs.
    outdir = compiled.save(tmp_path / "recovered")
    saved = load_file(str(outdir / "weights.safetensors"))
    assert torch.equal(saved[report.trained[0]], compiled.weights[report.trained[0]])
    with torch.no_grad():
        reference = torch.cat([compiled.reference(*batch) for batch in heldout])
    outputs = torch.cat([compiled.run(batch)[0] for batch in heldout])
    assert (outputs - reference).norm() / reference.norm() == pytest.approx(after.rel_err, rel=1e-4)


def test_projection_recovery_trains_attention_projections_only(vit_batches):
    calibration, heldout = vit_batches
    compiled = fresh_vit()
    originals = {name: tensor.clone() for name, tensor in compiled.weights.items()}
    report = recover(
        None, compiled, calibration, steps=10, train_projections=True, projection_lr=1e-3,
        heldout_inputs=heldout, progress=False,
    )
    projections = set(report.trained) - set(cosine_parameters(compiled.module))
    assert projections == {
        f"blocks.{i}.attn.{p}.{kind}" for i in range(4) for p in ("query", "key", "value", "out")
        for kind in ("weight", "bias")
    }
    changed = {name for name, tensor in compiled.weights.items() if not torch.equal(tensor, originals[name])}
    assert changed == set(report.trained)
    assert report.after[0].rel_err < report.before[0].rel_err


def test_gradients_reach_m(vit_batches):
    calibration, _ = vit_batches
    compiled = fresh_vit()
    names = cosine_parameters(compiled.module)
    weights = dict(compiled.weights)
    for name in names:
        weights[name] = weights[name].clone().requires_grad_(True)
    with torch.no_grad():
        reference = [compiled.reference(*calibration[0])]
    outputs = Executor(compiled.module, weights)(*calibration[0])
    recovery_loss(outputs, reference, None, ["mse"]).backward()
    for name in names:
        grad = weights[name].grad
        assert grad is not None and grad.shape == (4,) and torch.isfinite(grad).all() and grad.abs().sum() > 0


def marked_module(*paths: str):
    """A module holding one per-head m marked trainable = "cosine" at each module path."""
    from xdsl.dialects.builtin import ModuleOp, TensorType, f32

    from dialects import nn
    from dialects.locations import module_location

    params = []
    for path in paths:
        param = nn.ParamOp(f"{path}.cosine_m", TensorType(f32, [4]), init=0.5, trainable="cosine")
        param.location = module_location(path)
        params.append(param)
    return ModuleOp(params)


def test_projection_selection_is_scoped_to_the_rewritten_attention():
    w = torch.zeros(1)
    gpt2 = {
        "h.0.attn.cosine_m": w, "h.0.attn.c_attn.weight": w, "h.0.attn.c_proj.bias": w,
        "h.0.mlp.c_proj.weight": w, "h.0.ln_1.weight": w,
    }
    assert projection_parameters(marked_module("h.0.attn"), gpt2) == ["h.0.attn.c_attn.weight", "h.0.attn.c_proj.bias"]
    bert = {
        "l.0.attention.self.cosine_m": w, "l.0.attention.self.query.weight": w, "l.0.attention.self.value.bias": w,
        "l.0.attention.output.dense.weight": w, "l.0.attention.output.LayerNorm.weight": w,
        "l.0.output.dense.weight": w, "l.1.attention.self.query.weight": w,
    }
    bert_module = marked_module("l.0.attention.self")
    assert attention_scopes(bert_module) == ["l.0.attention"]
    assert projection_parameters(bert_module, bert) == [
        "l.0.attention.output.dense.weight", "l.0.attention.self.query.weight", "l.0.attention.self.value.bias",
    ]
    llama = {
        "m.layers.0.self_attn.cosine_m": w, "m.layers.0.self_attn.o_proj.weight": w, "m.layers.0.mlp.up_proj.weight": w,
    }
    assert projection_parameters(marked_module("m.layers.0.self_attn"), llama) == ["m.layers.0.self_attn.o_proj.weight"]


def test_embedding_outputs_use_cosine_and_padding_is_ignored():
    unit = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    assert is_embedding_output(unit) and not is_embedding_output(unit * 2)
    assert recovery_loss([unit * 5], [unit], None, ["embedding"]).item() == pytest.approx(0.0, abs=1e-6)
    hidden = torch.randn(2, 4, 8)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    garbage = hidden.clone()
    garbage[0, 2:] += 100.0
    assert recovery_loss([garbage], [hidden], mask, ["mse"]).item() == 0.0
    assert recovery_loss([garbage], [hidden], None, ["mse"]).item() > 1.0


def test_logits_objective_is_kl_divergence_of_next_token_distributions():
    reference = torch.randn(2, 5, 11)
    assert recovery_loss([reference + 3.0], [reference], None, ["logits"]).item() == pytest.approx(0.0, abs=1e-6)
    output = torch.randn(2, 5, 11)
    p, q = reference.softmax(-1), output.softmax(-1)
    expected = (p * (p.log() - q.log())).sum(-1).mean()
    assert recovery_loss([output], [reference], None, ["logits"]).item() == pytest.approx(expected.item(), rel=1e-5)


def test_causal_lm_recovery_with_logits_objective():
    compiled = compile_model("gpt2-tiny", CAUSAL_PIPELINE)
    calibration, heldout = random_batches(compiled, 4, seed=1), random_batches(compiled, 2, seed=99)
    report = recover(
        None, compiled, calibration, steps=10, lr=0.2, heldout_inputs=heldout, progress=False, output_kinds=("logits",)
    )
    assert report.before[0].kind == "logits" and len(report.trained) == 2
    assert report.heldout_loss_after < report.heldout_loss_before
    with torch.no_grad():
        outputs = [compiled.run(batch) for batch in heldout]
        references = [[compiled.reference(*batch)] for batch in heldout]
    kl = sum(recovery_loss(o, r, None, ["logits"]).item() for o, r in zip(outputs, references)) / len(heldout)
    assert kl == pytest.approx(report.heldout_loss_after, rel=1e-4)

    with pytest.raises(AttncError, match="unknown output kind"):
        recover(None, compiled, calibration, steps=1, heldout_inputs=heldout, progress=False, output_kinds=("kl",))
    with pytest.raises(AttncError, match="names 2 outputs"):
        recover(
            None, compiled, calibration, steps=1, heldout_inputs=heldout, progress=False, output_kinds=("logits", "mse")
        )


def test_built_in_sentences_are_disjoint():
    assert not set(CALIBRATION_SENTENCES) & set(HELDOUT_SENTENCES)
    assert len(CALIBRATION_SENTENCES) >= 48 and len(HELDOUT_SENTENCES) >= 16


def test_bad_input_is_a_clean_error(vit_batches):
    calibration, heldout = vit_batches
    softmax_only = compile_model("vit-tiny", "attn-raise")
    with pytest.raises(AttncError, match="no cosine attention"):
        recover(None, softmax_only, calibration, steps=1, heldout_inputs=heldout, progress=False)
    compiled = fresh_vit()
    wrong = [(torch.randn(2, 1, 8, 8),)]
    with pytest.raises(AttncError, match="compiled for"):
        recover(None, compiled, wrong, steps=1, heldout_inputs=heldout, progress=False)
    with pytest.raises(AttncError, match="steps"):
        recover(None, compiled, calibration, steps=-1, heldout_inputs=heldout, progress=False)


def test_cli_recover_prints_table_and_saves(tmp_path):
    result = subprocess.run(
        [ATTNC, "recover", "vit-tiny", "--steps", "5", "--calibration-batches", "2", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "held-out loss" in result.stdout and "before" in result.stdout
    assert "blocks.0.attn.cosine_m" in load_file(str(tmp_path / "out" / "weights.safetensors"))
    bad = subprocess.run([ATTNC, "recover", "vit-tiny", "--steps", "0"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1 and "attnc: error: --steps" in bad.stderr
