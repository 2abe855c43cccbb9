"""kv-clip and the crossbar target through the executor: identities, agreement with the reference, noise."""

from __future__ import annotations

import pytest
import torch

from compiler.api import CompiledModel, apply_passes, parse_pipeline, target_functions
from compiler.frontend.fx_importer import import_exported_program
from dialects.locations import module_path_of
from runtime.clip_kernels import kv_clip_values
from runtime.executor import ExecutionError, Executor
from targets.crossbar.device import CrossbarConfig, clipformer_conductance

# An (almost) ideal crossbar: 16-bit weights in 2-bit cells, ideal DAC and ADC, no noise of any kind.
IDEAL = "lower-to-xbar{weight-bits=16 input-bits=0 adc-bits=0 gamma=0.0}"


def lowered(exported, name: str, pipeline: str) -> tuple[object, CompiledModel]:
    spec, program, reference = exported(name)
    imported = import_exported_program(program)
    apply_passes(imported.module, parse_pipeline(pipeline))
    return reference, CompiledModel(imported.module, imported.weights, spec.inputs, imported.input_names)


def first(outputs) -> torch.Tensor:
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).norm() / ref.norm())


def test_kv_clip_value_form_is_the_conductance_transform() -> None:
    cfg = CrossbarConfig()
    x = torch.randn(2, 3, 16, 8, dtype=torch.float64)
    scale = x.abs().amax(dim=(-2, -1), keepdim=True)
    g = cfg.g_min + x.abs() / scale * cfg.g_range
    for alpha, beta in [(2.0, 0.25), (1.0, 0.5), (4.0, 0.1)]:
        g_clipped = clipformer_conductance(g, alpha, beta, cfg)
        expected = torch.sign(x) * (g_clipped - cfg.g_min) / cfg.g_range * scale
        assert torch.allclose(kv_clip_values(x, alpha, beta, cfg.g_min, cfg.g_max), expected, atol=1e-12)
    assert torch.allclose(kv_clip_values(x, 0.0, 1.0, cfg.g_min, cfg.g_max), x, atol=1e-12)


def test_kv_clip_identity_options_leave_minilm_unchanged(exported) -> None:
    reference, plain = lowered(exported, "minilm", "attn-raise")
    _, identity = lowered(exported, "minilm", "attn-raise,kv-clip{alpha=0.0 beta=1.0}")
    _, clipped = lowered(exported, "minilm", "attn-raise,kv-clip")
    assert sum(op.name == "attn.kv_clip" for op in identity.module.walk()) == 12
    base = plain.run()
    assert all(torch.equal(a, b) for a, b in zip(identity.run(), base))
    # The operating point does change the outputs (the check above is not vacuous).
    assert (clipped.run()[0] - base[0]).abs().max().item() > 1e-2


def test_ideal_crossbar_matches_the_reference(exported) -> None:
    reference, compiled = lowered(exported, "vit-tiny", f"attn-raise,{IDEAL}")
    names = {op.name for op in compiled.module.walk()}
    assert {"xbar.program", "xbar.write", "xbar.mvm", "attn.softmax"} <= names
    assert "nn.linear" not in names and "attn.sdpa" not in names
    assert relative_error(compiled.run()[0], first(reference)) < 1e-3


def test_clip_on_an_ideal_crossbar_equals_clip_in_value_units(exported) -> None:
    # The same ClipFormer, once folded into the crossbar writes and once as attn.kv_clip on the reference.
    _, on_crossbar = lowered(exported, "vit-tiny", f"attn-raise,kv-clip{{alpha=2.0 beta=0.25}},{IDEAL}")
    _, reference_clip = lowered(exported, "vit-tiny", "attn-raise,kv-clip{alpha=2.0 beta=0.25}")
    reference, _ = lowered(exported, "vit-tiny", "attn-raise")
    target, clipped = on_crossbar.run()[0], reference_clip.run()[0]
    assert relative_error(target, clipped) < 1e-3
    assert relative_error(clipped, first(reference)) > 1e-2  # clipping itself is visible


def test_same_seed_same_outputs_other_seed_other_noise(exported) -> None:
    _, compiled = lowered(exported, "vit-tiny", "attn-raise,lower-to-xbar{gamma=5.0 read-noise=0.01 program-noise=0.01}")
    a, b, c = compiled.run(seed=3)[0], compiled.run(seed=3)[0], compiled.run(seed=4)[0]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_static_tiles_are_programmed_once_per_model_instance(exported) -> None:
    # Programming noise only: one executor (one chip) gives the same outputs on every inference,
    # another chip (seed) differs.
    _, compiled = lowered(exported, "vit-tiny", "attn-raise,lower-to-xbar{gamma=0.0 program-noise=0.02}")
    chip = compiled.executor(seed=1)
    with torch.no_grad():
        first_run, second_run = chip(*compiled.inputs)[0], chip(*compiled.inputs)[0]
        other_chip = compiled.executor(seed=2)(*compiled.inputs)[0]
    assert torch.equal(first_run, second_run)
    assert not torch.equal(first_run, other_chip)


@pytest.mark.parametrize("noise", ["gamma=5.0", "gamma=5.0 program-noise=0.02"])
def test_the_chip_is_programmed_at_its_first_matrix_with_unchanged_outputs(exported, monkeypatch, noise) -> None:
    """Noise-free programming programs every parameter matrix at the first ``xbar.program`` (as a chip is
    programmed before it runs); noisy programming keeps the op-by-op order of its draws. Outputs are the bits
    that programming each matrix at its own op gives."""
    from xdsl.interpreter import Interpreter

    from dialects import xbar
    from targets.crossbar.simulator import XbarFunctions

    monkeypatch.setenv("ATTNC_CHIP_CACHE", "off")
    _, compiled = lowered(exported, "vit-tiny", f"attn-raise,lower-to-xbar{{{noise}}}")
    programs = [op for op in compiled.module.walk() if isinstance(op, xbar.ProgramOp)]

    def run() -> tuple[tuple[torch.Tensor, ...], int]:
        (chip,) = target_functions(compiled.module, seed=1)
        counted: list[int] = []

        class AfterTheFirst(Interpreter.Listener):
            def did_interpret_op(self, op, results) -> None:
                if isinstance(op, xbar.ProgramOp) and not counted:
                    counted.append(len(chip.programmed))

        executor = Executor(compiled.module, compiled.weights, extra_functions=[chip], listeners=[AfterTheFirst()])
        with torch.no_grad():
            return executor(*compiled.inputs), counted[0]

    at_once, programmed = run()
    assert programmed == (len(programs) if "program-noise" not in noise else 1)
    monkeypatch.setattr(XbarFunctions, "_program_chip", lambda self, interpreter, first: None)
    op_by_op, programmed = run()
    assert programmed == 1
    assert all(torch.equal(a, b) for a, b in zip(at_once, op_by_op, strict=True))


def test_programming_the_chip_at_once_is_invisible_to_listeners_and_errors(exported) -> None:
    """Listeners see every op once, in program order; a matrix that cannot be programmed fails at its own op."""
    from xdsl.dialects.builtin import IntegerAttr, UnitAttr, i64
    from xdsl.interpreter import Interpreter

    from dialects import xbar

    _, compiled = lowered(exported, "vit-tiny", "attn-raise,lower-to-xbar")
    ops = [op for op in compiled.module.walk() if op.parent_block() is compiled.module.body.block.first_op.body.block]
    seen: list = []

    class Seen(Interpreter.Listener):
        def will_interpret_op(self, op, args) -> None:
            seen.append(op)

    executor = Executor(compiled.module, compiled.weights, extra_functions=target_functions(compiled.module),
                        listeners=[Seen()])
    with torch.no_grad():
        executor(*compiled.inputs)
    assert seen == ops

    programs = [op for op in ops if isinstance(op, xbar.ProgramOp)]
    third = programs[2]  # compiled with a count of all-zero tiles the weights do not have
    third.attributes["skip_zero_tiles"] = UnitAttr()
    third.attributes["zero_tiles"] = IntegerAttr(1, i64)
    with pytest.raises(ExecutionError, match=r"^xbar\.program at '[^']+' failed: ValueError: the weight has 0 all-zero"):
        compiled.run()
    with pytest.raises(ExecutionError) as failure:
        compiled.run()
    assert module_path_of(third) in str(failure.value)


def test_write_noise_grows_with_gamma_and_clipping_cuts_the_noise_part(exported) -> None:
    reference, _ = lowered(exported, "vit-tiny", "attn-raise")
    errors = {}
    for label, pipeline in {
        "gamma0": "attn-raise,lower-to-xbar{gamma=0.0}",
        "gamma3": "attn-raise,lower-to-xbar{gamma=3.0}",
        "gamma5": "attn-raise,lower-to-xbar{gamma=5.0}",
        "clip0": "attn-raise,kv-clip,lower-to-xbar{gamma=0.0}",
        "clip5": "attn-raise,kv-clip,lower-to-xbar{gamma=5.0}",
    }.items():
        _, compiled = lowered(exported, "vit-tiny", pipeline)
        errors[label] = sum(relative_error(compiled.run(seed=s)[0], first(reference)) for s in range(4)) / 4
    assert errors["gamma0"] < errors["gamma3"] < errors["gamma5"]
    # With clipping, write noise adds less on top of the (deterministic) clipping error.
    assert errors["clip5"] - errors["clip0"] < errors["gamma5"] - errors["gamma0"]


def test_lowered_module_needs_the_simulator(exported) -> None:
    _, compiled = lowered(exported, "vit-tiny", "attn-raise,lower-to-xbar")
    assert len(target_functions(compiled.module)) == 1
    with pytest.raises(Exception, match="xbar.program"):
        Executor(compiled.module, compiled.weights)(*compiled.inputs)


def test_compile_and_run_a_crossbar_model_from_the_cli(tmp_path, capsys) -> None:
    from compiler.cli.main import main

    out = tmp_path / "out"
    assert main(["compile", "mha", "-p", "attn-raise,kv-clip{alpha=2.0 beta=0.25},lower-to-xbar", "-o", str(out)]) == 0
    assert "xbar.write" in (out / "model.mlir").read_text()
    assert main(["run", str(out), "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert "target: memristive crossbar" in printed and "gamma=5.0" in printed
    assert "output 0 vs PyTorch: cosine=" in printed
    cosine = float(printed.split("output 0 vs PyTorch: cosine=")[1].split()[0])
    assert 0.5 < cosine < 0.99999  # noisy but sane


def test_pruned_minilm_skips_its_all_zero_tiles_with_unchanged_outputs() -> None:
    """Wanda at 90 % leaves whole 8x8 tiles of W_Q/W_K empty; their count is recorded at compile time, the
    cost report has it, and an ideal chip gives the same outputs with and without skipping them."""
    from compiler.api import compile_model, parse_module, print_module
    from dialects import xbar
    from targets.crossbar.target import CROSSBAR

    ideal_8x8 = "lower-to-xbar{tile-rows=8 tile-cols=8 input-bits=0 adc-bits=0 gamma=0.0}"
    skipping = compile_model("minilm", f"attn-raise,attn-prune{{method=wanda sparsity=0.9}},{ideal_8x8}")
    marked = {op.matrix.owner.key: op.zero_tiles.value.data for op in skipping.module.walk()
              if isinstance(op, xbar.ProgramOp) and op.skip_zero_tiles is not None}
    layers = [f"bert.encoder.layer.{i}.attention.self.{p}.weight" for i in range(6) for p in ("query", "key")]
    assert sorted(marked) == sorted(layers)
    expected = {}
    for key in marked:  # an independent count: (out, in) -> 8x8 blocks, none non-zero
        blocks = skipping.weights[key].reshape(48, 8, 48, 8)
        expected[key] = int((blocks != 0).sum(dim=(1, 3)).eq(0).sum())
    assert marked == expected and sum(expected.values()) > 100
    assert CROSSBAR.cost_report(skipping.module)["zero tiles skipped"] == sum(expected.values())
    reread = parse_module(print_module(skipping.module))  # the count is in the saved IR
    assert CROSSBAR.cost_report(reread)["zero tiles skipped"] == sum(expected.values())
    for op in reread.walk():  # the same chip programming every tile
        if isinstance(op, xbar.ProgramOp):
            op.attributes.pop("skip_zero_tiles", None)
            op.attributes.pop("zero_tiles", None)
    dense = CompiledModel(reread, skipping.weights, skipping.inputs, skipping.input_names)
    assert CROSSBAR.cost_report(dense.module)["zero tiles skipped"] == 0
    remarks = [str(r) for r in skipping.remarks]
    assert any(f"{sum(expected.values())} of {12 * 48 * 48} tiles of the 12 pruned matrices are all zero" in r for r in remarks)
    assert torch.equal(skipping.run(seed=3)[0], dense.run(seed=3)[0])
    key = next(k for k, count in expected.items() if count)  # weights that are not the compiled ones: an error
    changed = skipping.weights[key].clone()
    changed[changed == 0] = 1e-3
    other = CompiledModel(skipping.module, {**skipping.weights, key: changed}, skipping.inputs, skipping.input_names)
    with pytest.raises(ExecutionError, match="not the weights the module was compiled with"):
        other.run(seed=3)
