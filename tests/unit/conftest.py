"""Shared fixtures: bundled models compiled once per session (export is the slow part)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if "ATTNC_CHIP_CACHE" not in os.environ:  # the crossbar's on-disk chip store: a fresh one per test session
    _chip_store = tempfile.mkdtemp(prefix="attnc-chips-")
    atexit.register(shutil.rmtree, _chip_store, True)
    os.environ["ATTNC_CHIP_CACHE"] = _chip_store


@pytest.fixture(scope="session")
def exported():
    """name -> (model, inputs, exported program), built lazily and cached."""
    import torch

    from compiler.api import export_model, load_spec

    cache = {}

    def get(name: str):
        if name not in cache:
            spec = load_spec(name)
            with torch.no_grad():
                reference = spec.model(*spec.inputs)
            cache[name] = (spec, export_model(spec), reference)
        return cache[name]

    return get
