"""Torch implementations of the ``abft`` dialect: the checked kernels, the fault policy and the detection log.

An :class:`AbftFunctions` instance is registered with every executor. It runs ``abft.sdpa`` and
``abft.linear`` through runtime/abft_kernels.py, hands an optional fault injector's hook to the kernels,
and applies each op's ``on_fault``: ``raise`` stops the run with :class:`FaultDetected` (module path and
invariants named), ``recompute`` re-executes the failing block of query rows (or the layer) without the
transient fault and returns the fault-free output, ``count`` records the detection and goes on. Every
detection is appended to ``detections``, whatever the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls

from dialects import abft
from dialects.diagnostics import AttncError
from dialects.locations import module_path_of
from runtime.abft_kernels import KernelResult, LinearEncoding, attention_rows, blockwise_attention, checked_linear


class FaultDetected(AttncError):
    """A checked op found its invariant violated and its policy is ``raise`` (or a recompute failed again)."""

    def __init__(self, detection: Detection, message: str | None = None):
        self.detection = detection
        super().__init__(message or f"abft: fault detected {detection.describe()}")


@dataclass(frozen=True)
class Detection:
    """One violated check: the op's module path, the invariants that fired, how many checks failed (one per
    query row and invariant for attention, per row or column for a linear), what was done."""

    location: str
    op: str
    invariants: tuple[str, ...]
    failed_checks: int
    action: str

    def describe(self) -> str:
        where = self.location or "<unknown>"
        return f"at '{where}' ({self.op}) by {', '.join(self.invariants)} ({self.failed_checks} failed checks); {self.action}"


@register_impls
@dataclass(eq=False)
class AbftFunctions(InterpreterFunctions):
    """Checked ops; ``injector`` (``visit(site, tensor, location)``) corrupts values, ``on_fault`` overrides the
    ops' policy, ``keep_residuals`` records each invariant's largest relative residual per op (calibration)."""

    injector: Any = None
    on_fault: str | None = None
    keep_residuals: bool = False
    detections: list[Detection] = field(default_factory=list)
    residuals: dict[str, dict[str, float]] = field(default_factory=dict)
    _encodings: dict[int, tuple[int, LinearEncoding]] = field(default_factory=dict)

    def _hook(self, location: str):
        if self.injector is None:
            return None
        injector = self.injector
        return lambda site, tensor, step: injector.visit(site, tensor, location)

    def _record(self, location: str, result: KernelResult) -> None:
        if self.keep_residuals:
            seen = self.residuals.setdefault(location, {})
            for name, ratio in result.residuals.items():
                worst = float(ratio.max()) if ratio.numel() else 0.0
                worst = worst if bool(torch.isfinite(ratio).all()) else float("inf")  # a NaN residual fails any τ
                seen[name] = max(seen.get(name, 0.0), worst)

    def _detect(self, op: Any, result: KernelResult, action: str) -> Detection:
        count = sum(int(flags.sum()) for flags in result.failed.values())
        detection = Detection(module_path_of(op), op.name, tuple(result.fired()), count, action)
        self.detections.append(detection)
        return detection

    @impl(abft.SdpaOp)
    def run_sdpa(self, interpreter: Interpreter, op: abft.SdpaOp, args):
        q, k, v = args[:3]
        mask = args[3] if len(args) > 3 else None
        location = module_path_of(op)
        options: dict[str, Any] = dict(
            scale=op.scale.value.data,
            causal=bool(op.causal.value.data),
            block=op.block.value.data,
            check=op.check.data,
            tol=op.tol.value.data,
            keep_residuals=self.keep_residuals,
        )
        result = blockwise_attention(q, k, v, mask, hook=self._hook(location), **options)
        self._record(location, result)
        if not result.fired():
            return (result.output,)
        policy = self.on_fault or op.on_fault.data
        if policy == "raise":
            raise FaultDetected(self._detect(op, result, "raised"))
        if policy == "count":
            self._detect(op, result, "counted")
            return (result.output,)
        detection = self._detect(op, result, "recomputed")
        return (self._recompute_rows(q, k, v, mask, result, detection, options),)

    def _recompute_rows(self, q, k, v, mask, result: KernelResult, detection: Detection, options: dict) -> torch.Tensor:
        """Re-executes every block of ``block`` query rows holding a failing row; raises if one fails again."""
        failing = result.failing_rows()
        assert failing is not None
        bad_rows = failing.reshape(-1, failing.shape[-1]).any(0).nonzero().flatten().tolist()
        block = options["block"]
        output = result.output.clone()
        for start in sorted({row // block * block for row in bad_rows}):
            end = min(start + block, q.shape[-2])
            rows_q, rows_k, rows_v, rows_mask = attention_rows(q, k, v, mask, start, end)
            again = blockwise_attention(rows_q, rows_k, rows_v, rows_mask, query_offset=start, **options)
            if again.fired():
                raise FaultDetected(detection, f"abft: fault persists after recomputing {detection.describe()}")
            output[..., start:end, :] = again.output
        return output

    @impl(abft.CheckedLinearOp)
    def run_linear(self, interpreter: Interpreter, op: abft.CheckedLinearOp, args):
        x, weight = args[0], args[1]
        bias = args[2] if len(args) > 2 else None
        location = module_path_of(op)
        tol = op.tol.value.data
        cached = self._encodings.get(id(op))
        if cached is None or cached[0] != weight.data_ptr():  # encoded once from the stored weight
            cached = (weight.data_ptr(), LinearEncoding.of(weight.detach(), None if bias is None else bias.detach()))
            self._encodings[id(op)] = cached
        encoding = cached[1]
        result = checked_linear(x, weight, bias, encoding, tol, self._hook(location), self.keep_residuals)
        self._record(location, result)
        if not result.fired():
            return (result.output,)
        policy = self.on_fault or op.on_fault.data
        if policy == "raise":
            raise FaultDetected(self._detect(op, result, "raised"))
        if policy == "count":
            self._detect(op, result, "counted")
            return (result.output,)
        detection = self._detect(op, result, "recomputed")
        again = checked_linear(x, weight, bias, encoding, tol)
        if again.fired():
            raise FaultDetected(detection, f"abft: fault persists after recomputing {detection.describe()}")
        return (again.output,)
