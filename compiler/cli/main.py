"""``attnc``: compile, run and verify models; ``attnc demo`` prints the end-to-end report.

Heavy imports (torch, transformers) happen inside the commands, so ``attnc --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from compiler.cli.train import add_train_command, cmd_train


def _add_pipeline(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument(
        "-p",
        "--pipeline",
        default=default,
        help="pass pipeline, e.g. 'attn-raise' or a named pipeline (see `attnc list`)",
    )


def _add_trust_pickle(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="let a .pt2 SPEC hold pickled entries (refused by default: unpickling can run code)",
    )


def _add_calibration(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration",
        metavar="FILE",
        help="safetensors file of calibration inputs for passes that need activations (attn-prune): tensors named "
        "like inputs.safetensors, samples stacked on dim 0 (default: the example inputs)",
    )


def _add_onnx_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", metavar="FILE", help="example inputs of an .onnx SPEC (safetensors, by input name); "
                        "default: generated from its declared input types")
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE",
                        help="value of a symbolic dimension of an .onnx SPEC's inputs (default: 1 first, 16 others)")


def _add_frontend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frontend", choices=("fx", "torch-mlir"), default="fx",
                        help="importer of a PyTorch SPEC: attnc's FX importer (default) or torch-mlir's (a cross-check)")


def _onnx_options(args) -> dict:
    """``inputs_file`` and ``dims`` for an ``.onnx`` SPEC; the options are refused for any other SPEC."""
    from compiler.errors import AttncError

    if not args.spec.endswith(".onnx"):
        if args.inputs or args.dim:
            raise AttncError("--inputs and --dim apply to an .onnx SPEC only")
        return {}
    dims = {}
    for item in args.dim:
        name, _, value = item.partition("=")
        if not name or not value.isdigit() or int(value) < 1:
            raise AttncError(f"--dim expects NAME=VALUE with a positive integer VALUE, got '{item}'")
        dims[name] = int(value)
    return {"inputs_file": args.inputs, "dims": dims}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnc", description="Compile Transformer attention graphs.")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error (also ATTNC_DEBUG=1)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    compile_cmd = commands.add_parser("compile", help="compile SPEC into OUTDIR (model.mlir + weights)")
    compile_cmd.add_argument("spec", help="model.pt2 | model.onnx | path/to/file.py:factory | bundled name (e.g. minilm)")
    _add_pipeline(compile_cmd)
    compile_cmd.add_argument("-o", "--output", required=True, help="output directory")
    _add_trust_pickle(compile_cmd)
    _add_calibration(compile_cmd)
    _add_onnx_inputs(compile_cmd)
    _add_frontend(compile_cmd)
    compile_cmd.add_argument(
        "--report", action="store_true", help="list every softmax left unraised, with its module path and why"
    )

    run_cmd = commands.add_parser("run", help="execute a compiled model")
    run_cmd.add_argument("outdir", help="directory written by `attnc compile`")
    run_cmd.add_argument("--inputs", help="safetensors file with the inputs by name (default: the example inputs)")
    run_cmd.add_argument("-o", "--output", help="write the outputs to this safetensors file")
    run_cmd.add_argument("--seed", type=int, default=0, help="seed of a simulated target (what it selects: `attnc list`) (0)")
    run_cmd.add_argument("--strict", action="store_true", help="NaN or Inf in the inputs or weights is an error")
    run_cmd.add_argument(
        "--check-finite", action="store_true", help="stop at the first op whose result holds NaN or Inf, naming it"
    )
    run_cmd.add_argument("--report", action="store_true", help="print the target's cost report (per layer where it has one)")

    verify_cmd = commands.add_parser(
        "verify", help="compile, run both, print max_abs_err vs PyTorch (vs onnxruntime for an .onnx SPEC)"
    )
    verify_cmd.add_argument("spec")
    _add_pipeline(verify_cmd)
    verify_cmd.add_argument("--tol", type=float, default=1e-4, help="fail above this max abs error (default 1e-4)")
    _add_trust_pickle(verify_cmd)
    _add_calibration(verify_cmd)
    _add_onnx_inputs(verify_cmd)
    _add_frontend(verify_cmd)

    export_cmd = commands.add_parser("export", help="write a compiled model as torch-mlir's torch dialect")
    export_cmd.add_argument("outdir", help="directory written by `attnc compile`")
    export_cmd.add_argument("--format", choices=("torch-mlir",), default="torch-mlir", help="output IR (torch-mlir)")
    export_cmd.add_argument("-o", "--output", required=True, help="file to write, e.g. model.torch.mlir")

    demo_cmd = commands.add_parser("demo", help="compile the bundled MiniLM and print a report")
    demo_cmd.add_argument("spec", nargs="?", default="minilm")
    _add_pipeline(demo_cmd, default="raise")

    commands.add_parser("list", help="bundled models, named pipelines and passes")

    cache_cmd = commands.add_parser("cache", help="what the targets keep on disk between runs: where, how big")
    cache_cmd.add_argument("--clear", action="store_true", help="empty those caches (their entries are made again)")

    faults_cmd = commands.add_parser("faults", help="fault-injection campaign on a model compiled with abft-weave")
    faults_cmd.add_argument("outdir", help="directory written by `attnc compile` (with abft-weave in the pipeline)")
    faults_cmd.add_argument("--sites", default="all", help="comma-separated fault sites, or all (default)")
    faults_cmd.add_argument("--trials", type=int, default=1000, help="faults per site (1000)")
    faults_cmd.add_argument("--seed", type=int, default=0, help="campaign seed: same seed, same faults (0)")
    faults_cmd.add_argument("--workers", type=int, default=1, help="Ray workers; 1 without --address runs in-process (1)")
    faults_cmd.add_argument("--address", help="address of an existing Ray cluster (default: a local Ray instance)")
    faults_cmd.add_argument("--clean-runs", type=int, default=1000, help="fault-free runs on varied inputs (1000)")
    faults_cmd.add_argument("--threshold", type=float, default=1e-3, help="significant: relative output change above (1e-3)")
    faults_cmd.add_argument("--models", default="all", help="comma-separated fault models, or all (default)")
    faults_cmd.add_argument("--json", help="write the results to this JSON file")

    add_train_command(commands)

    recover_cmd = commands.add_parser(
        "recover", help="fit cosine attention's per-head m (and optionally projections) to the original model"
    )
    recover_cmd.add_argument("spec", help="model.pt2 | path/to/file.py:factory | bundled name (e.g. minilm)")
    _add_pipeline(recover_cmd, default="attn-raise,attn-cosine")
    recover_cmd.add_argument("--steps", type=int, default=1000, help="Adam steps, one calibration batch each (1000)")
    recover_cmd.add_argument("--lr", type=float, default=0.05, help="learning rate for m (0.05)")
    recover_cmd.add_argument("--projections", action="store_true", help="also fit the q/k/v/o projections")
    recover_cmd.add_argument("--projection-lr", type=float, default=3e-4, help="learning rate for projections (3e-4)")
    recover_cmd.add_argument(
        "--calibration-batches", type=int, help="cap on calibration batches (default: all built-in text / 16 random)"
    )
    recover_cmd.add_argument("--seed", type=int, default=0, help="seed for generated inputs (non-text models)")
    recover_cmd.add_argument("-o", "--output", help="save the recovered model (model.mlir + fitted weights) here")
    return parser


def cmd_compile(args) -> int:
    from compiler.api import compile_model
    from compiler.artifacts import check_output_directory

    check_output_directory(Path(args.output))  # before minutes of compiling, not after
    compiled = compile_model(
        args.spec, args.pipeline, trust_pickle=args.trust_pickle, calibration=args.calibration, frontend=args.frontend,
        **_onnx_options(args),
    )
    outdir = compiled.save(args.output, with_reference=True)
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in compiled.stage_seconds.items())
    print(f"wrote {outdir / 'model.mlir'} and {outdir / 'weights.safetensors'} ({stages})")
    if args.report:
        from passes.attn_raise import unraised_softmaxes

        unraised = unraised_softmaxes(compiled.module)
        print(f"{len(unraised)} softmax(es) not raised")
        for entry in unraised:
            print(f"  {entry.module_path or '<top>'}: {entry.reason}")
    return 0


def cmd_run(args) -> int:
    import torch

    from compiler.api import CompiledModel, input_types
    from compiler.artifacts import atomic_write_tensors, check_finite, check_tensors, read_tensors
    from compiler.errors import AttncError

    if args.output:
        output = Path(args.output)
        if output.is_dir():
            raise AttncError(f"cannot write {output}: it is a directory")
        if not output.absolute().parent.is_dir():
            raise AttncError(f"cannot write {output}: directory {output.absolute().parent} does not exist")
    compiled = CompiledModel.load(args.outdir)
    inputs = compiled.inputs
    if args.inputs:
        given = read_tensors(args.inputs, "inputs")
        check_tensors(given, input_types(compiled.module, compiled.input_names), args.inputs)
        inputs = tuple(given[n] for n in compiled.input_names)
    if len(inputs) != len(compiled.input_names):
        raise AttncError("no inputs: pass --inputs FILE.safetensors")
    check_finite(dict(zip(compiled.input_names, inputs)), "inputs", strict=args.strict)
    check_finite(compiled.weights, "weights", strict=args.strict)
    target = target_summary(compiled.module)
    if target:
        print(f"target: {target} (seed {args.seed})")
    start = time.perf_counter()
    executor = compiled.executor(args.seed, check_finite=args.check_finite)
    with torch.no_grad():
        outputs = executor(*inputs)
    seconds = time.perf_counter() - start
    for detection in executor.abft.detections:  # checked ops (abft-weave) that found a fault and went on
        print(f"abft: fault detected {detection.describe()}")
    for index, out in enumerate(outputs):
        stats = f"mean={out.float().mean():.5g} std={out.float().std():.5g}" if out.is_floating_point() else ""
        print(f"output {index}: shape={tuple(out.shape)} dtype={out.dtype} {stats}")
    print(f"ran in {seconds:.3f}s")
    if not args.inputs and compiled.reference_outputs:
        for index, (out, ref) in enumerate(zip(outputs, compiled.reference_outputs)):
            if out.is_floating_point() and out.shape == ref.shape:
                cosine = torch.nn.functional.cosine_similarity(out.flatten().double(), ref.flatten().double(), dim=0)
                error = (out.double() - ref.double()).abs().max()
                print(f"output {index} vs {compiled.reference_name}: cosine={cosine:.6f} max_abs_err={error:.3e}")
    if args.report:
        from targets.registry import target_of

        owner = target_of(compiled.module)
        print(owner.report(compiled.module) if owner is not None else "report: the reference target has no cost model")
    if args.output:
        atomic_write_tensors({f"output_{i}": o for i, o in enumerate(outputs)}, args.output)
        print(f"wrote {args.output}")
    return 0


def target_summary(module) -> str:
    """One line on the module's target, or "" for the reference target."""
    from targets.registry import target_of

    target = target_of(module)
    return "" if target is None else target.summary(module)


def cmd_verify(args) -> int:
    """Judges the saved artifact (what ``attnc run`` executes), and fails if it differs from the in-memory module."""
    import tempfile

    from compiler.api import CompiledModel, compile_model, max_abs_error, same_outputs
    from compiler.errors import AttncError

    compiled = compile_model(
        args.spec, args.pipeline, trust_pickle=args.trust_pickle, calibration=args.calibration, frontend=args.frontend,
        **_onnx_options(args),
    )
    reference = compiled.run_reference()
    in_memory = compiled.run()
    with tempfile.TemporaryDirectory(prefix="attnc-verify-") as outdir:
        saved = CompiledModel.load(compiled.save(outdir)).run()
    error = max_abs_error(saved, reference)
    print(f"max_abs_err={error:.3e} vs {compiled.reference_name}")
    if not same_outputs(saved, in_memory):
        raise AttncError(
            "the saved model does not reproduce the in-memory module (max_abs_err between them "
            f"{max_abs_error(saved, in_memory):.3e}): model.mlir does not read back as it was written"
        )
    return 0 if error <= args.tol else 1


def cmd_export(args) -> int:
    """torch-mlir's ``torch`` dialect, verified by torch-mlir; parameters are arguments named ``attnc.param``."""
    from compiler.api import CompiledModel
    from compiler.artifacts import atomic_write_text
    from compiler.torch_mlir_export import export_torch_mlir

    compiled = CompiledModel.load(args.outdir)
    exported = export_torch_mlir(compiled.module, compiled.input_names)
    atomic_write_text(exported.text, args.output)
    print(f"wrote {args.output}: @main takes {len(exported.input_names)} inputs, then {len(exported.parameter_names)} "
          f"parameters (named by attnc.param; tensors in {Path(args.outdir) / 'weights.safetensors'})")
    return 0


def cmd_list(args) -> int:
    from compiler.models import BUNDLED
    from compiler.pipelines import NAMED_PIPELINES
    from compiler.registry import PASSES

    print("bundled models:  " + ", ".join(BUNDLED))
    print("named pipelines: " + ", ".join(f"{k} = '{v}'" for k, v in NAMED_PIPELINES.items()))
    print("passes:          " + ", ".join(PASSES))
    from targets.registry import all_targets

    for target in all_targets().values():
        print(f"target {target.name}: {target.description}; lowered by {target.lowering_pass}")
        print(f"  --seed selects {target.seed_meaning}")
    return 0


def cmd_faults(args) -> int:
    from compiler.faults import FAULT_MODELS, run_campaign, write_report
    from compiler.sweeps import progress_bar

    models = FAULT_MODELS if args.models == "all" else tuple(m.strip() for m in args.models.split(",") if m.strip())
    summary = run_campaign(
        args.outdir, args.sites, args.trials, args.seed, args.workers, args.address, args.clean_runs, args.threshold, models,
        progress=lambda total, workers: progress_bar(total, "faults"),
    )
    write_report(summary, args.json)
    return 0


def cmd_demo(args) -> int:
    from compiler.demo import run_demo

    return run_demo(args.spec, args.pipeline)


def cmd_recover(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from compiler.api import compile_model
    from compiler.calibration import default_batches
    from compiler.errors import AttncError
    from fitting.recovery import recover

    if args.steps < 1:
        raise AttncError(f"--steps must be at least 1, got {args.steps}")
    if not (args.lr > 0 and args.projection_lr > 0):
        raise AttncError("--lr and --projection-lr must be positive")
    console = Console()
    with console.status(f"compiling {args.spec}"):
        compiled = compile_model(args.spec, args.pipeline)
        calibration, heldout = default_batches(args.spec, compiled, args.calibration_batches, args.seed)
    report = recover(
        compiled.reference,
        compiled,
        calibration,
        steps=args.steps,
        lr=args.lr,
        train_projections=args.projections,
        heldout_inputs=heldout,
        projection_lr=args.projection_lr,
    )
    what = "m" + (" + q/k/v/o projections" if args.projections else "")
    table = Table(
        title=f"{args.spec}: cosine vs original on held-out inputs, before/after recovery ({what})"
    )
    for column in ("output", "metric"):
        table.add_column(column, justify="left")
    for column in ("before", "after"):
        table.add_column(column, justify="right")
    for row in report.rows():
        table.add_row(*row)
    console.print(table)
    console.print(
        f"trained {len(report.trained)} tensors ({report.trained_parameter_count:,} values), {report.steps} steps "
        f"on {report.calibration_batches} calibration batches, {report.heldout_batches} held-out batches, "
        f"{report.seconds:.1f}s; {report.s_summary()}"
    )
    if args.output:
        outdir = compiled.save(args.output)
        console.print(f"wrote {outdir / 'model.mlir'} and {outdir / 'weights.safetensors'} (fitted weights)")
    return 0


def cmd_cache(args) -> int:
    from targets.registry import all_targets

    for target in all_targets().values():
        usage = target.cache_usage()
        if usage is None:
            continue
        if args.clear:
            print(f"{target.name}: removed {target.clear_cache()} {usage.name}")
            continue
        if usage.location is None:
            print(f"{target.name}: {usage.name}: off ({usage.settings})")
            continue
        limit = ", no limit" if usage.limit is None else f" of a {usage.limit / 2**20:.0f} MiB limit"
        print(f"{target.name}: {usage.name} in {usage.location}")
        print(f"  {usage.entries} entries, {usage.size / 2**20:.1f} MiB{limit} ({usage.settings})")
        if usage.problem:
            print(f"attnc: warning: {usage.problem}", file=sys.stderr)
    return 0


COMMANDS = {
    "compile": cmd_compile,
    "run": cmd_run,
    "verify": cmd_verify,
    "export": cmd_export,
    "list": cmd_list,
    "cache": cmd_cache,
    "demo": cmd_demo,
    "recover": cmd_recover,
    "faults": cmd_faults,
    "train": cmd_train,
}


def main(argv: list[str] | None = None) -> int:
    """Runs one command; every failure is one ``attnc: error:`` line (``--debug`` shows the traceback)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("ATTNC_DEBUG", "") not in ("", "0")
    import warnings

    from xdsl.utils.exceptions import DiagnosticException

    from compiler.errors import INTERNAL_ERROR_STATUS, internal_error_line, one_line
    from dialects.diagnostics import AttncWarning, collect_remarks

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        """attnc's own warnings as one line; other libraries' (deprecations inside torch) only with --debug."""
        if issubclass(category, AttncWarning):
            print(f"attnc: warning: {message}", file=sys.stderr)
        elif debug:
            previous_showwarning(message, category, filename, lineno, file, line)

    previous_showwarning, warnings.showwarning = warnings.showwarning, show_warning
    try:
        with collect_remarks() as remarks:
            try:
                return COMMANDS[args.command](args)
            finally:
                for note, count in Counter(str(note) for note in remarks).items():  # identical ones once, counted
                    print(note if count == 1 else f"{note} (x{count})", file=sys.stderr)
    except DiagnosticException as error:  # AttncError, ExecutionError, pass failures, verifier errors
        if debug:
            raise
        print(f"attnc: error: {one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("attnc: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a defect of attnc, not of the input: still one line
        if debug:
            raise
        print(internal_error_line("attnc", error), file=sys.stderr)
        return INTERNAL_ERROR_STATUS
    finally:
        warnings.showwarning = previous_showwarning


if __name__ == "__main__":
    sys.exit(main())
