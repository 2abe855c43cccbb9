"""Runs torch-mlir IR on torch-mlir's reference CPU backend: the check that an export means what attnc means.

The module is lowered with torch-mlir's own pipelines (``torch-function-to-torch-backend-pipeline``, then
``torch-backend-to-linalg-on-tensors-backend-pipeline``), then from linalg-on-tensors to LLVM with the
passes torch-mlir's reference backend registers (``refback-*``, ``tm-tensor-to-loops``) and upstream MLIR's,
and JIT-compiled by MLIR's ExecutionEngine. ``refback-munge-calling-conventions`` turns each function into
one that takes unranked memrefs and hands its results to a callback named after their element types
(``refbackend_consume_func_return_mrf32_mri64``), which this module registers.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Sequence

import numpy as np
import torch

from compiler.errors import AttncError, one_line

TO_BACKEND = "builtin.module(torch-function-to-torch-backend-pipeline)"
TO_LINALG = "builtin.module(torch-backend-to-linalg-on-tensors-backend-pipeline)"
TO_LLVM = "builtin.module(" + ",".join([
    "func.func(refback-generalize-tensor-pad)", "func.func(refback-generalize-tensor-concat)",
    "func.func(linalg-generalize-named-ops)", "func.func(linalg-fuse-elementwise-ops)", "convert-shape-to-std",
    "func.func(tm-tensor-bufferize)",
    "one-shot-bufferize{copy-before-write bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map}",
    "refback-munge-calling-conventions", "func.func(tm-tensor-to-loops)", "func.func(refback-munge-memref-copy)",
    "func.func(convert-linalg-to-loops)", "func.func(lower-affine)", "convert-scf-to-cf",
    "func.func(refback-expand-ops-for-llvm)", "func.func(arith-expand)", "func.func(convert-math-to-llvm)",
    "convert-math-to-libm", "expand-strided-metadata", "finalize-memref-to-llvm", "lower-affine",
    "convert-bufferization-to-memref", "finalize-memref-to-llvm", "func.func(convert-arith-to-llvm)",
    "convert-vector-to-llvm", "convert-func-to-llvm", "convert-cf-to-llvm", "convert-complex-to-llvm",
    "reconcile-unrealized-casts",
]) + ")"
_NUMPY = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "i64": np.int64, "i32": np.int32, "i1": np.bool_}


def lower_to_linalg(text: str) -> str:
    """torch-mlir IR lowered by torch-mlir's ``torch-backend-to-linalg-on-tensors-backend-pipeline``."""
    from compiler.torch_mlir_export import parse_torch_mlir

    module = parse_torch_mlir(text)
    with module.context:
        run_pipeline(module, TO_BACKEND)
        run_pipeline(module, TO_LINALG)
    return str(module)


def run_pipeline(module, pipeline: str) -> None:
    from torch_mlir import passmanager

    try:
        passmanager.PassManager.parse(pipeline).run(module.operation)
    except Exception as error:
        raise AttncError(f"torch-mlir cannot lower the module ({pipeline}): {one_line(error)}") from None


def run_on_refbackend(text: str, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Lowers torch-mlir IR to LLVM, JIT-compiles ``@main`` and runs it on ``inputs`` (in argument order)."""
    from torch_mlir.execution_engine import ExecutionEngine
    from torch_mlir.runtime import np_to_memref

    from compiler.torch_mlir_export import parse_torch_mlir

    module = parse_torch_mlir(text)
    with module.context:
        for pipeline in (TO_BACKEND, TO_LINALG, TO_LLVM):
            run_pipeline(module, pipeline)
        callback_name = re.findall(r"refbackend_consume_func_return\w*", str(module))[0]
        engine = ExecutionEngine(module, opt_level=2)
    element_types = [t.removeprefix("mr") for t in callback_name.removeprefix("refbackend_consume_func_return_").split("_")]
    results: list[np.ndarray] = []

    def consume(*memrefs) -> None:
        for memref, element in zip(memrefs, element_types):
            results.append(np_to_memref.unranked_memref_to_numpy(memref, _NUMPY[element]).copy())

    descriptor = ctypes.POINTER(np_to_memref.UnrankedMemRefDescriptor)
    callback = ctypes.CFUNCTYPE(None, *[descriptor] * len(element_types))(consume)
    engine.register_runtime(callback_name, callback)
    arrays = [np.ascontiguousarray(t.detach().cpu().numpy()) for t in inputs]
    arguments = [ctypes.pointer(ctypes.pointer(np_to_memref.get_unranked_memref_descriptor(a))) for a in arrays]
    engine.invoke("main", *arguments)
    return [torch.from_numpy(r) for r in results]
