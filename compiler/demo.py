"""``attnc demo``: compile a model through a pipeline, run it on its inputs, and print a report.

The report gives ops per dialect before and after the passes, the attention blocks found (by module
path), the executor's error against the reference (PyTorch, or onnxruntime for an ONNX file), and the time
of each stage. When the pipeline stops at the ``attn`` level, the report then lowers the result to every
registered target through the pipelines that target proposes (``Target.demo_pipelines``), and gives
each one's cost and output cosine to the reference.
"""

from __future__ import annotations

import time

import torch
from rich.console import Console
from rich.table import Table

from compiler.api import CompiledModel, apply_passes, compile_model, max_abs_error, parse_pipeline
from compiler.pipelines import resolve_pipeline
from compiler.report import attention_blocks, ops_by_dialect
from targets.base import Target
from targets.registry import all_targets, target_of


def run_demo(spec_name: str = "minilm", pipeline: str | None = "raise") -> int:
    console = Console()
    counts_after_import = []
    with console.status(f"loading, exporting and compiling {spec_name}"):
        compiled = compile_model(spec_name, pipeline, on_imported=lambda m: counts_after_import.append(ops_by_dialect(m)))
    seconds = dict(compiled.stage_seconds)
    before, after = counts_after_import[0], ops_by_dialect(compiled.module)
    spec_inputs, input_names, weights = compiled.inputs, compiled.input_names, compiled.weights

    reference_name = compiled.reference_name  # PyTorch, or onnxruntime for an ONNX file
    with console.status(f"running {reference_name} and the executor"):
        with torch.no_grad():
            start = time.perf_counter()
            reference = compiled.run_reference()
            seconds[f"run {reference_name}"] = time.perf_counter() - start
            start = time.perf_counter()
            outputs = compiled.executor()(*spec_inputs)
            seconds["run executor"] = time.perf_counter() - start

    console.rule(f"[bold]attnc demo[/bold] — {spec_name}, pipeline '{resolve_pipeline(pipeline) or 'none'}'")
    shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(input_names, spec_inputs))
    params = sum(t.numel() for t in weights.values() if t.is_floating_point())
    console.print(f"inputs: {shapes}   parameters: {params / 1e6:.1f} M   weights: {len(weights)} tensors")

    dialects = sorted(set(before) | set(after))
    table = Table(title="ops by dialect")
    table.add_column("dialect")
    table.add_column("after import", justify="right")
    table.add_column("after passes", justify="right")
    for dialect in dialects:
        table.add_row(dialect, str(before.get(dialect, 0)), str(after.get(dialect, 0)))
    console.print(table)

    blocks = attention_blocks(compiled.module)
    table = Table(title=f"attention blocks found: {len(blocks)}")
    table.add_column("module path", overflow="fold")
    table.add_column("op", no_wrap=True)
    table.add_column("attributes")
    for path, name, attrs in blocks:
        table.add_row(path, name, attrs)
    console.print(table)

    table = Table(title=f"executor vs {reference_name}")
    table.add_column("output")
    table.add_column("shape")
    table.add_column("max abs error", justify="right")
    for index, (out, ref) in enumerate(zip(outputs, reference)):
        table.add_row(str(index), str(tuple(out.shape)), f"{max_abs_error([out], [ref]):.2e}")
    console.print(table)
    if len(reference) == 2 and reference[1].dim() == 2:
        cosine = torch.nn.functional.cosine_similarity(outputs[1], reference[1], dim=-1)
        console.print(f"sentence-embedding cosine to {reference_name}: min {cosine.min():.7f}")

    if target_of(compiled.module) is None:
        for target in all_targets().values():
            if target.demo_pipelines:
                with console.status(f"running on the {target.name} target"):
                    console.print(target_report(target, compiled, reference, seconds))

    table = Table(title="time per stage")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, value in seconds.items():
        table.add_row(stage, f"{value:.3f}")
    console.print(table)
    error = max_abs_error(outputs, reference)
    verdict = "[green]OK[/green]" if error <= 1e-4 else "[red]ABOVE 1e-4[/red]"
    console.print(f"max_abs_err={error:.3e} {verdict}")
    return 0 if error <= 1e-4 else 1


def target_report(target: Target, compiled: CompiledModel, reference: list[torch.Tensor], seconds: dict[str, float]) -> Table:
    """Lower clones of the compiled module through the target's demo pipelines; compare each with PyTorch (seed 0)."""
    table = Table(title=f"on the {target.name} target (default settings, seed 0)")
    table.add_column("pipeline after the one above")
    table.add_column("setting")
    table.add_column("cost", justify="right")
    table.add_column(f"cosine to {compiled.reference_name} (last output)", justify="right")
    for passes, label in target.demo_pipelines:
        module = compiled.module.clone()
        apply_passes(module, parse_pipeline(passes))
        lowered = CompiledModel(module, compiled.weights, compiled.inputs, compiled.input_names)
        start = time.perf_counter()
        outputs = lowered.run(seed=0)
        seconds[f"run {target.name} ({label})"] = time.perf_counter() - start
        cost = ", ".join(f"{name} {value:g}" for name, value in target.cost_report(module).items())
        out, ref = outputs[-1].double(), reference[-1].double()
        cosine = torch.nn.functional.cosine_similarity(out.flatten(), ref.flatten(), dim=0)
        table.add_row(passes, label, cost, f"{cosine:.4f}")
    return table
