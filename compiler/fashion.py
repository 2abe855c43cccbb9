"""Fashion-MNIST for the bundled ``vit-fashion`` classifier: the idx files, the splits, and shipped samples.

The full data set is not shipped. It is read from the idx.gz files of the Debian package
``dataset-fashion-mnist`` (``apt-get download dataset-fashion-mnist && dpkg-deb -x dataset-fashion-mnist_*.deb DIR``),
found under ``$ATTNC_FASHION_MNIST`` or ``/usr/share/datasets/fashion-mnist``. A slice of the test split
(:data:`SAMPLES` images, raw uint8 pixels and labels) ships in ``compiler/assets`` so that the model's
example inputs and its tests never need the package.

Splits: the last :data:`VALIDATION_SIZE` images of the official training set are held out as a validation
split (used to choose hyper-parameters of experiments, never trained on); the official 10,000-image test
split is the test split. Pixels are scaled to [0, 1] (``pixel / 255``).
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import torch

from compiler.errors import AttncError

ENVIRONMENT_VARIABLE = "ATTNC_FASHION_MNIST"
DEFAULT_DIRECTORY = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
VALIDATION_SIZE = 5000
SAMPLES = 256  # the first test images, shipped
SAMPLES_FILE = "fashion_samples.safetensors"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def data_directory() -> Path | None:
    """Where the idx.gz files are (``$ATTNC_FASHION_MNIST``, else the Debian package's path), or None."""
    for candidate in (os.environ.get(ENVIRONMENT_VARIABLE), DEFAULT_DIRECTORY):
        if candidate and all((Path(candidate) / name).is_file() for pair in FILES.values() for name in pair):
            return Path(candidate)
    return None


def _read_idx(path: Path) -> torch.Tensor:
    """An idx file (gzip-compressed) as a uint8 tensor of its declared shape."""
    data = gzip.decompress(path.read_bytes())
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise AttncError(f"{path}: not an idx file of unsigned bytes")
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).reshape(shape)


def raw_split(name: str, directory: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images uint8 (N, 28, 28), labels int64 (N,))`` of the official ``train`` or ``test`` split."""
    directory = directory or data_directory()
    if directory is None:
        raise AttncError(
            f"Fashion-MNIST not found: set {ENVIRONMENT_VARIABLE} to the directory of its idx.gz files "
            "(Debian package dataset-fashion-mnist)"
        )
    images_file, labels_file = FILES[name]
    return _read_idx(directory / images_file), _read_idx(directory / labels_file).to(torch.int64)


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` pixels to what the model sees: float32 ``(N, 1, 28, 28)`` in [0, 1]."""
    return images.to(torch.float32).div(255.0).unsqueeze(1)


def splits(directory: Path | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"train", "validation", "test"}`` -> (model inputs, labels); validation = the last 5,000 training images."""
    train_images, train_labels = raw_split("train", directory)
    test_images, test_labels = raw_split("test", directory)
    cut = len(train_labels) - VALIDATION_SIZE
    return {
        "train": (to_model_input(train_images[:cut]), train_labels[:cut]),
        "validation": (to_model_input(train_images[cut:]), train_labels[cut:]),
        "test": (to_model_input(test_images), test_labels),
    }


def shipped_samples() -> tuple[torch.Tensor, torch.Tensor]:
    """The first :data:`SAMPLES` test images and labels, shipped with the package: (model inputs, labels)."""
    from importlib.resources import files

    from safetensors.torch import load as load_safetensors

    tensors = load_safetensors(files("compiler").joinpath("assets", SAMPLES_FILE).read_bytes())
    return to_model_input(tensors["images"]), tensors["labels"].to(torch.int64)


def test_images(count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` test images and labels: from the data set when present, else the shipped samples
    (then at most :data:`SAMPLES`; asking for more without the data set is an error, not a silent cut)."""
    if data_directory() is not None:
        images, labels = raw_split("test")
        count = len(labels) if count is None else count
        return to_model_input(images[:count]), labels[:count]
    images, labels = shipped_samples()
    count = len(labels) if count is None else count
    if count > len(labels):
        raise AttncError(f"only {len(labels)} Fashion-MNIST test images ship; set {ENVIRONMENT_VARIABLE} for more")
    return images[:count], labels[:count]
