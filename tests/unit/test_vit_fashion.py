"""The shipped ``vit-fashion`` classifier (DeiT-style, Fashion-MNIST) and the Fashion-MNIST reader.

The data set itself is not needed: the tests use the shipped test slice (compiler/fashion.py), or the
same first test images from the data set when it is installed.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from compiler import fashion
from compiler.api import compile_model, flat_tensors, max_abs_error
from compiler.errors import AttncError
from compiler.models import BUNDLED, vit_fashion_record
from compiler.report import attention_blocks

ROOT = Path(__file__).resolve().parents[2]
MIN_ACCURACY = 0.8  # far above chance (0.1), below what training recorded: catches wrong weights or scaling
RECORD = vit_fashion_record()


@pytest.fixture(scope="module")
def samples():
    return fashion.test_images(fashion.SAMPLES)


def test_record_describes_a_deit_style_model_of_the_asked_size():
    config = RECORD["config"]
    assert (config["depth"], config["heads"], config["image_size"], config["patch_size"]) == (6, 3, 28, 7)
    assert config["mlp_dim"] == 4 * config["dim"]
    assert RECORD["accuracy"]["test"] >= 0.85 and RECORD["split"]["validation"] == fashion.VALIDATION_SIZE


def test_shipped_model_classifies_the_test_slice(samples):
    images, labels = samples
    model, (examples,) = BUNDLED["vit-fashion"]()
    assert images.shape == (fashion.SAMPLES, 1, 28, 28) and 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    with torch.no_grad():
        accuracy = (model(images).argmax(-1) == labels).float().mean().item()
    assert accuracy >= MIN_ACCURACY
    # the shipped weights are the ones the training run measured on the same images
    assert abs(accuracy - RECORD["accuracy"]["shipped_samples"]) <= 1 / fashion.SAMPLES + 1e-9
    assert torch.equal(examples, images[: len(examples)])


def test_shipped_slice_is_the_first_test_images_of_the_data_set(samples):
    images, labels = fashion.shipped_samples()
    assert torch.equal(images, samples[0]) and torch.equal(labels, samples[1])
    assert torch.bincount(labels, minlength=10).min() >= 10  # every class is there


def test_attn_raise_finds_every_block_and_matches_pytorch():
    compiled = compile_model("vit-fashion", "attn-raise")
    assert [path for path, _, _ in attention_blocks(compiled.module)] == [f"blocks.{i}.attn" for i in range(6)]
    with torch.no_grad():
        reference = flat_tensors(compiled.reference(*compiled.inputs))
    assert max_abs_error(compiled.run(), reference) <= 1e-5


def write_idx(path: Path, data: torch.Tensor) -> None:
    header = struct.pack(">HBB", 0, 0x08, data.dim()) + struct.pack(f">{data.dim()}I", *data.shape)
    path.write_bytes(gzip.compress(header + data.numpy().tobytes()))


def test_reader_splits_idx_files_found_through_the_environment(tmp_path, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (fashion.VALIDATION_SIZE + 7, 28, 28), generator=generator, dtype=torch.uint8)
    test = torch.randint(0, 256, (5, 28, 28), generator=generator, dtype=torch.uint8)
    for (images_file, labels_file), images in zip(fashion.FILES.values(), (train, test)):
        write_idx(tmp_path / images_file, images)
        write_idx(tmp_path / labels_file, (torch.arange(len(images)) % 10).to(torch.uint8))
    monkeypatch.setenv(fashion.ENVIRONMENT_VARIABLE, str(tmp_path))
    splits = fashion.splits()
    assert [len(splits[name][1]) for name in ("train", "validation", "test")] == [7, fashion.VALIDATION_SIZE, 5]
    assert torch.equal(splits["validation"][0][0, 0], train[7].float() / 255)  # validation = the last training images
    assert splits["test"][1].dtype == torch.int64
    images, labels = fashion.test_images(3)
    assert torch.equal(images[:, 0], test[:3].float() / 255) and labels.tolist() == [0, 1, 2]


def test_reader_without_data_uses_the_shipped_slice_and_refuses_more(tmp_path, monkeypatch):
    monkeypatch.setenv(fashion.ENVIRONMENT_VARIABLE, str(tmp_path))
    monkeypatch.setattr(fashion, "DEFAULT_DIRECTORY", str(tmp_path / "absent"))
    images, _ = fashion.test_images(10)
    assert torch.equal(images, fashion.shipped_samples()[0][:10])
    with pytest.raises(AttncError, match="only 256 Fashion-MNIST test images ship"):
        fashion.test_images(fashion.SAMPLES + 1)
    with pytest.raises(AttncError, match="Fashion-MNIST not found"):
        fashion.splits()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">HBB", 0, 0x0D, 1)))
    with pytest.raises(AttncError, match="not an idx file"):
        fashion._read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz")


def test_assets_ship_as_package_data():
    for name in (fashion.SAMPLES_FILE, "vit_fashion.safetensors", "vit_fashion.json"):
        path = ROOT / "compiler" / "assets" / name
        assert path.is_file() and path.stat().st_size < 1_000_000
