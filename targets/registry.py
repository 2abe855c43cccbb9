"""The registry of hardware targets: the built-in ones, plus any a user registers."""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

from targets.base import Target

_TARGETS: dict[str, Target] = {}


def register_target(target: Target) -> Target:
    """Adds ``target`` (replacing one of the same name) and returns it."""
    _TARGETS[target.name] = target
    return target


def unregister_target(name: str) -> None:
    _TARGETS.pop(name, None)


def all_targets() -> dict[str, Target]:
    """Every registered target by name, the built-in ones included."""
    _load_builtin_targets()
    return dict(_TARGETS)


def target_of(module: ModuleOp) -> Target | None:
    """The target ``module`` is lowered to, or None for the reference target."""
    owners = [target for target in all_targets().values() if target.owns(module)]
    return owners[0] if owners else None


def _load_builtin_targets() -> None:
    from targets.crossbar.target import CROSSBAR
    from targets.tinycl.target import TINYCL

    _TARGETS.setdefault(CROSSBAR.name, CROSSBAR)
    _TARGETS.setdefault(TINYCL.name, TINYCL)
