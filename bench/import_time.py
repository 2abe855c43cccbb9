"""Import-time benchmark: torch.export vs attnc's FX import (+ attn-raise) vs torch-mlir's FX importer.

Run from the repository root (one command, a few minutes on 2 cores)::

    .venv/bin/python bench/import_time.py

Two models: all-MiniLM-L6-v2 with its real weights (``compiler.models.minilm``) and a BERT-base-sized
encoder with random weights (``BertModel(BertConfig())``: 12 layers, hidden 768, 12 heads, eager attention,
batch 2 x 128 tokens). For each, the median of several repeats of:

1. ``torch.export.export(model, args)`` and ``.run_decompositions({})`` (attnc's frontend, first stage);
2. ``import_exported_program(program)`` then ``AttnRaisePass().apply(ctx, module)`` (import to ``attn``);
3. torch-mlir's ``torch_mlir.fx.export_and_import`` end to end from the ``nn.Module`` (it runs its own
   torch.export), and its import alone from the same ``run_decompositions({})`` program that attnc imports.

torch-mlir runs through a subprocess of this same file (``--torch-mlir-worker``) that prints JSON, so its
MLIR build and attnc's never share a process. The interpreter is the project's own (the ``onnx`` extra
installs torch-mlir into ``.venv``); ``ATTNC_TORCH_MLIR_PYTHON`` points at another one. Without torch-mlir
the torch-mlir columns say why.

torch-mlir mode: ``decomposition_table={}`` (nothing decomposed) and ``experimental_support_mutation=True``
(``import_program``) with a hook that turns every parameter and buffer into a function argument, so no
weight is copied into the IR. The default frozen mode (``import_frozen_program``) turns each weight into a
``torch.vtensor.literal`` through ``tensor.tolist()`` and prints as hex: not used.

Writes ``bench/results/import_time.md`` and ``bench/results/import_time.json``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

RESULTS = REPO / "bench" / "results"
TORCH_MLIR_PYTHON = os.environ.get("ATTNC_TORCH_MLIR_PYTHON", sys.executable)
BERT_BATCH, BERT_TOKENS = 2, 128


# ---------------------------------------------------------------------------------------------------------
# Models (shared by the main process and the torch-mlir worker: only torch + transformers needed).
# ---------------------------------------------------------------------------------------------------------


class BertOutputs(torch.nn.Module):
    """``BertModel`` returning a plain ``(last_hidden_state, pooler_output)`` tuple."""

    def __init__(self, bert: torch.nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state, out.pooler_output


def bert_base(seed: int = 0):
    """A BERT-base-sized encoder (default ``BertConfig``) with random weights, batch 2 x 128 tokens."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    model = BertOutputs(BertModel(BertConfig(attn_implementation="eager"))).eval()
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, BertConfig().vocab_size, (BERT_BATCH, BERT_TOKENS), generator=generator)
    mask = torch.ones(BERT_BATCH, BERT_TOKENS, dtype=torch.long)
    mask[1, BERT_TOKENS * 3 // 4 :] = 0  # a padded second sequence
    return model, (ids, mask)


def minilm():
    from compiler.models import minilm as factory

    return factory()


MODELS = {
    "all-MiniLM-L6-v2": (minilm, "real weights, 6 layers, hidden 384, 12 heads, 4 sentences (batch 4 x {t})"),
    "BERT-base (random)": (
        bert_base, f"random weights, 12 layers, hidden 768, 12 heads, batch {BERT_BATCH} x {BERT_TOKENS}"
    ),
}
REPEATS = {"all-MiniLM-L6-v2": 5, "BERT-base (random)": 5}


def timed(fn):
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def export_program(model, args):
    """(export seconds, run_decompositions seconds, program)."""
    t_export, program = timed(lambda: torch.export.export(model, args))
    t_decomp, program = timed(lambda: program.run_decompositions({}))
    return t_export, t_decomp, program


def summary(samples: list[float]) -> dict:
    """Statistics over samples[1:]; samples[0] is the untimed-in-the-table warm-up (first call) run."""
    cold, samples = samples[0], samples[1:]
    return {
        "median_s": statistics.median(samples),
        "cold_s": cold,
        "min_s": min(samples),
        "max_s": max(samples),
        "samples_s": samples,
    }


# ---------------------------------------------------------------------------------------------------------
# torch-mlir worker (runs in the torch-mlir venv).
# ---------------------------------------------------------------------------------------------------------


def torch_mlir_worker(repeats: dict[str, int]) -> dict:
    from importlib.metadata import version

    from torch.export.graph_signature import InputKind
    from torch_mlir import fx, ir
    from torch_mlir.extras.fx_importer import FxImporterHooks

    class WeightsAsArguments(FxImporterHooks):
        """Binds every parameter and buffer to a new entry-block argument instead of a frozen literal."""

        def __init__(self):
            self.names: list[str] = []

        def resolve_input(self, gni, value, info):
            if info.input_spec.kind in (InputKind.PARAMETER, InputKind.BUFFER) and (
                info.mutable_producer_node_name is None
            ):
                self.names.append(info.input_spec.target)
                return gni._b.add_argument(info.ir_type, ir.Location.current)
            return None

    def finish(module) -> dict:
        """Makes each func's type match its (grown) entry block, verifies, and counts ops (not timed)."""
        for op in module.body.operations:
            if op.operation.name == "func.func":
                old = ir.FunctionType(ir.TypeAttr(op.attributes["function_type"]).value)
                types = [a.type for a in op.regions[0].blocks[0].arguments]
                new = ir.FunctionType.get(types, old.results, context=module.context)
                op.attributes["function_type"] = ir.TypeAttr.get(new, context=module.context)
        text = module.operation.get_asm(large_elements_limit=16)
        return {
            "verifies": bool(module.operation.verify()),
            "aten_ops": text.count("torch.aten."),
            "vtensor_literals": text.count("torch.vtensor.literal"),
            "ir_chars": len(text),
        }

    kwargs = dict(decomposition_table={}, experimental_support_mutation=True)
    out = {"version": version("torch-mlir"), "torch": torch.__version__, "models": {}}
    for name, (factory, _) in MODELS.items():
        model, args = factory()
        args = tuple(args)
        e2e, imp, exp, dec = [], [], [], []
        info = {}
        for _ in range(repeats[name] + 1):
            hooks = WeightsAsArguments()
            seconds, module = timed(lambda: fx.export_and_import(model, *args, hooks=hooks, **kwargs))
            e2e.append(seconds)
            info = finish(module) | {"weight_arguments": len(hooks.names)}
            del module
        for _ in range(repeats[name] + 1):
            t_export, t_decomp, program = export_program(model, args)
            exp.append(t_export)
            dec.append(t_decomp)
            hooks = WeightsAsArguments()
            seconds, module = timed(lambda program=program: fx.export_and_import(program, hooks=hooks, **kwargs))
            imp.append(seconds)
            del module, program
        out["models"][name] = {
            "export_and_import": summary(e2e),
            "import_only": summary(imp),
            "export_in_worker": summary(exp),
            "decompositions_in_worker": summary(dec),
            "ir": info,
        }
    return out


def run_torch_mlir(repeats: dict[str, int]) -> dict:
    """The worker's JSON, or {"error": why}."""
    if not Path(TORCH_MLIR_PYTHON).exists():
        return {"error": f"no torch-mlir interpreter at {TORCH_MLIR_PYTHON} (see this file's docstring)"}
    command = [TORCH_MLIR_PYTHON, str(Path(__file__).resolve()), "--torch-mlir-worker",
               "--repeats", json.dumps(repeats)]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=1200)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"torch-mlir worker exited {proc.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------------------------------------
# attnc side (project venv).
# ---------------------------------------------------------------------------------------------------------


def attnc_side(repeats: dict[str, int]) -> dict:
    from compiler.api import make_context
    from compiler.frontend.fx_importer import import_exported_program
    from passes.attn_raise import AttnRaisePass

    ctx = make_context()
    out = {}
    for name, (factory, description) in MODELS.items():
        model, args = factory()
        args = tuple(args)
        exp, dec, imp, rai, both = [], [], [], [], []
        program = None
        for _ in range(repeats[name] + 1):
            t_export, t_decomp, program = export_program(model, args)
            exp.append(t_export)
            dec.append(t_decomp)
        for _ in range(repeats[name] + 1):
            t_import, imported = timed(lambda program=program: import_exported_program(program))
            t_raise, _ = timed(lambda imported=imported: AttnRaisePass().apply(ctx, imported.module))
            imp.append(t_import)
            rai.append(t_raise)
            both.append(t_import + t_raise)
        sdpa = sum(1 for op in imported.module.walk() if op.name == "attn.sdpa")
        out[name] = {
            "description": description.format(t=args[0].shape[1]),
            "input_shape": list(args[0].shape),
            "parameters": sum(p.numel() for p in model.parameters()),
            "export": summary(exp),
            "run_decompositions": summary(dec),
            "export_total": summary([a + b for a, b in zip(exp, dec)]),
            "import": summary(imp),
            "attn_raise": summary(rai),
            "import_to_attn": summary(both),
            "ir": {"nn_ops_after_import": imported.op_count, "attn_sdpa_after_raise": sdpa},
        }
        del model, program, imported
    return out


def machine_note() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical cores (shared, noisy), {platform.platform()}, "
            f"Python {platform.python_version()}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def table(results: dict) -> str:
    ours, tm = results["attnc"], results["torch_mlir"]
    names = list(ours)
    rows = [
        ("torch.export.export", lambda n: ms(ours[n]["export"]["median_s"])),
        ("  .run_decompositions({})", lambda n: ms(ours[n]["run_decompositions"]["median_s"])),
        ("(1) export total", lambda n: ms(ours[n]["export_total"]["median_s"])),
        ("attnc import_exported_program", lambda n: ms(ours[n]["import"]["median_s"])),
        ("  attn-raise", lambda n: ms(ours[n]["attn_raise"]["median_s"])),
        ("(2) attnc import → attn", lambda n: ms(ours[n]["import_to_attn"]["median_s"])),
        ("(2)/(1) (goal ≤ 10 %)", lambda n: f"{results['ratios'][n]['ours_over_export']:.1%}"),
        ("attnc end to end (1)+(2)", lambda n: ms(results["ratios"][n]["ours_end_to_end_s"])),
    ]
    if "error" not in tm:
        rows += [
            ("(3) torch-mlir export_and_import", lambda n: ms(tm["models"][n]["export_and_import"]["median_s"])),
            ("(3') torch-mlir import only", lambda n: ms(tm["models"][n]["import_only"]["median_s"])),
            ("(3)/((1)+(2)) end to end", lambda n: f"{results['ratios'][n]['torch_mlir_e2e_over_ours_e2e']:.2f}×"),
            ("(3')/(2) import only", lambda n: f"{results['ratios'][n]['torch_mlir_import_over_ours_import']:.2f}×"),
        ]
    width = max(len(r[0]) for r in rows)
    header = f"| {'median of repeats'.ljust(width)} | " + " | ".join(names) + " |"
    sep = "|" + "-" * (width + 2) + "|" + "|".join("-" * (len(n) + 2) for n in names) + "|"
    body = [f"| {label.ljust(width)} | " + " | ".join(fn(n).rjust(len(n)) for n in names) + " |"
            for label, fn in rows]
    return "\n".join([header, sep, *body])


def ratios(results: dict) -> dict:
    ours, tm = results["attnc"], results["torch_mlir"]
    out = {}
    for name, r in ours.items():
        e2e = r["export_total"]["median_s"] + r["import_to_attn"]["median_s"]
        entry = {
            "ours_over_export": r["import_to_attn"]["median_s"] / r["export_total"]["median_s"],
            "ours_end_to_end_s": e2e,
        }
        if "error" not in tm:
            t = tm["models"][name]
            entry["torch_mlir_e2e_over_ours_e2e"] = t["export_and_import"]["median_s"] / e2e
            entry["torch_mlir_import_over_ours_import"] = (
                t["import_only"]["median_s"] / r["import_to_attn"]["median_s"]
            )
        out[name] = entry
    return out


def markdown(results: dict) -> str:
    tm = results["torch_mlir"]
    lines = [
        "# Import time: torch.export vs attnc import vs torch-mlir",
        "",
        f"- Command: `{results['command']}` (from the repository root)",
        f"- Date: {results['date']}",
        f"- Machine: {results['machine']}; 1-min load average {results['load_average']['start'][0]:.1f} at start, "
        f"{results['load_average']['end'][0]:.1f} at end (other jobs share the cores); bench wall time "
        f"{results['bench_wall_s']:.0f} s",
        f"- Versions: torch {results['versions']['torch']}, transformers {results['versions']['transformers']}, "
        f"xdsl {results['versions']['xdsl']}"
        + ("" if "error" in tm else f", torch-mlir {tm['version']} (worker process, torch {tm['torch']})"),
        f"- Repeats: {', '.join(f'{n}: {k}' for n, k in results['repeats'].items())}; each cell is the median "
        "(the machine is 2 shared noisy cores; min/max and every sample are in import_time.json), after one "
        "warm-up run of each step per model that is left out of the median (its time is `cold_s` in the JSON). "
        "Wall-clock `time.perf_counter`, `gc.collect()` before each timed step, model construction not timed.",
        "",
        table(results),
        "",
        "Models:",
        "",
    ]
    for name, r in results["attnc"].items():
        lines.append(f"- **{name}**: {r['description']}; {r['parameters'] / 1e6:.1f} M parameters; after import "
                     f"{r['ir']['nn_ops_after_import']} ops, {r['ir']['attn_sdpa_after_raise']} `attn.sdpa` "
                     "after attn-raise.")
    lines += [
        "",
        "Rows:",
        "",
        "- (1) `torch.export.export(model, args)` then `.run_decompositions({})`: attnc's frontend first stage.",
        "- (2) `import_exported_program(program)` then `AttnRaisePass().apply(ctx, module)`, `ctx` from "
        "`compiler.api.make_context()`; export excluded, same program reused for each repeat (the importer does "
        "not mutate it).",
        "- (3) `torch_mlir.fx.export_and_import(model, *args, decomposition_table={}, "
        "experimental_support_mutation=True, hooks=WeightsAsArguments())`, output type RAW (torch dialect, no "
        "lowering). It runs its own `torch.export.export`; with `decomposition_table={}` it skips "
        "`run_decompositions` altogether, so it imports the un-decomposed training-IR graph.",
        "- (3') the same call on an already exported `run_decompositions({})` program (the exact input attnc "
        "imports; a fresh export for each repeat, because torch-mlir's `import_program` rewrites the graph).",
        "",
    ]
    if "error" in tm:
        lines += [f"torch-mlir: **not measured** — {tm['error']}", ""]
    else:
        lines += ["torch-mlir mode and output:", ""]
        lines.append(
            "- Weights as function arguments: `import_program` (selected by `experimental_support_mutation=True`) "
            "with a `FxImporterHooks.resolve_input` hook that appends an entry-block argument for every parameter "
            "and buffer (the function type is fixed up afterwards, outside the timing). No weight is copied into "
            "the IR. The default frozen mode (`import_frozen_program`) was not used: it makes every weight a "
            "`torch.vtensor.literal` through `np.array(tensor.tolist())` and prints as hex (681 MB for "
            "BERT-base, as measured in DESIGN.md; not re-measured here).")
        for name, t in tm["models"].items():
            ir = t["ir"]
            lines.append(
                f"- {name}: {ir['weight_arguments']} weights/buffers as arguments, {ir['aten_ops']} "
                f"`torch.aten.*` ops, {ir['vtensor_literals']} literals, verifies: {ir['verifies']}, "
                f"IR text {ir['ir_chars'] / 1e3:.0f} kB. "
                f"Export inside the worker (same torch): {ms(t['export_in_worker']['median_s'])} + "
                f"{ms(t['decompositions_in_worker']['median_s'])} run_decompositions.")
        lines.append("")
    lines += ["Reading:", ""]
    for name, r in results["attnc"].items():
        share = r["run_decompositions"]["median_s"] / r["export_total"]["median_s"]
        lines.append(f"- {name}: `run_decompositions({{}})` is {share:.0%} of (1); attnc's import → attn is "
                     f"{results['ratios'][name]['ours_over_export']:.1%} of (1).")
    if "error" not in tm:
        lines.append("- Where torch-mlir's end to end (3) is faster, that is mostly from skipping "
                     "`run_decompositions` (with "
                     "`decomposition_table={}`); on the same decomposed program (3') its C++ importer is still "
                     "faster than attnc's Python importer + attn-raise, but both are a few percent of export.")
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-mlir-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    options = parser.parse_args()
    repeats = json.loads(options.repeats) if options.repeats else REPEATS
    if options.torch_mlir_worker:
        print(json.dumps(torch_mlir_worker(repeats)), flush=True)
        return 0

    from importlib.metadata import version

    import transformers

    start = time.perf_counter()
    results = {
        "command": ".venv/bin/python bench/import_time.py",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_note(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "xdsl": version("xdsl")},
        "repeats": repeats,
        "load_average": {"start": os.getloadavg()},
    }
    print("attnc side (export + import + attn-raise) ...", flush=True)
    results["attnc"] = attnc_side(repeats)
    print("torch-mlir side (subprocess) ...", flush=True)
    results["torch_mlir"] = run_torch_mlir(repeats)
    results["ratios"] = ratios(results)
    results["bench_wall_s"] = time.perf_counter() - start
    results["load_average"]["end"] = os.getloadavg()
    text = markdown(results)
    print()
    print(text)
    if not options.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "import_time.md").write_text(text)
        (RESULTS / "import_time.json").write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {RESULTS / 'import_time.md'} and {RESULTS / 'import_time.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
