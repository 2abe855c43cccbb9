"""The Python API: load a model spec, export it, import it, run a pass pipeline, save/load the result.

```python
from compiler.api import compile_model
compiled = compile_model("minilm", "attn-raise")
outputs = compiled.run()                      # on the example inputs it was traced with
compiled.save("out")                          # out/model.mlir, out/weights.safetensors, out/inputs.safetensors
```
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from safetensors.torch import save_file
from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr
from xdsl.passes import ModulePass

from compiler.artifacts import (
    check_output_directory,
    check_pt2,
    check_tensors,
    file_inside,
    read_tensors,
    verify_manifest,
    write_directory,
)
from compiler.errors import AttncError, one_line
from compiler.frontend.fx_importer import ImportedProgram, import_exported_program
from compiler.pipelines import parse_passes, resolve_pipeline
from compiler.registry import DIALECTS, PASSES
from compiler.textual_ir import RoundTripParser, RoundTripPrinter
from dialects.diagnostics import Remark, collect_remarks
from dialects.shapes import tensor_shape
from fitting.steps import run_pending_steps
from runtime.dtypes import torch_dtype
from runtime.executor import Executor, flat_tensors, initial_parameters
from runtime.weight_origins import record_origin
from targets.registry import target_of

WEIGHTS_ATTRIBUTE = "attnc.weights"
INPUTS_ATTRIBUTE = "attnc.inputs"  # input names in order: SSA name hints lose a `_<digits>` suffix when parsed
MODEL_FILE, WEIGHTS_FILE, INPUTS_FILE = "model.mlir", "weights.safetensors", "inputs.safetensors"
REFERENCE_FILE = "reference.safetensors"
FRONTENDS = ("fx", "torch-mlir")  # for torch.export programs; an .onnx SPEC always goes through torch-mlir


def make_context() -> Context:
    """A context with builtin, func and every attnc dialect loaded."""
    ctx = Context()
    ctx.load_dialect(builtin.Builtin)
    ctx.load_dialect(func.Func)
    for name, factory in DIALECTS.items():
        ctx.register_dialect(name, factory)
    return ctx


@dataclass
class ModelSpec:
    """A model to compile: the module, its example inputs, and an already-exported program if given."""

    name: str
    model: Callable[..., Any] | None
    inputs: tuple[torch.Tensor, ...]
    program: torch.export.ExportedProgram | None = None
    importer: Callable[[], Any] | None = None  # a frontend other than torch.export (ONNX): () -> ImportedProgram
    reference_name: str = "PyTorch"  # what ``model`` is: the reference outputs are judged against


def load_spec(spec: str, trust_pickle: bool = False, **onnx_options: Any) -> ModelSpec:
    """Resolves SPEC: a ``.pt2`` file, ``path/to/file.py:factory``, an ``.onnx`` file, or a bundled model name.

    A ``.pt2`` is inspected first and refused if loading it would unpickle anything (pickles can run
    code), unless ``trust_pickle``. A ``file.py:factory`` is executed, like an import.
    """
    if spec.endswith(".onnx"):
        from compiler.frontend.onnx_importer import import_onnx, load_onnx

        onnx_model = load_onnx(spec, onnx_options.get("inputs_file"), onnx_options.get("dims"))
        return ModelSpec(onnx_model.name, onnx_model.reference(), onnx_model.inputs,
                         importer=lambda: import_onnx(onnx_model), reference_name="onnxruntime")
    if spec.endswith(".pt2"):
        path = Path(spec)
        if not path.is_file():
            raise AttncError(f"no such file: {spec}")
        check_pt2(path, trust_pickle)
        try:
            program = torch.export.load(str(path))
        except Exception as error:  # torch raises many types for a damaged archive
            raise AttncError(f"cannot read {spec}: {type(error).__name__}: {one_line(error)}") from None
        if program.example_inputs is None:
            raise AttncError(f"{spec} carries no example inputs; save it from torch.export.export(model, args)")
        args, kwargs = program.example_inputs
        if kwargs:
            raise AttncError(f"{spec} was exported with keyword inputs; export with positional inputs")
        return ModelSpec(path.stem, program.module(), tuple(args), program)
    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        file, factory_name = spec.split(":", 1)
        if not Path(file).is_file():
            raise AttncError(f"no such file: {file}")
        module_spec = importlib.util.spec_from_file_location(Path(file).stem, file)
        if module_spec is None or module_spec.loader is None:
            raise AttncError(f"{file} cannot be imported as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:
            raise AttncError(f"{file} failed to import: {type(error).__name__}: {one_line(error)}") from None
        factory = getattr(module, factory_name, None)
        if not callable(factory):
            raise AttncError(f"{file} has no function '{factory_name}'")
        try:
            made = factory()
        except Exception as error:
            raise AttncError(f"{spec} raised {type(error).__name__}: {one_line(error)}") from None
        model, inputs = factory_result(spec, made)
        return ModelSpec(factory_name, model, inputs)
    from compiler.models import BUNDLED, MissingExtraError

    if spec not in BUNDLED:
        raise AttncError(
            f"unknown model '{spec}': give a .pt2 file, file.py:factory, or one of {', '.join(BUNDLED)}"
        )
    try:
        model, inputs = BUNDLED[spec]()
    except ModuleNotFoundError as error:
        raise MissingExtraError(spec, error.name or str(error)) from None
    return ModelSpec(spec, model, tuple(inputs))


def factory_result(spec: str, made: Any) -> tuple[Callable[..., Any], tuple[torch.Tensor, ...]]:
    """Checks that a factory returned ``(model, (input, ...))``; anything else is a clear error."""
    expected = "must return (model, inputs) with inputs a tuple of tensors"
    if not isinstance(made, tuple) or len(made) != 2:
        got = "None" if made is None else type(made).__name__
        raise AttncError(f"{spec} {expected}; it returned {got}")
    model, inputs = made
    if not callable(model):
        raise AttncError(f"{spec} {expected}; its model is a {type(model).__name__}, not callable")
    if isinstance(inputs, torch.Tensor):
        raise AttncError(f"{spec} {expected}; its inputs are a bare tensor: return (model, (x,))")
    if not isinstance(inputs, (tuple, list)) or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise AttncError(f"{spec} {expected}; got inputs of type {type(inputs).__name__}")
    return model, tuple(inputs)


def parse_pipeline(pipeline: str | None) -> tuple[ModulePass, ...]:
    """The passes of a pipeline name or string, with a clear error for unknown passes or options."""
    text = resolve_pipeline(pipeline)
    return parse_passes(text, PASSES) if text else ()


def apply_passes(module: ModuleOp, passes: Sequence[ModulePass], ctx: Context | None = None) -> dict[str, float]:
    """Runs passes in order, verifying after each; returns seconds per pass.

    A pass that cannot run raises ``PassFailedException``; its remarks go to the caller's
    ``collect_remarks`` block (``compile_model`` keeps them in ``CompiledModel.remarks``).
    """
    ctx = ctx or make_context()
    seconds: dict[str, float] = {}
    for index, module_pass in enumerate(passes):
        start = time.perf_counter()
        module_pass.apply(ctx, module)
        module.verify()
        label = module_pass.name if module_pass.name not in seconds else f"{module_pass.name}#{index}"
        seconds[label] = time.perf_counter() - start
    return seconds


@dataclass
class CompiledModel:
    """A compiled program with its weights, example inputs and the time each stage took."""

    module: ModuleOp
    weights: dict[str, torch.Tensor]
    inputs: tuple[torch.Tensor, ...]
    input_names: list[str]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    reference: Callable[..., Any] | None = None
    reference_outputs: list[torch.Tensor] | None = None
    remarks: list[Remark] = field(default_factory=list)
    reference_name: str = "PyTorch"  # the reference's name in messages: PyTorch, or onnxruntime for an ONNX file

    def run_reference(self) -> list[torch.Tensor]:
        """The reference's outputs on the example inputs (what ``verify`` compares against): the PyTorch model,
        or onnxruntime for an ONNX file."""
        if self.reference is None:
            raise AttncError("this compiled model has no reference model (it was loaded from a directory)")
        if "attnc.updates" in self.module.attributes:
            raise AttncError("a training step has no reference output (it returns the loss and new parameters)")
        with torch.no_grad():
            return flat_tensors(self.reference(*self.inputs))

    def executor(self, seed: int = 0, **kwargs) -> Executor:
        """An executor with the implementations of the module's target; ``seed`` fixes a noisy target's draws."""
        extra = [*target_functions(self.module, seed), *kwargs.pop("extra_functions", ())]
        return Executor(self.module, self.weights, extra_functions=extra, **kwargs)

    def run(
        self, inputs: Sequence[torch.Tensor] | None = None, seed: int = 0, check_finite: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """Runs the compiled program (on the example inputs by default); ``check_finite`` names the first op
        that produces NaN or Inf."""
        with torch.no_grad():
            return self.executor(seed, check_finite=check_finite)(*(self.inputs if inputs is None else inputs))

    def save(self, outdir: str | Path, with_reference: bool = False) -> Path:
        """Writes ``model.mlir`` (with module-path locations), the weights and the example inputs.

        ``with_reference``: also the reference's outputs on the example inputs (``reference.safetensors``, its
        metadata naming the reference), so ``attnc run`` can say how far a (noisy) target is from the float model.
        """
        check_output_directory(Path(outdir))
        self.module.attributes[WEIGHTS_ATTRIBUTE] = StringAttr(WEIGHTS_FILE)
        self.module.attributes[INPUTS_ATTRIBUTE] = ArrayAttr([StringAttr(name) for name in self.input_names])
        reference_outputs = None
        if with_reference and self.reference is not None and "attnc.updates" not in self.module.attributes:
            with torch.no_grad():
                reference_outputs = flat_tensors(self.reference(*self.inputs))

        def write_files(directory: Path) -> None:
            save_file({k: v.detach().contiguous() for k, v in self.weights.items()}, str(directory / WEIGHTS_FILE))
            inputs = {name: t.contiguous() for name, t in zip(self.input_names, self.inputs)}
            save_file(inputs, str(directory / INPUTS_FILE))
            (directory / MODEL_FILE).write_text(print_module(self.module, debuginfo=True))
            if reference_outputs is not None:
                outputs = {f"output_{i}": t.detach().contiguous() for i, t in enumerate(reference_outputs)}
                save_file(outputs, str(directory / REFERENCE_FILE), metadata={"reference": self.reference_name})

        return write_directory(outdir, write_files)

    @classmethod
    def load(cls, outdir: str | Path) -> CompiledModel:
        """Reads a directory written by ``save``."""
        outdir = Path(outdir)
        if not (outdir / MODEL_FILE).is_file():
            raise AttncError(f"{outdir} holds no {MODEL_FILE}: compile a model into it first")
        checked = verify_manifest(outdir)
        module = parse_module(read_text_file(outdir / MODEL_FILE), str(outdir / MODEL_FILE))
        function = entry_function_of(module, str(outdir / MODEL_FILE))
        target_functions(module)  # the target checks its configuration now, not at the first run
        arguments = function.body.block.args
        names = [arg.name_hint or f"input_{i}" for i, arg in enumerate(arguments)]
        if isinstance(saved_names := module.attributes.get(INPUTS_ATTRIBUTE), ArrayAttr):
            names = [name.data for name in saved_names.data]
        if len(names) != len(arguments):
            raise AttncError(f"{outdir / MODEL_FILE}: {INPUTS_ATTRIBUTE} names {len(names)} inputs, @main takes "
                             f"{len(arguments)}")
        weights_name = module.attributes.get(WEIGHTS_ATTRIBUTE)
        weights_file = file_inside(
            outdir, weights_name.data if isinstance(weights_name, StringAttr) else WEIGHTS_FILE, WEIGHTS_ATTRIBUTE
        )
        weights = read_tensors(weights_file, "weights") if weights_file.is_file() or parameter_types(module) else {}
        for name, tensor in weights.items() if weights_file.name in checked else ():  # content-keyed caches skip hashing
            record_origin(tensor, checked[weights_file.name], name)
        expected, optional = parameter_types(module), created_parameters(module)
        check_tensors(weights, expected, str(weights_file), optional=optional, extra_ok=True)
        inputs: tuple[torch.Tensor, ...] = ()
        if (outdir / INPUTS_FILE).is_file():
            saved_inputs = read_tensors(outdir / INPUTS_FILE, "example inputs")
            check_tensors(saved_inputs, input_types(module, names), str(outdir / INPUTS_FILE))
            inputs = tuple(saved_inputs[n] for n in names)
        reference_outputs, reference_name = None, "PyTorch"
        if (outdir / REFERENCE_FILE).is_file():
            saved = read_tensors(outdir / REFERENCE_FILE, "reference outputs")
            reference_name = reference_name_of(outdir / REFERENCE_FILE)
            try:
                reference_outputs = [saved[f"output_{i}"] for i in range(len(saved))]
            except KeyError:
                raise AttncError(f"{outdir / REFERENCE_FILE} must hold output_0 ... output_N") from None
        return cls(module, weights, inputs, names, reference_outputs=reference_outputs, reference_name=reference_name)


def reference_name_of(path: Path) -> str:
    """The reference a ``reference.safetensors`` names in its metadata (PyTorch when it names none)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return (handle.metadata() or {}).get("reference", "PyTorch")


def entry_function_of(module: ModuleOp, name: str) -> func.FuncOp:
    """The module's ``@main`` (or its only function), or a clear error naming the file."""
    functions = [op for op in module.ops if isinstance(op, func.FuncOp)]
    for function in functions:
        if function.sym_name.data == "main":
            return function
    raise AttncError(f"{name} holds no function @main")


def parameter_types(module: ModuleOp) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The shape and dtype every ``nn.param`` of the module declares, by parameter name."""
    from dialects import nn

    return {
        op.key: (tuple(op.result.type.get_shape()), torch_dtype(op.result.type))
        for op in module.walk()
        if isinstance(op, nn.ParamOp)
    }


def created_parameters(module: ModuleOp) -> frozenset[str]:
    """Parameters a pass created with an ``init`` value: the weights file may omit them."""
    from dialects import nn

    return frozenset(op.key for op in module.walk() if isinstance(op, nn.ParamOp) and op.init is not None)


def input_types(module: ModuleOp, names: Sequence[str]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Shape and dtype of each ``@main`` argument, by input name."""
    function = entry_function_of(module, "the module")
    return {
        name: (tensor_shape(typ), torch_dtype(typ))
        for name, typ in zip(names, function.function_type.inputs.data)
    }


def target_functions(module: ModuleOp, seed: int = 0) -> list[Any]:
    """The runtime implementations of the target the module is lowered to (none for the reference target)."""
    target = target_of(module)
    return [] if target is None else target.runtime_functions(module, seed)


def print_module(module: ModuleOp, debuginfo: bool = False) -> str:
    """The module as text that ``parse_module`` reads back to the same module."""
    import io

    stream = io.StringIO()
    RoundTripPrinter(stream=stream, print_debuginfo=debuginfo).print_op(module)
    return stream.getvalue() + "\n"


def read_text_file(path: Path) -> str:
    """A UTF-8 text file's contents; anything else is a clear error naming the file and the first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AttncError(
            f"cannot read {path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


def parse_module(text: str, name: str = "<input>") -> ModuleOp:
    """Parses and verifies a module; MLIR's hexadecimal float literals read as bit patterns."""
    try:
        module = RoundTripParser(make_context(), text, name).parse_module()
        module.verify()
        return module
    except RecursionError:
        raise AttncError(f"cannot read {name}: the IR nests too deeply") from None
    except Exception as error:
        raise AttncError(f"cannot read {name}: {one_line(error)}") from None


def export_model(spec: ModelSpec) -> torch.export.ExportedProgram:
    """``torch.export`` with nothing decomposed (keeps sdpa, softmax, linear, layer_norm, gelu whole)."""
    program = spec.program
    if program is None:
        if spec.model is None:
            raise AttncError(f"{spec.name} has neither a model nor an exported program")
        try:
            with quiet_torch_logs():
                program = torch.export.export(cast(torch.nn.Module, spec.model), spec.inputs)
        except Exception as error:
            raise AttncError(export_failure(spec.name, error)) from None
    return program.run_decompositions({})


@contextlib.contextmanager
def quiet_torch_logs() -> Iterator[None]:
    """Silences torch's log records and prints (a failed export dumps the whole traced graph, twice) unless
    ATTNC_DEBUG is set; the failure itself still reaches the caller as an exception."""
    if os.environ.get("ATTNC_DEBUG"):
        yield
        return
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def export_failure(name: str, error: Exception) -> str:
    """One line for a failed ``torch.export``: the first sentence of torch's message, the user's line that
    raised it, and what to do about data-dependent control flow (the usual cause)."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    first = first.split(". ")[0].split(" (unhinted")[0]
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', text)
    user = [f for f in frames if "site-packages" not in f[0] and f"{os.sep}torch{os.sep}" not in f[0]]
    where = f" at {user[-1][0]}:{user[-1][1]} in {user[-1][2]}" if user else ""
    hint = ""
    if "DataDependent" in type(error).__name__ or "data-dependent" in text:
        hint = (
            "; the model branches on tensor values, which export cannot trace: make the branch static "
            "(for nn.Transformer*, pass is_causal/tgt_is_causal=True with the causal mask)"
        )
    return f"torch.export failed for {name}: {type(error).__name__}: {first}{where}{hint}"


def compile_model(
    spec: str | ModelSpec,
    pipeline: str | None = None,
    on_imported: Callable[[ModuleOp], None] | None = None,
    trust_pickle: bool = False,
    calibration: str | Path | Sequence[tuple[torch.Tensor, ...]] | None = None,
    frontend: str = "fx",
    **onnx_options: Any,
) -> CompiledModel:
    """Load → export → import → passes, timing each stage; ``on_imported`` sees the module before the passes.

    ``trust_pickle`` lets a ``.pt2`` spec hold pickled entries (they can run code when loaded).
    ``calibration``: the inputs of passes that need activations (``attn-prune``), as a safetensors file
    (one tensor per model input, samples stacked on dim 0) or a list of input batches; default: the
    example inputs. After each pass, the steps it asked for run on them (``fitting/steps.py``).
    ``onnx_options`` (an ``.onnx`` spec): ``inputs_file`` (example inputs) and ``dims`` (symbolic dimensions).
    ``frontend``: ``fx`` (attnc's importer) or ``torch-mlir`` (torch-mlir's FX importer, then the same ATen table).
    """
    if frontend not in FRONTENDS:
        raise AttncError(f"unknown frontend '{frontend}': expected one of {', '.join(FRONTENDS)}")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    if isinstance(spec, str):
        spec = load_spec(spec, trust_pickle, **onnx_options)
    seconds["load"] = time.perf_counter() - start
    passes = parse_pipeline(pipeline)
    start = time.perf_counter()
    program = export_model(spec) if spec.importer is None else None  # an .onnx SPEC has its own importer
    seconds["export"] = time.perf_counter() - start
    start = time.perf_counter()
    imported = import_program(spec, program, frontend)
    seconds["import"] = time.perf_counter() - start
    if on_imported is not None:
        on_imported(imported.module)
    batches = calibration_batches(calibration, imported.input_names, spec.inputs)
    with collect_remarks() as remarks:
        for index, module_pass in enumerate(passes):
            for label, taken in apply_passes(imported.module, [module_pass]).items():
                seconds[label if label not in seconds else f"{label}#{index}"] = taken
            start = time.perf_counter()
            if run_pending_steps(imported.module, imported.weights, lambda: batches):
                seconds[f"{module_pass.name}:fit"] = time.perf_counter() - start
    imported.weights.update(initial_parameters(imported.module, imported.weights))
    inputs, input_names = with_example_labels(imported.module, spec.inputs, imported.input_names)
    return CompiledModel(
        imported.module,
        imported.weights,
        inputs,
        input_names,
        seconds,
        reference=spec.model,
        remarks=remarks,
        reference_name=spec.reference_name,
    )


def with_example_labels(
    module: ModuleOp, inputs: tuple[torch.Tensor, ...], names: list[str]
) -> tuple[tuple[torch.Tensor, ...], list[str]]:
    """A training step (``training-step``) takes the labels after the inputs: its example labels are zeros."""
    arguments = entry_function_of(module, "the module").body.block.args
    if "attnc.updates" not in module.attributes or len(arguments) != len(inputs) + 1:
        return inputs, names
    labels = torch.zeros(tensor_shape(arguments[-1].type), dtype=torch_dtype(arguments[-1].type))
    return (*inputs, labels), [*names, arguments[-1].name_hint or "labels"]


def import_program(spec: ModelSpec, program: torch.export.ExportedProgram | None, frontend: str) -> ImportedProgram:
    """The ``nn`` module of an exported program (by ``frontend``), or of a SPEC with its own importer (ONNX)."""
    if program is None:
        assert spec.importer is not None
        return spec.importer()
    if frontend == "torch-mlir":
        from compiler.frontend.torch_mlir_route import import_via_torch_mlir

        return import_via_torch_mlir(program)
    return import_exported_program(program)


def calibration_batches(
    calibration: str | Path | Sequence[tuple[torch.Tensor, ...]] | None,
    input_names: Sequence[str],
    inputs: tuple[torch.Tensor, ...],
) -> list[tuple[torch.Tensor, ...]]:
    """The calibration batches: read from a file (checked against the model's inputs), given, or the example."""
    if calibration is None:
        return [inputs]
    if isinstance(calibration, (str, Path)):
        from compiler.calibration import read_calibration

        return read_calibration(calibration, input_names, inputs)
    return [tuple(batch) for batch in calibration]


def max_abs_error(outputs: Sequence[torch.Tensor], reference: Sequence[torch.Tensor]) -> float:
    """Largest absolute difference over all outputs (inf when shapes or counts differ)."""
    if len(outputs) != len(reference):
        return float("inf")
    worst = 0.0
    for out, ref in zip(outputs, reference):
        if out.shape != ref.shape:
            return float("inf")
        worst = max(worst, (out.double() - ref.double()).abs().max().item() if out.numel() else 0.0)
    return worst


def same_outputs(outputs: Sequence[torch.Tensor], other: Sequence[torch.Tensor]) -> bool:
    """Equal counts, dtypes, shapes and bits (NaN matches NaN, -0.0 does not match 0.0)."""
    return len(outputs) == len(other) and all(
        a.dtype == b.dtype
        and a.shape == b.shape
        and torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))
        for a, b in zip(outputs, other)
    )
