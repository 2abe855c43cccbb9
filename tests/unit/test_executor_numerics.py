"""The reference executor reproduces PyTorch on real and representative models, before and after attn-raise."""

from __future__ import annotations

import pytest
import torch

from compiler.api import apply_passes, flat_tensors, max_abs_error, parse_pipeline
from compiler.frontend.fx_importer import import_exported_program
from compiler.report import attention_blocks, ops_by_dialect
from runtime.executor import Executor

# model -> number of attention blocks attn-raise must find
EXPECTED_BLOCKS = {
    "minilm": 6,
    "minilm-sdpa": 6,
    "gpt2-tiny": 2,
    "gpt2-tiny-sdpa": 2,
    "llama-tiny": 2,
    "vit-tiny": 4,
    "transformer-encoder": 2,
    "mha": 1,
    "mha-sdpa": 1,
}
TOLERANCE = 1e-4


@pytest.mark.parametrize("name", list(EXPECTED_BLOCKS))
def test_executor_matches_pytorch_before_and_after_raise(name, exported):
    spec, program, reference = exported(name)
    reference = flat_tensors(reference)

    imported = import_exported_program(program)
    with torch.no_grad():
        before = Executor(imported.module, imported.weights)(*spec.inputs)
    assert max_abs_error(before, reference) <= TOLERANCE

    apply_passes(imported.module, parse_pipeline("attn-raise"))
    blocks = attention_blocks(imported.module)
    assert len(blocks) == EXPECTED_BLOCKS[name]
    assert ops_by_dialect(imported.module)["attn"] == EXPECTED_BLOCKS[name]
    # every raised block keeps the module path of the attention module it came from
    assert all(path != "<top>" for path, _, _ in blocks)
    with torch.no_grad():
        after = Executor(imported.module, imported.weights)(*spec.inputs)
    assert max_abs_error(after, reference) <= TOLERANCE


def test_eager_softmax_chain_is_gone_after_raise(exported):
    spec, program, _ = exported("minilm")
    imported = import_exported_program(program)
    apply_passes(imported.module, parse_pipeline("attn-raise"))
    names = [op.name for op in imported.module.walk()]
    assert "nn.softmax" not in names
    assert names.count("nn.matmul") == 0


def test_minilm_module_paths_are_on_every_op(exported):
    from dialects.locations import module_path_of

    _, program, _ = exported("minilm")
    imported = import_exported_program(program)
    paths = {module_path_of(op) for op in imported.module.walk() if op.name == "nn.linear"}
    assert "bert.encoder.layer.3.attention.self.query" in paths
    assert "bert.encoder.layer.0.attention.output.dense" in paths


def test_gradients_flow_through_the_executor_and_match_pytorch(exported):
    spec, program, _ = exported("vit-tiny")
    imported = import_exported_program(program)
    apply_passes(imported.module, parse_pipeline("attn-raise"))
    weights = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in imported.weights.items()}
    (logits,) = Executor(imported.module, weights)(*spec.inputs)
    logits.square().sum().backward()

    model = spec.model
    model.zero_grad()
    model(*spec.inputs).square().sum().backward()
    torch_grads = dict(model.named_parameters())
    compared = 0
    for name, tensor in weights.items():
        if tensor.grad is None:
            continue
        reference = torch_grads[name].grad
        assert torch.allclose(tensor.grad, reference, atol=1e-4, rtol=1e-3), name
        compared += 1
    assert compared == len(torch_grads)


def test_executor_rejects_inputs_of_the_wrong_shape(exported):
    from runtime.executor import ExecutionError

    spec, program, _ = exported("mha")
    imported = import_exported_program(program)
    with pytest.raises(ExecutionError, match="compiled for"):
        Executor(imported.module, imported.weights)(torch.zeros(1, 3, 64))


def test_missing_weight_is_a_clear_execution_error(exported):
    from runtime.executor import ExecutionError

    spec, program, _ = exported("mha")
    imported = import_exported_program(program)
    weights = dict(imported.weights)
    missing = sorted(weights)[0]
    del weights[missing]
    with pytest.raises(ExecutionError, match=missing.replace(".", r"\.")):
        Executor(imported.module, weights)(*spec.inputs)


def test_a_run_frees_each_intermediate_after_its_last_use(exported):
    """The interpreter would hold every value until @main returns; the executor drops each one after its last
    user, so by the return the first projection of layer 0 is gone while the outputs stay what they were."""
    import weakref

    from xdsl.interpreter import Interpreter

    spec, program, reference = exported("minilm")
    imported = import_exported_program(program)
    apply_passes(imported.module, parse_pipeline("attn-raise"))
    first_linear = next(op for op in imported.module.walk() if op.name == "nn.linear")

    class Watch(Interpreter.Listener):
        produced: weakref.ref | None = None
        alive_at_return: bool | None = None

        def did_interpret_op(self, op, results) -> None:
            if op is first_linear:
                self.produced = weakref.ref(results[0])

        def will_interpret_op(self, op, args) -> None:
            if op.name == "func.return":
                self.alive_at_return = self.produced is not None and self.produced() is not None

    watch = Watch()
    with torch.no_grad():
        outputs = Executor(imported.module, imported.weights, listeners=[watch])(*spec.inputs)
    assert watch.produced is not None and watch.alive_at_return is False
    assert max_abs_error(outputs, flat_tensors(reference)) <= TOLERANCE
