"""One diagnostic channel for every layer: the user-facing error type, pass failures and remarks.

* :class:`AttncError` is the root of every user-facing failure (bad input, unsupported model, wrong option);
  it is an xDSL ``DiagnosticException``, so ``attnc`` and ``attnc-opt`` print it as one line.
* A pass fails with xDSL's ``PassFailedException`` made by :func:`pass_failure`, which names the pass and,
  when given, the op's module path.
* A pass says why it left something alone with :func:`remark`. Remarks go to the innermost
  :func:`collect_remarks` block (the driver opens one per compile; the CLI prints them, the API returns
  them); outside any block they go to the ``attnc.remarks`` logger. Passes never print.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from xdsl.ir import Operation
from xdsl.utils.exceptions import DiagnosticException, PassFailedException

from dialects.locations import module_path_of

LOGGER = logging.getLogger("attnc.remarks")


class AttncError(DiagnosticException):
    """A user-facing error: bad input, an unsupported model, a wrong option. Printed without a traceback."""


class AttncWarning(UserWarning):
    """Something the user should know that does not stop the run (a non-finite input, an unchecked file)."""


@dataclass(frozen=True)
class Remark:
    """Why a pass left an op as it was (or what it decided), with the op's module path."""

    pass_name: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"remark: {self.pass_name}: {self.location or '<unknown>'}: {self.message}"


_collector: ContextVar[list[Remark] | None] = ContextVar("attnc_remarks", default=None)


def remark(pass_name: str, op: Operation | None, message: str) -> Remark:
    """Records a remark about ``op`` in the active collector (or logs it when none is active)."""
    note = Remark(pass_name, module_path_of(op) if op is not None else "", message)
    remarks = _collector.get()
    if remarks is None:
        LOGGER.info("%s", note)
    else:
        remarks.append(note)
    return note


@contextmanager
def collect_remarks() -> Iterator[list[Remark]]:
    """Collects the remarks emitted inside the block into the list it yields."""
    remarks: list[Remark] = []
    outer = _collector.get()
    token = _collector.set(remarks)
    try:
        yield remarks
    finally:
        _collector.reset(token)
        if outer is not None:  # nested: the enclosing collector sees them too
            outer.extend(remarks)


def pass_failure(pass_name: str, message: str, op: Operation | None = None) -> PassFailedException:
    """The exception a pass raises when it cannot run: ``<pass>: [at '<path>': ]<message>``."""
    where = f"at '{module_path_of(op)}': " if op is not None and module_path_of(op) else ""
    return PassFailedException(f"{pass_name}: {where}{message}")
