"""``attnc-opt``: ``xdsl-opt`` with the attnc dialects and passes, and diagnostics instead of tracebacks.

All of xdsl-opt's flags work (``-p``, ``--print-between-passes``, ``--time-passes``,
``--split-input-file``, ``--verify-diagnostics``, ``--print-debuginfo``, ...). It reads and writes IR
with ``compiler.textual_ir``, so what it prints after any pass parses back to the same module. No torch
import: lit tests start it hundreds of times.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import IO

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.targets.mlir import MLIRTarget
from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException, ParseError
from xdsl.xdsl_opt_main import xDSLOptMain

from compiler.errors import INTERNAL_ERROR_STATUS, internal_error_line, one_line
from compiler.pipelines import parse_passes
from compiler.registry import DIALECTS, PASSES
from compiler.textual_ir import RoundTripParser, RoundTripPrinter
from dialects.diagnostics import collect_remarks


@dataclasses.dataclass(frozen=True)
class RoundTripMLIRTarget(MLIRTarget):
    """The ``mlir`` output target, printed by ``RoundTripPrinter`` (stock printer only for highlighting)."""

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        if self.syntax_highlight:
            super().emit(ctx, module, output)
            return
        printer = RoundTripPrinter(
            stream=output,
            print_generic_format=self.print_generic_format,
            print_properties_as_attributes=self.print_properties_as_attributes,
            print_debuginfo=self.print_debuginfo,
        )
        printer.print_op(module)
        printer.print_metadata(ctx.loaded_dialects)
        print("\n", file=output)


class AttncOptMain(xDSLOptMain):
    """xdsl-opt whose dialect and pass registries always include attnc's, installed or not."""

    def register_all_dialects(self):
        super().register_all_dialects()
        for name, factory in DIALECTS.items():
            if name not in self.ctx.registered_dialect_names:
                self.ctx.register_dialect(name, factory)

    def register_all_passes(self):
        super().register_all_passes()
        for name, factory in PASSES.items():
            self.available_passes.setdefault(name, factory)

    def register_all_frontends(self):
        super().register_all_frontends()

        def parse_mlir(io: IO[bytes]) -> ModuleOp:
            parser = RoundTripParser(self.ctx, io.read(), self.get_input_name())
            return parser.parse_module(not self.args.no_implicit_module)

        self.available_frontends["mlir"] = parse_mlir

    def register_all_targets(self):
        self.available_targets["mlir"] = lambda: RoundTripMLIRTarget
        super().register_all_targets()

    def setup_pipeline(self):
        """xdsl-opt's pipeline, with ``--print-between-passes`` printed by ``RoundTripPrinter``."""
        if self.args.passes:  # attnc's stricter option checks (types, duplicates, ranges), named errors
            parse_passes(self.args.passes, self.available_passes)
        between = self.args.print_between_passes
        self.args.print_between_passes = False  # the stock callback would print with the stock printer
        super().setup_pipeline()
        if not between:
            return
        stock_callback = self.pipeline.callback

        def callback(previous_pass, module, next_pass) -> None:
            stock_callback(previous_pass, module, next_pass)
            if previous_pass and next_pass:
                print(f"IR after {previous_pass.name}:")
                RoundTripPrinter(stream=sys.stdout).print_op(module)
                print("\n\n\n")

        self.pipeline = dataclasses.replace(self.pipeline, callback=callback)


def main(argv: list[str] | None = None) -> int:
    """xdsl-opt with attnc's registries; every failure is one ``attnc-opt: error:`` line (``--debug`` or
    ``ATTNC_DEBUG=1`` shows the traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("ATTNC_DEBUG", "") not in ("", "0")
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        with collect_remarks() as remarks:
            try:
                AttncOptMain(description="attnc modular optimizer driver", args=argv).run()
            finally:
                for note in remarks:
                    print(note, file=sys.stderr)
    except (DiagnosticException, ParseError, ValueError, ArgSpecParseError) as error:
        if debug:
            raise
        print(f"attnc-opt: error: {one_line(error)}", file=sys.stderr)
        return 1
    except OSError as error:  # the input file cannot be opened
        if debug:
            raise
        print(f"attnc-opt: error: cannot read {error.filename or 'input'}: {error.strerror or error}", file=sys.stderr)
        return 1
    except RecursionError:
        print("attnc-opt: error: the IR nests too deeply", file=sys.stderr)
        return 1
    except Exception as error:  # a defect of attnc, not of the input: still one line
        if debug:
            raise
        print(internal_error_line("attnc-opt", error), file=sys.stderr)
        return INTERNAL_ERROR_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main())
