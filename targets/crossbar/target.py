"""The memristive crossbar as a plug-in target: ``lower-to-xbar`` lowers to it, the simulator runs it."""

from __future__ import annotations

from xdsl.dialects.builtin import DictionaryAttr, ModuleOp
from xdsl.interpreter import InterpreterFunctions

from dialects import xbar
from dialects.diagnostics import AttncError
from targets.base import CacheUsage, Target
from targets.crossbar.cost import format_report, matrix_costs, totals
from targets.crossbar.simulator import XbarFunctions, device_config


def _plain(attr) -> object:
    return attr.value.data if hasattr(attr, "value") else attr.data


class CrossbarTarget(Target):
    name = "crossbar"
    description = "tiled, bit-sliced memristive crossbars with write/programming/read noise, DAC and ADC"
    lowering_pass = "lower-to-xbar"
    seed_meaning = "one chip: its programming noise and stuck cells, and the per-inference write and read noise"
    demo_pipelines = (
        ("lower-to-xbar{gamma=0.0}", "noise-free writes (quantisation only)"),
        ("lower-to-xbar{gamma=5.0}", "write noise γ = 5"),
        ("kv-clip{alpha=2.0 beta=0.25},lower-to-xbar{gamma=5.0}", "γ = 5 with ClipFormer α = 2, β = 0.25"),
    )

    def owns(self, module: ModuleOp) -> bool:
        return xbar.DEVICE_ATTRIBUTE in module.attributes

    def runtime_functions(self, module: ModuleOp, seed: int = 0) -> list[InterpreterFunctions]:
        try:
            functions = XbarFunctions.for_module(module, seed)
            ranged = (op for op in module.walk() if isinstance(op, xbar.WriteOp))
            if any(op.kv_range is not None or op.clip_domain is not None for op in ranged):
                from targets.crossbar.kv_ranges import KvRangeFunctions  # K/V range policies from the IR

                functions = KvRangeFunctions(functions.config, seed)
            return [functions]
        except ValueError as error:
            raise AttncError(f"bad crossbar device parameters: {error}") from None

    def _config(self, module: ModuleOp):
        device = module.attributes.get(xbar.DEVICE_ATTRIBUTE)
        try:
            return device_config(device if isinstance(device, DictionaryAttr) else {})
        except (ValueError, TypeError) as error:
            raise AttncError(f"bad crossbar device parameters: {error}") from None

    def cost_report(self, module: ModuleOp) -> dict[str, float]:
        static = [op for op in module.walk() if isinstance(op, xbar.ProgramOp)]
        dynamic = [op for op in module.walk() if isinstance(op, xbar.WriteOp)]
        costs = matrix_costs(module, self._config(module))
        return {
            "static matrices": len(static),
            "tiles": sum(op.result.type.tile_count() for op in static),
            "zero tiles skipped": sum(op.zero_tiles.value.data for op in static if op.zero_tiles is not None),
            "dynamic writes per inference": len(dynamic),
            **totals(costs),
            **{f"attention {name}": value for name, value in totals(costs, attention_only=True).items()},
        }

    def report(self, module: ModuleOp) -> str:
        return format_report(module, self._config(module))

    def summary(self, module: ModuleOp) -> str:
        cost = self.cost_report(module)
        device = module.attributes[xbar.DEVICE_ATTRIBUTE]
        settings = ", ".join(f"{k}={_plain(v)}" for k, v in device.data.items()) if isinstance(device, DictionaryAttr) else ""
        return (
            f"memristive crossbar: {cost['static matrices']} static matrices in {cost['tiles']} tiles "
            f"({cost['zero tiles skipped']} all-zero tiles not programmed), "
            f"{cost['dynamic writes per inference']} dynamic writes per inference; {settings}"
        )

    def cache_usage(self) -> CacheUsage | None:
        from targets.crossbar.chip_store import ENVIRONMENT, LIMIT_ENVIRONMENT, ChipStore, size_limit, store_directory

        directory = store_directory()
        settings = f"{ENVIRONMENT}=DIR|off, {LIMIT_ENVIRONMENT}=SIZE"
        if directory is None:
            return CacheUsage("programmed crossbar matrices", None, 0, 0, None, settings)
        entries, size = ChipStore(directory).usage()
        try:
            limit, problem = size_limit(), None
        except ValueError as error:
            limit, problem = None, str(error)
        return CacheUsage("programmed crossbar matrices", str(directory), entries, size, limit, settings, problem)

    def clear_cache(self) -> int:
        from targets.crossbar.chip_store import ChipStore, store_directory

        return ChipStore(store_directory()).clear()


CROSSBAR = CrossbarTarget()
