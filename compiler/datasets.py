"""Image classification data for class-incremental runs: scikit-learn's digits and Fashion-MNIST.

Fashion-MNIST (70,000 28×28 images, 10 classes) comes from the Debian package ``dataset-fashion-mnist``: fetched
once with ``apt-get download`` and unpacked with ``dpkg-deb`` into the cache directory (``$ATTNC_CACHE`` or
``~/.cache/attnc``), never into the repository. Digits ship in scikit-learn's wheel.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from compiler.errors import AttncError

DATASETS = ("digits", "fashion-mnist")
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_DIR_IN_PACKAGE = Path("usr/share/datasets/fashion-mnist")
FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class ImageDataset:
    """Train and test images ``(N, 1, H, W)`` float32 in [0, 1] with int64 labels ``0 .. num_classes-1``."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int = 10

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])


def cache_dir() -> Path:
    """Where downloaded data lives: ``$ATTNC_CACHE`` or ``~/.cache/attnc``."""
    return Path(os.environ.get("ATTNC_CACHE") or Path.home() / ".cache" / "attnc")


def fashion_mnist_dir() -> Path:
    """The directory holding Fashion-MNIST's four idx.gz files, fetching the Debian package on first use."""
    target = cache_dir() / "fashion-mnist"
    if all((target / name).is_file() for name in FASHION_FILES.values()):
        return target
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise AttncError(
            f"Fashion-MNIST is not cached in {target} and this system has no apt-get/dpkg-deb to fetch the Debian "
            f"package '{FASHION_PACKAGE}': put {', '.join(FASHION_FILES.values())} there, or use --data digits"
        )
    with tempfile.TemporaryDirectory() as scratch:
        fetched = subprocess.run(["apt-get", "download", FASHION_PACKAGE], cwd=scratch, capture_output=True, text=True)
        packages = list(Path(scratch).glob(f"{FASHION_PACKAGE}_*.deb"))
        if fetched.returncode != 0 or not packages:
            reason = (fetched.stderr.strip().splitlines() or ["no package file"])[-1]
            raise AttncError(f"could not fetch Fashion-MNIST (apt-get download {FASHION_PACKAGE}): {reason}")
        unpacked = Path(scratch) / "root"
        subprocess.run(["dpkg-deb", "-x", str(packages[0]), str(unpacked)], check=True, capture_output=True)
        target.mkdir(parents=True, exist_ok=True)
        for name in FASHION_FILES.values():
            shutil.copyfile(unpacked / FASHION_DIR_IN_PACKAGE / name, target / name)
    return target


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip-compressed, unsigned bytes): the magic number gives the rank, then one size per dimension."""
    data = gzip.decompress(path.read_bytes())
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise AttncError(f"{path}: not an idx file of unsigned bytes")
    rank = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def fashion_mnist() -> ImageDataset:
    directory = fashion_mnist_dir()
    arrays = {key: read_idx(directory / name) for key, name in FASHION_FILES.items()}

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64))

    return ImageDataset(
        "fashion-mnist",
        images(arrays["train_images"]),
        labels(arrays["train_labels"]),
        images(arrays["test_images"]),
        labels(arrays["test_labels"]),
    )


def digits() -> ImageDataset:
    from compiler.models import digits_split

    return ImageDataset("digits", *digits_split())


def per_class_subset(x: torch.Tensor, y: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``per_class`` samples of every class, drawn by ``seed``, in their original order."""
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for label in torch.unique(y).tolist():
        indices = torch.nonzero(y == label).flatten()
        keep.append(indices[torch.randperm(len(indices), generator=generator)[:per_class]])
    chosen = torch.cat(keep).sort().values
    return x[chosen], y[chosen]


def load_dataset(name: str, train_per_class: int | None = None, test_per_class: int | None = None,
                 seed: int = 0) -> ImageDataset:
    """A data set by name, optionally cut to a number of samples per class (to size runs to a CPU)."""
    if name not in DATASETS:
        raise AttncError(f"unknown data set '{name}' (known: {', '.join(DATASETS)})")
    data = digits() if name == "digits" else fashion_mnist()
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    if train_per_class is not None:
        x_train, y_train = per_class_subset(x_train, y_train, train_per_class, seed)
    if test_per_class is not None:
        x_test, y_test = per_class_subset(x_test, y_test, test_per_class, seed + 1)
    return ImageDataset(data.name, x_train, y_train, x_test, y_test, data.num_classes)


def class_incremental_tasks(num_classes: int, tasks: int, classes_per_task: int = 2) -> list[tuple[int, ...]]:
    """The classes of each task, consecutive groups: 5 tasks of 2 are (0, 1), (2, 3), ..., (8, 9); fewer tasks
    take the first groups (2 tasks: classes 0 to 3)."""
    if tasks < 1 or classes_per_task < 1 or tasks * classes_per_task > num_classes:
        raise AttncError(f"{tasks} tasks of {classes_per_task} classes need more than the {num_classes} classes there are")
    return [tuple(range(t * classes_per_task, (t + 1) * classes_per_task)) for t in range(tasks)]
