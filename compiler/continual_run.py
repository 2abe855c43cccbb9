"""One class-incremental run from the command line's choices: model, data, trainer, strategy; writes the results.

Targets: ``reference`` (the compiled training step in float) and ``tinycl`` (the compiled training step in fixed
point on the TinyCL array, with its cost model), both from compiler.training; ``torch`` is plain eager PyTorch
(the baseline, no compiler).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from compiler.continual import ContinualConfig, RichProgress, RunProgress, run_continual
from compiler.datasets import ImageDataset, load_dataset
from compiler.errors import AttncError

CL_SPECS = {"vit-cl": "softmax", "vit-cl-cosine": "cosine"}
TARGETS = ("reference", "tinycl", "torch")
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class RunChoices:
    spec: str = "vit-cl"
    target: str = "tinycl"
    target_options: dict[str, str] = field(default_factory=dict)
    data: str = "fashion-mnist"
    train_per_class: int | None = None
    test_per_class: int | None = None
    lr: float = 0.05
    momentum: float = 0.9


def model_factory(spec: str, data: ImageDataset):
    """A function building the spec's untrained model for the data's image size (parameters from torch's generator)."""
    from compiler.models import cl_vit_model

    if spec not in CL_SPECS:
        raise AttncError(f"class-incremental runs take the models {', '.join(CL_SPECS)}, not '{spec}'")
    return lambda: cl_vit_model(CL_SPECS[spec], data.image_size)


def make_trainer(choices: RunChoices, data: ImageDataset, batch_size: int):
    factory = model_factory(choices.spec, data)
    if choices.target == "torch":
        from compiler.torch_trainer import TorchTrainer

        return TorchTrainer(factory, lr=choices.lr, momentum=choices.momentum)
    if choices.target not in TARGETS:
        raise AttncError(f"unknown target '{choices.target}' for training (known: {', '.join(TARGETS)})")
    from compiler.training import compiled_trainer

    torch.manual_seed(0)
    return compiled_trainer(factory(), data.x_train[:batch_size].contiguous(), choices.target, lr=choices.lr,
                            momentum=choices.momentum, target_options=choices.target_options or None,
                            batch_size=batch_size)


def continual_run(choices: RunChoices, config: ContinualConfig, progress: RunProgress | None = None) -> dict:
    data = load_dataset(choices.data, choices.train_per_class, choices.test_per_class, seed=config.seed)
    trainer = make_trainer(choices, data, config.batch_size)
    results = run_continual(trainer, data, config, progress)
    return {"spec": choices.spec, "target": choices.target, "target_options": choices.target_options,
            "lr": choices.lr, "momentum": choices.momentum, **results}


def run_and_write(choices: RunChoices, config: ContinualConfig, out: Path, show_progress: bool = True) -> dict:
    """Runs with progress bars on stderr and writes ``results.json`` into the directory ``out``."""
    from compiler.artifacts import check_output_directory, write_directory

    check_output_directory(out)
    progress = RichProgress() if show_progress else None
    try:
        results = continual_run(choices, config, progress)
    finally:
        if progress is not None:
            progress.close()
    def write_results(directory: Path) -> None:
        (directory / RESULTS_FILE).write_text(json.dumps(results, indent=1) + "\n")

    write_directory(out, write_results)
    return results
