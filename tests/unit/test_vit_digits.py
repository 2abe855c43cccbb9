"""The shipped ``vit-digits`` classifier: real accuracy on held-out digits, and exact through attn-raise."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest
import torch

from compiler.api import compile_model, flat_tensors, max_abs_error
from compiler.models import BUNDLED, digits_split, vit_digits_record
from compiler.report import attention_blocks, ops_by_dialect

ROOT = Path(__file__).resolve().parents[2]
# well below what the training run recorded, far above chance (0.1): catches a wrong split, scaling or weights
MIN_TEST_ACCURACY = 0.95
DEPTH = vit_digits_record()["config"]["depth"]


@pytest.fixture(scope="module")
def split():
    return digits_split()


@pytest.fixture(scope="module")
def compiled():
    return compile_model("vit-digits", "attn-raise")


def test_split_is_the_recorded_one(split):
    x_train, y_train, x_test, y_test = split
    recorded = vit_digits_record()["split"]
    assert len(y_train) == recorded["train"] and len(y_test) == recorded["test"]
    assert x_train.shape[1:] == x_test.shape[1:] == (1, 8, 8)
    assert x_train.dtype == x_test.dtype == torch.float32 and y_test.dtype == torch.int64
    assert 0.0 <= float(x_test.min()) and float(x_test.max()) <= 1.0
    # stratified: every class is held out in proportion
    assert torch.bincount(y_test, minlength=10).min() >= 45


def test_shipped_model_classifies_held_out_digits(split):
    model, (examples,) = BUNDLED["vit-digits"]()
    _, _, x_test, y_test = split
    with torch.no_grad():
        predictions = model(x_test).argmax(dim=-1)
    accuracy = (predictions == y_test).float().mean().item()
    assert accuracy >= MIN_TEST_ACCURACY
    # the shipped weights are the ones the training run measured (one image of slack for float differences)
    assert abs(accuracy - vit_digits_record()["accuracy"]["test"]) <= 1 / len(y_test) + 1e-9
    assert torch.equal(examples, x_test[: len(examples)])


def test_attn_raise_finds_every_block_and_matches_pytorch(compiled):
    blocks = attention_blocks(compiled.module)
    assert len(blocks) == DEPTH
    assert ops_by_dialect(compiled.module)["attn"] == DEPTH
    assert [path for path, _, _ in blocks] == [f"blocks.{i}.attn" for i in range(DEPTH)]

    with torch.no_grad():
        reference = flat_tensors(compiled.reference(*compiled.inputs))
    outputs = compiled.run()
    assert max_abs_error(outputs, reference) <= 1e-5
    assert torch.equal(outputs[0].argmax(dim=-1), reference[0].argmax(dim=-1))


def test_assets_are_package_data():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["compiler"]
    for name in ("vit_digits.safetensors", "vit_digits.json"):
        assert (ROOT / "compiler" / "assets" / name).is_file()
        assert any(fnmatch.fnmatch(f"assets/{name}", pattern) for pattern in patterns), name
