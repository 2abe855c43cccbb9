"""compiler/training.py and ``attnc train``: the compiled trainer equals torch.optim.SGD on the reference target,
learns on the TinyCL target at 16/8 (deterministically per seed) with a cost per phase, and the CLI writes
weights that reproduce its reported accuracy in another process."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from compiler.errors import AttncError
from compiler.models import PatchClassifier
from compiler.training import compiled_trainer, fresh_state, training_data

TINYCL_16_8 = {"total-bits": "16", "frac-bits": "8"}


@pytest.fixture(scope="module")
def digits():
    return training_data("patch-digits")


def accuracy(trainer, x, y) -> float:
    return float((trainer.predict(x) == y).float().mean())


def test_reference_epoch_equals_torch_sgd(digits):
    """One epoch of 96 images in 6 batches of 16 (momentum carried across steps) = torch.optim.SGD on the model."""
    model, example, (x, y, _, _) = digits
    x, y = x[:96], y[:96]
    trainer = compiled_trainer(model, example, "reference", lr=0.02, momentum=0.9)
    trainer.reset(3)
    loss = trainer.train_epoch(x, y, batch_size=16, seed=5)
    twin = copy.deepcopy(model)
    twin.load_state_dict(fresh_state(model, 3))
    optimiser = torch.optim.SGD(twin.parameters(), lr=0.02, momentum=0.9)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(5))
    losses = []
    for start in range(0, len(x), 16):
        rows = order[start : start + 16]
        step_loss = torch.nn.functional.cross_entropy(twin(x[rows]), y[rows])
        optimiser.zero_grad()
        step_loss.backward()
        optimiser.step()
        losses.append(float(step_loss.detach()))
    assert abs(loss - sum(losses) / len(losses)) < 1e-5
    trained = trainer.state_dict()  # type: ignore[attr-defined]
    for key, value in twin.state_dict().items():
        assert torch.allclose(trained[key], value, atol=1e-5, rtol=0), key
    assert trainer.epoch_cost() is None  # the reference target has no cost model


def test_reset_draws_fresh_parameters_per_seed(digits):
    model, example, _ = digits
    first, again, other = fresh_state(model, 0), fresh_state(model, 0), fresh_state(model, 1)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["head.weight"], other["head.weight"])
    assert not torch.equal(first["pos_embedding"], model.state_dict()["pos_embedding"])  # not the model's own values


def test_a_module_without_reset_parameters_is_a_clear_error():
    class Scale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = torch.nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.gain

    with pytest.raises(AttncError, match=r"cannot re-initialise 'Scale' \(Scale\): it owns parameters"):
        fresh_state(Scale(), 0)


@pytest.mark.parametrize("target, options, message", [
    ("gpu", None, "unknown training target 'gpu'"),
    ("reference", {"total-bits": "8"}, "the reference target takes no options"),
])
def test_bad_trainer_arguments(digits, target, options, message):
    model, example, _ = digits
    with pytest.raises(AttncError, match=message):
        compiled_trainer(model, example, target, target_options=options)


def test_tinycl_16_8_epoch_learns_with_a_cost_per_phase(digits):
    """A whole epoch (1297 digits) of compiled training steps on the 16/8 fixed-point array: held-out accuracy
    goes from chance to above 80 %; the epoch's cost is the steps' cost model, split by phase."""
    model, example, (x, y, x_test, y_test) = digits
    trainer = compiled_trainer(model, example, "tinycl", lr=0.02, momentum=0.9, target_options=TINYCL_16_8, batch_size=16)
    trainer.reset(0)
    before = accuracy(trainer, x_test, y_test)
    seen = []
    trainer.train_epoch(x, y, batch_size=16, seed=0, progress=lambda done, total: seen.append((done, total)))
    after = accuracy(trainer, x_test, y_test)
    assert before < 0.2 and after > 0.8, (before, after)
    assert seen[-1] == (82, 82)
    cost = trainer.epoch_cost()
    assert cost is not None and cost["steps"] == 82
    for phase in ("forward", "input-gradient", "weight-gradient"):
        assert cost[f"{phase} macs"] > 0 and cost[f"{phase} cycles"] > 0
    assert cost["update cycles"] > 0 and cost["update macs"] == 0
    phases = sum(cost[f"{p} macs"] for p in ("forward", "input-gradient", "weight-gradient", "update"))
    assert phases == cost["MACs"]


def test_tinycl_training_is_deterministic_per_seed(digits):
    model, example, (x, y, _, _) = digits
    trainer = compiled_trainer(model, example, "tinycl", lr=0.02, momentum=0.9, target_options=TINYCL_16_8, batch_size=16)

    def run(seed: int) -> dict[str, torch.Tensor]:
        trainer.reset(seed)
        trainer.train_epoch(x[:64], y[:64], batch_size=16, seed=seed)
        return trainer.state_dict()  # type: ignore[attr-defined]

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_attnc_train_writes_weights_that_reproduce_its_accuracy(tmp_path):
    """Through the CLI in a subprocess: one epoch improves held-out accuracy clearly; results.json says so and the
    trained weights, loaded into the PyTorch model here, give the accuracy it reports."""
    out = tmp_path / "trained"
    done = subprocess.run(
        [sys.executable, "-m", "compiler.cli.main", "train", "patch-digits", "--target", "reference", "--epochs", "1",
         "-o", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1: mean loss" in done.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["accuracy_before"] < 0.2 and results["accuracy_after"] > 0.8, results
    assert results["epoch_costs"] == [None] and results["train_samples"] == 1297
    model = PatchClassifier()
    model.load_state_dict(load_file(out / "weights.safetensors"))
    _, _, (_, _, x_test, y_test) = training_data("patch-digits")
    with torch.no_grad():
        reloaded = float((model(x_test).argmax(-1) == y_test).float().mean())
    assert abs(reloaded - results["accuracy_after"]) <= 2 / len(y_test)


def test_attnc_train_errors_are_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "compiler.cli.main", "train", "minilm", "-o", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "attnc: error: no data set for 'minilm': attnc train knows vit-digits, vit-tiny, patch-digits"
    ]
