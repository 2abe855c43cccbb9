"""TinyCL as a plug-in target: ``lower-to-tinycl`` lowers to it, the integer runtime runs it, the cost model
reports it."""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import InterpreterFunctions

from dialects import tinycl
from dialects.diagnostics import AttncError
from targets.base import Target
from targets.tinycl.cost import ArrayConfig, format_numbers, format_report, layer_costs, memory_plan, phase_costs, totals
from targets.tinycl.runtime import TinyclFunctions


class TinyclTarget(Target):
    name = "tinycl"
    description = "TinyCL-style fixed-point MAC array (forward on the array, integer softmax/layer norm/tables)"
    lowering_pass = "lower-to-tinycl"
    seed_meaning = "the stream of stochastic rounding (rounding=stochastic); other modes ignore it"
    demo_pipelines = (
        ("lower-to-tinycl{total-bits=16 frac-bits=8 sram-kb=65536}", "16-bit fixed point, 8 fractional bits, 64 MiB SRAM"),
    )

    trains = True

    def phase_costs(self, module: ModuleOp) -> dict[str, dict[str, float]] | None:
        self._config(module)
        return phase_costs(module)

    def owns(self, module: ModuleOp) -> bool:
        return tinycl.CONFIG_ATTRIBUTE in module.attributes

    def _config(self, module: ModuleOp) -> ArrayConfig:
        try:
            return ArrayConfig.of(module)
        except (ValueError, TypeError) as error:
            raise AttncError(f"bad TinyCL configuration: {error}") from None

    def runtime_functions(self, module: ModuleOp, seed: int = 0) -> list[InterpreterFunctions]:
        self._config(module)
        return [TinyclFunctions(seed)]

    def cost_report(self, module: ModuleOp) -> dict[str, float]:
        config = self._config(module)
        total = totals(layer_costs(module))
        pes = config.pe_rows * config.pe_cols
        return {
            "MACs": total["macs"],
            "cycles": total["cycles"],
            "utilisation": total["macs"] / (total["cycles"] * pes) if total["cycles"] else 0.0,
            "on-chip words": total["on_chip"],
            "off-chip words": total["off_chip"],
            "off-chip words without snake": total["off_chip_raster"],
            "energy uJ": total["energy_pj"] / 1e6,
            "peak on-chip KiB": memory_plan(module).peak_bytes / 1024,
        }

    def summary(self, module: ModuleOp) -> str:
        config = self._config(module)
        macs = sum(1 for op in module.walk() if isinstance(op, tinycl.MacOp))
        numbers = format_numbers(module, config)
        array = f"{config.pe_rows}x{config.pe_cols}"
        return f"TinyCL {array} MAC array, {numbers} fixed point: {macs} MAC-array products per inference"

    def report(self, module: ModuleOp) -> str:
        self._config(module)
        return format_report(module)


TINYCL = TinyclTarget()
