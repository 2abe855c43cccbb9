"""What a hardware target is to the driver: a plug-in found through the registry, never named by the driver.

A target owns the dialect its lowering produces, the lowering pass itself, the runtime functions that
execute that dialect, and the report of a lowered module. The driver (``compiler/``) asks
``targets.registry.target_of(module)`` which target a module is lowered to, and goes through this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import InterpreterFunctions


@dataclass(frozen=True)
class CacheUsage:
    """What a target keeps on disk between runs (e.g. programmed chips), for ``attnc cache``."""

    name: str
    """What is kept, e.g. ``programmed crossbar matrices``."""
    location: str | None
    """Where, or None when the cache is turned off."""
    entries: int
    size: int
    """Bytes held."""
    limit: int | None
    """Bytes it is held to, or None."""
    settings: str
    """The environment variables that move, limit or turn it off."""
    problem: str | None = None
    """A setting that could not be read (the cache then runs unlimited), or None."""


class Target(ABC):
    """A hardware target. Subclasses set the class attributes and implement the four methods."""

    name: str
    """Short name, e.g. ``crossbar``."""
    description: str
    """One line for ``attnc list``."""
    lowering_pass: str
    """The registered pass that lowers ``nn``/``attn`` IR to this target."""
    seed_meaning: str
    """What ``--seed`` selects on this target (e.g. one chip's static and per-inference noise draws)."""
    demo_pipelines: Sequence[tuple[str, str]] = ()
    """(pipeline, label) pairs ``attnc demo`` runs after the user's pipeline, to show the target at work."""

    @abstractmethod
    def owns(self, module: ModuleOp) -> bool:
        """Whether ``module`` is lowered to this target."""

    @abstractmethod
    def runtime_functions(self, module: ModuleOp, seed: int = 0) -> list[InterpreterFunctions]:
        """Implementations of this target's ops for the executor; validates the module's configuration."""

    @abstractmethod
    def summary(self, module: ModuleOp) -> str:
        """One line describing the lowered module (what ``attnc run`` prints)."""

    @abstractmethod
    def cost_report(self, module: ModuleOp) -> dict[str, float]:
        """Figures of the lowered module on this target, by name (e.g. tiles, writes per inference)."""

    def report(self, module: ModuleOp) -> str:
        """The detailed report ``attnc run --report`` prints; by default the cost report, one figure a line."""
        return "\n".join(f"{name}: {value:g}" for name, value in self.cost_report(module).items())

    trains: bool = False
    """Whether ``lowering_pass`` lowers a training step (``training-step``) too, so a trainer can run on it."""

    def phase_costs(self, module: ModuleOp) -> dict[str, dict[str, float]] | None:
        """Cost figures per training phase (forward, input-gradient, weight-gradient, update), or None."""
        return None

    def cache_usage(self) -> CacheUsage | None:
        """What this target keeps on disk between runs, or None when it keeps nothing."""
        return None

    def clear_cache(self) -> int:
        """Empties the target's on-disk cache; returns how many entries went."""
        return 0
