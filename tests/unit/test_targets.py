"""Targets are plug-ins: the driver finds them in the registry and never names one.

A dummy target, defined and registered only here, is lowered to, run, summarised and saved/loaded through
the ordinary driver (compile_model, CompiledModel, the ``attnc run`` command) with no driver edit. Its
"device" is one attribute on the module, and its runtime replaces ``nn.gelu`` by a tanh approximation, so
a run proves the target's functions were used.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls
from xdsl.passes import ModulePass

from compiler.api import CompiledModel, ModelSpec, apply_passes, compile_model
from compiler.cli.main import main
from dialects import nn
from targets.base import Target
from targets.registry import all_targets, register_target, target_of, unregister_target

ATTRIBUTE = "toy.device"


@dataclass(frozen=True)
class LowerToToy(ModulePass):
    """Marks the module as lowered to the toy target."""

    name = "lower-to-toy"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        op.attributes[ATTRIBUTE] = StringAttr("tanh-gelu")


@register_impls
class ToyFunctions(InterpreterFunctions):
    @impl(nn.GeluOp)
    def run_gelu(self, interpreter: Interpreter, op: nn.GeluOp, args):
        return (torch.nn.functional.gelu(args[0], approximate="tanh"),)


class ToyTarget(Target):
    name = "toy"
    description = "a target that computes GELU with the tanh approximation"
    lowering_pass = "lower-to-toy"
    seed_meaning = "nothing (deterministic)"

    def owns(self, module: ModuleOp) -> bool:
        return ATTRIBUTE in module.attributes

    def runtime_functions(self, module: ModuleOp, seed: int = 0) -> list[InterpreterFunctions]:
        return [ToyFunctions()]

    def summary(self, module: ModuleOp) -> str:
        return f"toy: {sum(isinstance(op, nn.GeluOp) for op in module.walk())} tanh GELUs"

    def cost_report(self, module: ModuleOp) -> dict[str, float]:
        return {"gelus": sum(isinstance(op, nn.GeluOp) for op in module.walk())}


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down = torch.nn.Linear(8, 16), torch.nn.Linear(16, 8)

    def forward(self, x):
        return self.down(torch.nn.functional.gelu(self.up(x)))


@pytest.fixture
def toy_target():
    target = register_target(ToyTarget())
    yield target
    unregister_target(target.name)


def test_a_registered_target_runs_end_to_end_without_driver_edits(toy_target, tmp_path: Path):
    torch.manual_seed(0)
    model, x = Mlp().eval(), torch.randn(3, 8) * 3
    compiled = compile_model(ModelSpec("mlp", model, (x,)))
    exact = compiled.run()[0]
    apply_passes(compiled.module, [LowerToToy()])
    assert target_of(compiled.module) is toy_target and "toy" in all_targets()
    with torch.no_grad():
        expected = model.down(torch.nn.functional.gelu(model.up(x), approximate="tanh"))
    lowered = compiled.run()[0]
    assert torch.allclose(lowered, expected, atol=1e-6) and not torch.equal(lowered, exact)
    saved = compiled.save(tmp_path / "toy")
    assert torch.equal(CompiledModel.load(saved).run()[0], lowered)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", str(saved)]) == 0
    assert "target: toy: 1 tanh GELUs" in out.getvalue()


def test_the_crossbar_is_a_registered_target():
    crossbar = all_targets()["crossbar"]
    compiled = compile_model("mha-sdpa", "attn-raise,lower-to-xbar")
    assert target_of(compiled.module) is crossbar
    assert crossbar.cost_report(compiled.module)["tiles"] > 0
    assert compiled.run(seed=1)[0].shape == (2, 10, 64)


def test_driver_names_no_target():
    root = Path(__file__).resolve().parents[2] / "compiler"
    for path in [*root.glob("*.py"), *root.glob("cli/*.py")]:
        if path.name in ("registry.py", "pipelines.py", "models.py", "recovery.py"):
            continue  # pass registry, named pipeline strings, calibration text
        text = path.read_text().lower()
        for word in ("xbar", "crossbar"):
            assert word not in text, f"{path.name} names the {word} target"


def test_crossbar_pass_options_ir_keys_and_config_fields_are_one_set():
    """One schema: the lower-to-xbar options are CrossbarConfig's fields (and skip-zero-tiles, a per-op
    choice of the lowering), the xbar.device keys are the same
    names (the tile size lives in the !xbar.tiles types instead), and reading the attribute back gives the
    configuration the options describe."""
    import dataclasses

    from targets.crossbar.device import CrossbarConfig
    from targets.crossbar.lowering import LOWERING_FIELDS, TILE_FIELDS, LowerToXbarPass
    from targets.crossbar.simulator import device_config

    config_fields = {f.name for f in dataclasses.fields(CrossbarConfig)}
    options = {f.name for f in dataclasses.fields(LowerToXbarPass)}
    lowering = LowerToXbarPass(gamma=3.0, input_bits=0, stuck_at_rate=0.01)
    assert options == config_fields | set(LOWERING_FIELDS)
    assert set(lowering.device_attribute().data) == config_fields - set(TILE_FIELDS)
    expected = CrossbarConfig(
        **{name: getattr(lowering, name) for name in config_fields if name not in TILE_FIELDS} | {"input_bits": None}
    )
    assert device_config(lowering.device_attribute()) == expected
    # One default per parameter (an ideal converter is 0 as an option, None in the configuration).
    defaults = LowerToXbarPass()
    for item in dataclasses.fields(CrossbarConfig):
        assert getattr(defaults, item.name) == (item.default if item.default is not None else 0), item.name


def test_crossbar_options_are_validated_once_with_option_spellings():
    """The pass reports the device's own validation, naming the option as the user wrote it."""
    import pytest
    from xdsl.utils.exceptions import PassFailedException

    from targets.crossbar.device import CrossbarConfig
    from targets.crossbar.lowering import LowerToXbarPass

    for options, option_message, config_message in [
        ({"bits_per_cell": 9}, "bits-per-cell must be in 1..8, got 9", "bits_per_cell must be in 1..8, got 9"),
        ({"stuck_at_high_fraction": 2.0}, "stuck-at-high-fraction must be in [0, 1]", "stuck_at_high_fraction must be in [0, 1]"),
        ({"read_noise_pool": -1}, "read-noise-pool must be >= 0", "read_noise_pool must be >= 0"),
    ]:
        with pytest.raises(PassFailedException, match=re.escape(option_message)):
            LowerToXbarPass(**options).check_options()
        with pytest.raises(ValueError, match=re.escape(config_message)):
            CrossbarConfig(**options)
