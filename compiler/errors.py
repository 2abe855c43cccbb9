"""The error type every user-facing failure derives from, and how a diagnostic becomes one line."""

from __future__ import annotations

from xdsl.utils.exceptions import ParseError

from dialects.diagnostics import AttncError

__all__ = ["INTERNAL_ERROR_STATUS", "AttncError", "internal_error_line", "one_line"]


INTERNAL_ERROR_STATUS = 70  # EX_SOFTWARE: a defect of attnc, not of the input


def internal_error_line(tool: str, error: BaseException) -> str:
    """The one line a CLI prints for an unexpected exception (``--debug`` shows the traceback instead)."""
    return f"{tool}: internal error: {type(error).__name__}: {one_line(error)} (run with --debug for the traceback)"


def one_line(error: BaseException) -> str:
    """A diagnostic as a single line: ``file:line:col: message`` for parse errors, context lines folded.

    xDSL reports parse errors as the source line with a caret under the culprit; a terminal user and a
    test log both read one line better, and the location says where to look.
    """
    if isinstance(error, ParseError):
        where = error.span.get_location()
        return f"{where.file}:{where.line}:{where.col}: {' '.join(error.msg.split())}"
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    caret = next((i for i, line in enumerate(lines) if set(line) == {"^"}), None)
    if caret is not None:  # header..., location, echoed source line, caret, message...
        head, message = lines[: max(caret - 1, 0)], lines[caret + 1 :]
        return f"{' '.join(head)}: {' '.join(message)}".replace(":: ", ": ").strip(": ")
    return "; ".join(lines)
