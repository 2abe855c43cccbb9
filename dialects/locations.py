"""Module paths as op locations: ``loc("encoder.layer.3.attention.self")``.

The frontend stamps every op with the path of the ``nn.Module`` that produced it; passes read it back to
address layers (``kv-clip{layers=...}``) and copy it onto the ops they create.
"""

from __future__ import annotations

import re

from xdsl.dialects.builtin import NameLoc, NoneAttr, StringAttr
from xdsl.ir import Operation
from xdsl.utils.exceptions import PassFailedException


def module_location(path: str) -> NameLoc:
    """The location attribute for a module path."""
    return NameLoc(StringAttr(path), NoneAttr())


def module_path_of(op: Operation) -> str:
    """The module path an op came from, or "" when it has none."""
    location = op.location
    return location.desc.data if isinstance(location, NameLoc) else ""


def check_layers_pattern(pass_name: str, pattern: str) -> None:
    """Raises ``PassFailedException`` naming the pass when ``layers`` is not a valid regular expression."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise PassFailedException(
            f"{pass_name}: option 'layers' is not a valid regular expression '{pattern}': {error}"
        ) from None


def path_matches(op: Operation, pattern: str) -> bool:
    """Whether ``op``'s module path matches a regular expression (searched, not anchored); "" matches all."""
    return not pattern or re.search(pattern, module_path_of(op)) is not None
