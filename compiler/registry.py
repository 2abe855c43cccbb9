"""The ``xdsl.universe`` entry point: our dialects and passes, by name, loaded lazily.

Stock ``xdsl-opt`` and ``attnc-opt`` both discover them through it. Nothing here imports torch, so
``attnc-opt`` starts fast enough for lit tests.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe


def _nn() -> Dialect:
    from dialects.nn import NN

    return NN


def _attn() -> Dialect:
    from dialects.attn import ATTN

    return ATTN


def _attn_raise() -> type[ModulePass]:
    from passes.attn_raise import AttnRaisePass

    return AttnRaisePass


def _attn_cosine() -> type[ModulePass]:
    from passes.attn_cosine import AttnCosinePass

    return AttnCosinePass


def _attn_prune() -> type[ModulePass]:
    from passes.attn_prune import AttnPrunePass

    return AttnPrunePass


def _kv_clip() -> type[ModulePass]:
    from passes.kv_clip import KvClipPass

    return KvClipPass


def _abft() -> Dialect:
    from dialects.abft import ABFT

    return ABFT


def _abft_weave() -> type[ModulePass]:
    from passes.abft_weave import AbftWeavePass

    return AbftWeavePass


def _xbar() -> Dialect:
    from dialects.xbar import XBAR

    return XBAR


def _tinycl() -> Dialect:
    from dialects.tinycl import TINYCL

    return TINYCL


def _lower_to_tinycl() -> type[ModulePass]:
    from targets.tinycl.lowering import LowerToTinyclPass

    return LowerToTinyclPass


def _lower_to_xbar() -> type[ModulePass]:
    from targets.crossbar.lowering import LowerToXbarPass

    return LowerToXbarPass


def _grad() -> Dialect:
    from dialects.grad import GRAD

    return GRAD


def _training_step() -> type[ModulePass]:
    from passes.training_step import TrainingStepPass

    return TrainingStepPass


def _torch() -> Dialect:
    from dialects.torch import TORCH

    return TORCH


def _convert_torch_to_nn() -> type[ModulePass]:
    from passes.convert_torch_to_nn import ConvertTorchToNnPass

    return ConvertTorchToNnPass


DIALECTS: dict[str, Callable[[], Dialect]] = {
    "nn": _nn,
    "attn": _attn,
    "xbar": _xbar,
    "abft": _abft,
    "torch": _torch,
    "tinycl": _tinycl,
    "grad": _grad,
}

PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "attn-raise": _attn_raise,
    "attn-cosine": _attn_cosine,
    "kv-clip": _kv_clip,
    "attn-prune": _attn_prune,
    "lower-to-xbar": _lower_to_xbar,
    "abft-weave": _abft_weave,
    "convert-torch-to-nn": _convert_torch_to_nn,
    "lower-to-tinycl": _lower_to_tinycl,
    "training-step": _training_step,
}

UNIVERSE = Universe(all_dialects=DIALECTS, all_passes=PASSES)
