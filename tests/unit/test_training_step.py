"""The ``training-step`` pass: its gradients against ``torch.autograd`` on the PyTorch model, its SGD steps
(with momentum) against ``torch.optim.SGD``, on every bundled model small enough to train."""

from __future__ import annotations

import re

import pytest
import torch
from xdsl.utils.exceptions import PassFailedException

from compiler.api import apply_passes, compile_model, parse_module, print_module
from dialects import grad
from passes.training_step import MOMENTUM_SUFFIX, UPDATES_ATTRIBUTE, TrainingStepPass
from runtime.executor import Executor

LR, MOMENTUM = 0.1, 0.9
TOLERANCE = 1e-5

# Bundled models small enough to train on the reference executor in a unit test (MiniLM is not).
TRAINABLE = ["vit-digits", "vit-tiny", "transformer-encoder", "mha", "mha-sdpa", "gpt2-tiny", "llama-tiny"]


def training_step(name: str, pipeline: str = "attn-raise", momentum: float = MOMENTUM):
    compiled = compile_model(name, pipeline)
    model = compiled.reference
    assert isinstance(model, torch.nn.Module)
    frozen = "|".join(re.escape(key) for key, _ in model.named_buffers())
    apply_passes(compiled.module, [TrainingStepPass(lr=LR, momentum=momentum, frozen=frozen)])
    return compiled, model


def updates_of(compiled) -> list[str]:
    return [key.data for key in compiled.module.attributes[UPDATES_ATTRIBUTE].data]


def torch_logits(model: torch.nn.Module, inputs) -> torch.Tensor:
    out = model(*inputs)
    return out if isinstance(out, torch.Tensor) else out[0]


def canonical_names(model: torch.nn.Module) -> dict[str, str]:
    """Every parameter name (tied aliases included) -> the name torch's optimiser sees."""
    first: dict[int, str] = {}
    names = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names[name] = first.setdefault(id(parameter), name)
    return names


@pytest.mark.parametrize("name", TRAINABLE)
def test_two_sgd_steps_match_torch(name):
    """Step 1: the velocities a zero-initialised momentum step returns are the gradients; both steps: the
    parameters equal torch.optim.SGD's (the second step uses the momentum carried over)."""
    compiled, model = training_step(name)
    model.train(False)
    keys = updates_of(compiled)
    executor = Executor(compiled.module, compiled.weights)
    optimiser = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    canonical = canonical_names(model)
    parameters = dict(model.named_parameters())
    generator = torch.Generator().manual_seed(0)
    for step in range(2):
        logits = torch_logits(model, compiled.inputs)
        labels = torch.randint(0, logits.shape[-1], logits.shape[:-1], generator=generator)
        with torch.no_grad():
            loss, *updated = executor(*compiled.inputs, labels)
        optimiser.zero_grad()
        torch_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        torch_loss.backward()
        assert abs(float(loss) - float(torch_loss.detach())) < TOLERANCE
        if step == 0:  # the gradient of every parameter (tied ones: the sum over their uses)
            gradients: dict[str, torch.Tensor] = {}
            for key, value in zip(keys, updated):
                if key.endswith(MOMENTUM_SUFFIX):
                    owner = canonical[key.removesuffix(MOMENTUM_SUFFIX)]
                    gradients[owner] = gradients.get(owner, 0) + value
            assert set(gradients) == {n for n, p in parameters.items() if p.grad is not None}
            for owner, gradient in gradients.items():
                assert torch.allclose(gradient, parameters[owner].grad, atol=TOLERANCE, rtol=0), owner
        optimiser.step()
        if len(set(canonical.values())) == len(canonical):  # untied: each parameter is one torch parameter
            for key, value in zip(keys, updated):
                if not key.endswith(MOMENTUM_SUFFIX):
                    assert torch.allclose(value, parameters[key].detach(), atol=TOLERANCE, rtol=0), (step, key)
        executor.weights.update({key: value for key, value in zip(keys, updated)})
        if len(set(canonical.values())) != len(canonical):
            break  # tied weights are two parameters in the IR: one step is comparable, not two


def test_cosine_attention_gradients_match_autograd_through_the_executor():
    """attn.cosine has no PyTorch original: its generated gradients (grad.cosine_backward, the m of each head
    included) are compared with autograd through the forward program on the same executor."""
    forward = compile_model("vit-tiny", "attn-raise,attn-cosine")
    compiled, _ = training_step("vit-tiny", "attn-raise,attn-cosine")
    assert any(isinstance(op, grad.CosineBackwardOp) for op in compiled.module.walk())
    labels = torch.tensor([1, 4, 7])
    weights = {k: v.detach().clone().requires_grad_(v.is_floating_point()) for k, v in forward.weights.items()}
    logits = Executor(forward.module, weights)(*forward.inputs)[0]
    torch.nn.functional.cross_entropy(logits, labels).backward()
    with torch.no_grad():
        _, *updated = Executor(compiled.module, compiled.weights)(*compiled.inputs, labels)
    checked = 0
    for key, value in zip(updates_of(compiled), updated):
        if key.endswith(MOMENTUM_SUFFIX):
            expected = weights[key.removesuffix(MOMENTUM_SUFFIX)].grad
            assert torch.allclose(value, expected, atol=TOLERANCE, rtol=0), key
            checked += "cosine_m" in key
    assert checked == 4  # one m per attention block


def test_the_step_survives_print_and_parse():
    compiled, _ = training_step("mha-sdpa", momentum=0.0)
    labels = torch.randint(0, 64, (2, 10), generator=torch.Generator().manual_seed(1))
    reparsed = parse_module(print_module(compiled.module))
    with torch.no_grad():
        before = Executor(compiled.module, compiled.weights)(*compiled.inputs, labels)
        after = Executor(reparsed, compiled.weights)(*compiled.inputs, labels)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert not any(key.endswith(MOMENTUM_SUFFIX) for key in updates_of(compiled))  # no velocity without momentum


def test_an_op_without_a_backward_rule_is_named_with_its_module_path():
    compiled = compile_model("llama-tiny", "attn-raise")  # its rotary buffer feeds nn.sin when not frozen
    with pytest.raises(PassFailedException, match=r"rotary_emb.*nn\.(sin|cos) has no backward rule"):
        apply_passes(compiled.module, [TrainingStepPass()])


@pytest.mark.parametrize("options, message", [
    ({"lr": 0.0}, "lr must be positive"),
    ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
    ({"frozen": "("}, "frozen is not a regular expression"),
])
def test_bad_options_are_pass_failures(options, message):
    compiled = compile_model("mha-sdpa", "attn-raise")
    with pytest.raises(PassFailedException, match=message):
        apply_passes(compiled.module, [TrainingStepPass(**options)])
