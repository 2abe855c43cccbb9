"""attn-prune: the masks of each method against direct references, exact sparsity, the learned objective, the
pruned model through the executor vs PyTorch, calibration files, and the record surviving save/load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from compiler.api import CompiledModel, apply_passes, calibration_batches, parse_module, parse_pipeline
from compiler.errors import AttncError
from compiler.frontend.fx_importer import import_exported_program
from dialects import nn
from dialects.projections import prune_record
from fitting.prune import prune_pending
from fitting.prune_masks import input_norms, keep_mask, magnitude_scores, sparsegpt, wanda_scores
from runtime.executor import Executor

ATTNC = str(Path(sys.executable).with_name("attnc"))


def reference_row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Per row, zero the round(sparsity·columns) smallest scores (sorting each row, not topk)."""
    keep = torch.ones_like(scores, dtype=torch.bool)
    rows, columns = scores.shape
    total = round(sparsity * rows * columns)
    for row in range(rows):
        drop = round(total * (row + 1) / rows) - round(total * row / rows)
        order = sorted(range(columns), key=lambda j: float(scores[row, j]))
        keep[row, order[:drop]] = False
    return keep


@pytest.mark.parametrize("sparsity", [0.5, 0.7, 0.9])
def test_magnitude_and_wanda_match_a_direct_reference(sparsity):
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(24, 40, generator=generator)
    x = torch.randn(300, 40, generator=generator) * torch.linspace(0.1, 3.0, 40)
    assert torch.equal(keep_mask(magnitude_scores(weight), sparsity, "unstructured"), reference_row_mask(weight.abs(), sparsity))
    direct = weight.abs() * torch.sqrt((x**2).sum(dim=0))[None, :]
    wanda = keep_mask(wanda_scores(weight, input_norms(x)), sparsity, "unstructured")
    assert torch.equal(wanda, reference_row_mask(direct, sparsity))
    assert not torch.equal(wanda, keep_mask(magnitude_scores(weight), sparsity, "unstructured"))  # X matters


def test_two_of_four_keeps_the_two_largest_of_every_group():
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.1, 0.4, 0.3, 0.2]])
    assert keep_mask(scores, 0.5, "2:4").tolist() == [[True, False, True, False, False, True, True, False]]


def test_sparsegpt_reconstructs_a_layer_better_than_wanda():
    generator = torch.Generator().manual_seed(2)
    mixing = torch.eye(128) + 0.03 * torch.randn(128, 128, generator=generator)  # features of unequal scale, correlated
    x = (torch.randn(2000, 128, generator=generator) * torch.linspace(0.2, 3.0, 128)) @ mixing
    weight = torch.randn(96, 128, generator=generator)
    hessian = x.T.double() @ x.double() / x.shape[0]
    for granularity, sparsity in (("unstructured", 0.5), ("unstructured", 0.7), ("2:4", 0.5)):
        pruned = sparsegpt(weight, hessian, sparsity, granularity, block_size=64)
        wanda = weight * keep_mask(wanda_scores(weight, input_norms(x)), sparsity, granularity)
        error_sparsegpt = (x @ (weight - pruned).T).norm()
        error_wanda = (x @ (weight - wanda).T).norm()
        assert error_sparsegpt < error_wanda, (granularity, sparsity)
        assert int((pruned == 0).sum()) == round(sparsity * 96 * 128)
        assert set((pruned == 0).sum(dim=1).tolist()) <= {int(sparsity * 128), int(sparsity * 128) + 1}
        if granularity == "2:4":
            assert ((pruned.reshape(96, 32, 4) != 0).sum(dim=2) == 2).all()


TOY = """
func.func @main(%x: tensor<4x12x32xf32>, %m: tensor<4x1x12x12xf32>) -> tensor<4x4x12x8xf32> {
  %wq = nn.param @attn.query.weight : tensor<32x32xf32>
  %bq = nn.param @attn.query.bias : tensor<32xf32>
  %q0 = nn.linear %x, %wq, %bq : (tensor<4x12x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<4x12x32xf32>
  %q1 = nn.reshape %q0 : (tensor<4x12x32xf32>) -> tensor<4x12x4x8xf32>
  %q = nn.transpose %q1 {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<4x12x4x8xf32>) -> tensor<4x4x12x8xf32>
  %wk = nn.param @attn.key.weight : tensor<32x32xf32>
  %k0 = nn.linear %x, %wk : (tensor<4x12x32xf32>, tensor<32x32xf32>) -> tensor<4x12x32xf32>
  %k1 = nn.reshape %k0 : (tensor<4x12x32xf32>) -> tensor<4x12x4x8xf32>
  %k = nn.transpose %k1 {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<4x12x4x8xf32>) -> tensor<4x4x12x8xf32>
  %o = attn.sdpa %q, %k, %k mask %m {scale = 0.35 : f64, causal = false}
     : (tensor<4x4x12x8xf32>, tensor<4x4x12x8xf32>, tensor<4x4x12x8xf32>, tensor<4x1x12x12xf32>) -> tensor<4x4x12x8xf32>
     loc("attn")
  func.return %o : tensor<4x4x12x8xf32>
}
"""


def toy_batches(seed: int, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.2, 2.5, 32)
    batches = []
    for _ in range(count):
        x = torch.randn(4, 12, 32, generator=generator) * scales
        mask = torch.zeros(4, 1, 12, 12)
        mask[1, :, :, 9:] = -1e9  # one padded sequence
        batches.append((x, mask))
    return batches


def toy_weights() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return {
        "attn.query.weight": torch.randn(32, 32, generator=generator) * 0.4,
        "attn.query.bias": torch.randn(32, generator=generator) * 0.1,
        "attn.key.weight": torch.randn(32, 32, generator=generator) * 0.4,
    }


def attention_probs(module, weights, batch) -> torch.Tensor:
    """The toy's attention matrix, read off the executor's own q and k."""
    seen = {}

    class Grab:
        def will_interpret_op(self, op, args):
            if op.name == "attn.sdpa":
                seen["q"], seen["k"], seen["m"] = args[0], args[1], args[3]

        def did_interpret_op(self, op, results):
            pass

    with torch.no_grad():
        Executor(module, weights, listeners=(Grab(),))(*batch)
    return torch.softmax(seen["q"] @ seen["k"].transpose(-1, -2) * 0.35 + seen["m"], dim=-1)


def pruned_toy(pipeline: str, calibration):
    module = parse_module(TOY)
    apply_passes(module, parse_pipeline(pipeline))
    weights = toy_weights()
    report = prune_pending(module, weights, calibration)
    return module, weights, report


def heldout_error(module, weights, batches) -> float:
    dense = toy_weights()
    errors = []
    for batch in batches:
        reference = attention_probs(module, dense, batch)
        errors.append((attention_probs(module, weights, batch) - reference).norm() / reference.norm())
    return float(torch.stack(errors).mean())


def test_learned_objective_decreases_and_beats_wanda_on_a_toy():
    calibration = toy_batches(10, 4)
    _, _, report = pruned_toy("attn-prune{method=learned sparsity=0.7 steps=150 lr=0.05}", calibration)
    losses = report.losses["attn"]
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])
    wanda_mask_loss, learned_mask_loss = report.calibration_loss["attn"]
    assert learned_mask_loss < 0.9 * wanda_mask_loss
    wanda_module, wanda, _ = pruned_toy("attn-prune{method=wanda sparsity=0.7}", calibration)
    learned_module, learned, _ = pruned_toy("attn-prune{method=learned sparsity=0.7 steps=150 lr=0.05}", calibration)
    assert heldout_error(learned_module, learned, calibration) < heldout_error(wanda_module, wanda, calibration)


def test_projected_relaxation_trades_attention_error_for_the_penalty():
    """The paper's form: M in [0, 1] from M = 1, where the attention error is 0 and only λ moves M."""
    _, _, report = pruned_toy("attn-prune{method=learned relaxation=projected sparsity=0.5 steps=60 lr=0.02 reg=0.1}",
                              toy_batches(10, 2))
    losses = report.losses["attn"]
    assert abs(losses[0] - 0.1) < 1e-6  # ½λ(mean M_Q² + mean M_K²) = λ at M = 1
    assert min(losses) < losses[0] and losses[-1] < losses[0]  # at M = 1 only the penalty has a gradient


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt", "learned"])
@pytest.mark.parametrize(
    "sparsity,granularity", [(0.5, "unstructured"), (0.7, "unstructured"), (0.9, "unstructured"), (0.5, "2:4")]
)
def test_every_method_reaches_the_requested_sparsity_exactly(method, sparsity, granularity):
    options = f'method={method} sparsity={sparsity} granularity="{granularity}" steps=5'
    module, weights, report = pruned_toy(f"attn-prune{{{options}}}", toy_batches(5, 2))
    for name in ("attn.query.weight", "attn.key.weight"):
        zeros = (weights[name] == 0).sum(dim=1)
        assert int(zeros.sum()) == round(sparsity * 32 * 32)
        assert int(zeros.max() - zeros.min()) <= 1  # compared and counted per output row
        assert abs(report.sparsity[name] - sparsity) <= 0.005
    records = {op.key: prune_record(op) for op in module.walk() if isinstance(op, nn.ParamOp) and prune_record(op)}
    assert set(records) == {"attn.query.weight", "attn.key.weight"}
    assert all(r["status"] == "applied" and r["method"] == method for r in records.values())
    assert torch.equal(weights["attn.query.bias"], toy_weights()["attn.query.bias"])


def test_calibration_files_are_checked_and_name_the_tensor(tmp_path):
    names, example = ["input_ids", "attention_mask"], (torch.zeros(2, 5, dtype=torch.int64), torch.ones(2, 5, dtype=torch.int64))
    good = tmp_path / "good.safetensors"
    save_file({"input_ids": torch.arange(40).reshape(8, 5), "attention_mask": torch.ones(8, 5, dtype=torch.int64)}, str(good))
    batches = calibration_batches(str(good), names, example)
    assert len(batches) == 4 and all(b[0].shape == (2, 5) for b in batches)
    assert torch.equal(batches[1][0], torch.arange(10, 20).reshape(2, 5))
    cases = {
        "missing": ({"input_ids": torch.zeros(4, 5, dtype=torch.int64)}, "no calibration tensor 'attention_mask'"),
        "misnamed": (
            {"input_ids": torch.zeros(4, 5, dtype=torch.int64), "mask": torch.ones(4, 5, dtype=torch.int64)},
            "no calibration tensor 'attention_mask' for model input 'attention_mask' (it holds mask)",
        ),
        "shape": (
            {"input_ids": torch.zeros(4, 6, dtype=torch.int64), "attention_mask": torch.ones(4, 6, dtype=torch.int64)},
            "calibration tensor 'input_ids' has shape (4, 6)",
        ),
        "odd": (
            {"input_ids": torch.zeros(3, 5, dtype=torch.int64), "attention_mask": torch.ones(3, 5, dtype=torch.int64)},
            "'input_ids' holds 3 samples; need a positive multiple of the model's batch 2",
        ),
        "empty": ({}, "holds no tensors"),
    }
    for label, (tensors, message) in cases.items():
        path = tmp_path / f"{label}.safetensors"
        save_file(tensors, str(path))
        with pytest.raises(AttncError) as error:
            calibration_batches(str(path), names, example)
        assert message in str(error.value), (label, str(error.value))


def test_pruned_llama_runs_like_pytorch_with_the_pruned_weights(exported):
    """GQA and rotary embeddings: the executor on the pruned artifact equals the PyTorch model given the same weights."""
    spec, program, _ = exported("llama-tiny")
    imported = import_exported_program(program)
    apply_passes(imported.module, parse_pipeline("attn-raise,attn-prune{sparsity=0.7 steps=20}"))
    generator = torch.Generator().manual_seed(4)
    calibration = [(torch.randint(0, 256, spec.inputs[0].shape, generator=generator),) for _ in range(3)]
    report = prune_pending(imported.module, imported.weights, calibration)
    assert sorted(report.sparsity) == [f"lm.model.layers.{i}.self_attn.{p}_proj.weight" for i in (0, 1) for p in "kq"]
    assert imported.weights["lm.model.layers.0.self_attn.k_proj.weight"].shape == (32, 64)  # two KV heads
    model = spec.model
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    try:
        model.load_state_dict({**state, **{n: imported.weights[n] for n in report.sparsity}})
        with torch.no_grad():
            expected = model(*spec.inputs)
            got = Executor(imported.module, imported.weights)(*spec.inputs)[0]
        assert (got - expected).abs().max() <= 1e-4
        with torch.no_grad():
            dense = Executor(imported.module, {**imported.weights, **{n: state[n] for n in report.sparsity}})(*spec.inputs)[0]
        assert (dense - got).abs().max() > 1e-3  # the pruning did change the model
    finally:
        model.load_state_dict(state)


def test_pruned_artifact_through_the_cli_keeps_masks_and_record(tmp_path):
    calibration = tmp_path / "calibration.safetensors"
    save_file({"input_ids": torch.randint(0, 256, (6, 12), generator=torch.Generator().manual_seed(5))}, str(calibration))
    outdir = tmp_path / "out"
    result = subprocess.run(
        [ATTNC, "compile", "llama-tiny", "-p", 'attn-raise,attn-prune{method=wanda granularity="2:4"}',
         "--calibration", str(calibration), "-o", str(outdir)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    weights = load_file(str(outdir / "weights.safetensors"))
    for layer in (0, 1):
        for proj in ("q", "k"):
            groups = weights[f"lm.model.layers.{layer}.self_attn.{proj}_proj.weight"].reshape(-1, 4)
            assert ((groups != 0).sum(dim=1) == 2).all()
        assert (weights[f"lm.model.layers.{layer}.self_attn.v_proj.weight"] != 0).all()
    loaded = CompiledModel.load(outdir)
    records = {op.key: prune_record(op) for op in loaded.module.walk() if isinstance(op, nn.ParamOp) and prune_record(op)}
    assert len(records) == 4
    assert all(r["method"] == "wanda" and r["granularity"] == "2:4" and r["status"] == "applied" and r["achieved"] == 0.5
               for r in records.values())
    bad = tmp_path / "bad.safetensors"
    save_file({"ids": torch.zeros(2, 12, dtype=torch.int64)}, str(bad))
    failed = subprocess.run(
        [ATTNC, "compile", "llama-tiny", "-p", "attn-raise,attn-prune{method=wanda}", "--calibration", str(bad),
         "-o", str(tmp_path / "never")],
        capture_output=True, text=True, timeout=600,
    )
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("attnc: error: ")
    assert "no calibration tensor 'input_ids'" in failed.stderr
