"""``attnc-opt``: ``xdsl-opt`` with the attnc dialects and passes, and diagnostics instead of tracebacks.

All of xdsl-opt's flags work (``-p``, ``--print-between-passes``, ``--time-passes``,
``--split-input-file``, ``--verify-diagnostics``, ``--print-debuginfo``, ...). No torch import: lit
tests start it hundreds of times.
"""

from __future__ import annotations

import sys

from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException, ParseError
from xdsl.xdsl_opt_main import xDSLOptMain

from compiler.registry import DIALECTS, PASSES


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


def main(argv: list[str] | None = None) -> int:
    try:
        AttncOptMain(description="attnc modular optimizer driver", args=argv).run()
    except (DiagnosticException, ParseError) as error:
        print(f"attnc-opt: error: {error}", file=sys.stderr)
        return 1
    except (ValueError, ArgSpecParseError) as error:  # unknown pass, unreadable or wrong pass option
        print(f"attnc-opt: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
