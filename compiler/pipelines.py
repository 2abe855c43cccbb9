"""Named pipelines: short names for the pass-pipeline strings users type most often."""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Mapping

from xdsl.passes import ModulePass
from xdsl.utils.arg_spec import ArgSpec, parse_pipeline
from xdsl.utils.exceptions import ArgSpecParseError

from compiler.errors import AttncError, one_line

NAMED_PIPELINES: dict[str, str] = {
    "none": "",
    "raise": "attn-raise",
    "crossbar": "attn-raise,lower-to-xbar",
    "clipformer": "attn-raise,kv-clip{alpha=2.0 beta=0.25},lower-to-xbar",
    "cosine": "attn-raise,attn-cosine",
}


def resolve_pipeline(pipeline: str | None) -> str:
    """A pass-pipeline string for either a pipeline name or a pipeline string given verbatim."""
    if pipeline is None:
        return ""
    return NAMED_PIPELINES.get(pipeline.strip(), pipeline.strip())


def parse_passes(text: str, available: Mapping[str, Callable[[], type[ModulePass]]]) -> tuple[ModulePass, ...]:
    """The passes of a pipeline string; a bad pass or option is one ``AttncError`` naming both.

    Stricter than xDSL's own parser: a duplicated option is an error (xDSL keeps the last), an integer
    must fit in 64 bits, and a value of the wrong type names the pass, the option and the expected type.
    """
    try:
        specs = tuple(parse_pipeline(text))
    except ArgSpecParseError as error:
        raise AttncError(f"bad pipeline '{text}': {one_line(error)}") from None
    for name, body in re.findall(r"([\w.-]+)\s*\{([^}]*)\}", text):
        keys = [key.replace("_", "-") for key in re.findall(r"(?:^|\s)([\w-]+)\s*=", body)]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise AttncError(f"pass '{name}' is given option '{repeated[0]}' more than once")
    passes = []
    for spec in specs:
        if spec.name not in available:
            raise AttncError(f"unknown pass '{spec.name}' (known: {', '.join(sorted(available))})")
        cls = available[spec.name]()
        options = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "name"}
        for key, value in spec.normalize_parameter_names().parameters.items():
            option = key.replace("_", "-")
            if key not in options:
                known = ", ".join(o.replace("_", "-") for o in options) or "none"
                raise AttncError(f"pass '{spec.name}' has no option '{option}' (its options: {known})")
            try:
                cls.from_pass_spec(ArgSpec(spec.name, {key: value}))
            except (ValueError, TypeError):
                expected = getattr(typing.get_type_hints(cls)[key], "__name__", str(typing.get_type_hints(cls)[key]))
                given = " ".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)
                raise AttncError(
                    f"bad option '{option}' of pass '{spec.name}': expected {expected}, got '{given}'"
                ) from None
        module_pass = cls.from_pass_spec(spec)
        for key in options:
            value = getattr(module_pass, key)
            if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
                raise AttncError(f"bad option '{key.replace('_', '-')}' of pass '{spec.name}': {value} is out of range")
        passes.append(module_pass)
    return tuple(passes)
