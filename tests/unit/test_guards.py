"""Architecture guards: package layering and the pass registry ↔ module ↔ FileCheck test mapping."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {"compiler", "dialects", "fitting", "passes", "runtime", "targets"}
# package -> project packages it may import
ALLOWED = {
    "dialects": {"dialects"},
    "passes": {"dialects", "passes"},
    "runtime": {"dialects", "runtime"},
    "targets": {"dialects", "passes", "runtime", "targets"},  # a target owns its lowering pass
    "fitting": {"dialects", "runtime", "targets", "fitting"},  # above runtime and targets, below the driver
    "compiler": PROJECT_PACKAGES,
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "xdsl":
                names.update(f"xdsl.{alias.name}" for alias in node.names)
    return names


def test_layering():
    violations = []
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            source = path.read_text()
            if "from xdsl import dialects" in source or "from xdsl import passes" in source:
                violations.append(f"{path.relative_to(ROOT)} binds a bare 'dialects'/'passes' name to an xDSL module")
            for name in imported_modules(path):
                top = name.split(".")[0]
                if top in PROJECT_PACKAGES and top not in allowed:
                    violations.append(f"{path.relative_to(ROOT)} imports {name}")
                if package == "dialects" and top not in PROJECT_PACKAGES | {"xdsl"} | STDLIB_OK:
                    violations.append(f"{path.relative_to(ROOT)} imports {name}; dialects import only xDSL")
    assert not violations, "\n".join(violations)


STDLIB_OK = {"__future__", "collections", "typing", "math", "re", "dataclasses", "contextlib", "contextvars", "logging"}


def pass_classes_in(module_name: str) -> list[type]:
    from xdsl.passes import ModulePass

    module = importlib.import_module(module_name)
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, ModulePass) and obj.__module__ == module_name
    ]


def test_registry_maps_every_pass_to_its_module_and_filecheck_test():
    from compiler.registry import PASSES

    for name, factory in PASSES.items():
        cls = factory()
        assert cls.name == name
        module = cls.__module__
        own_module = f"passes.{name.replace('-', '_')}"
        target_lowering = module.startswith("targets.") and module.endswith(".lowering")  # a target owns its lowering
        assert module == own_module or target_lowering, f"{name} lives in {module}"
        assert (ROOT / "tests" / "filecheck" / "passes" / f"{name}.mlir").is_file(), f"no FileCheck test for {name}"
        assert cls.__doc__ and cls.__doc__.strip(), f"{name} has no docstring"
    for path in (ROOT / "passes").glob("*.py"):
        for cls in pass_classes_in(f"passes.{path.stem}"):
            assert cls.name in PASSES, f"{cls.__name__} ({cls.name}) in {path.name} is not in the registry"


def test_dialects_and_passes_do_not_import_torch():
    for package in ("dialects", "passes"):
        for path in (ROOT / package).rglob("*.py"):
            assert not any(n.split(".")[0] == "torch" for n in imported_modules(path)), path


def test_passes_report_through_the_diagnostic_channel():
    """Passes fail with ``pass_failure`` (a PassFailedException) and explain with ``remark``: never
    ``ValueError``, never ``print``."""
    offences = []
    for path in (ROOT / "passes").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                if getattr(node.exc.func, "id", None) == "ValueError":
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno} raises ValueError")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} prints")
    assert not offences, "\n".join(offences)


def test_one_error_root():
    """Every user-facing error type derives from AttncError, an xDSL DiagnosticException."""
    from xdsl.utils.exceptions import DiagnosticException

    from compiler.errors import AttncError
    from compiler.frontend.fx_importer import UnsupportedOpError
    from runtime.executor import ExecutionError

    assert issubclass(AttncError, DiagnosticException)
    assert issubclass(ExecutionError, AttncError) and issubclass(UnsupportedOpError, AttncError)
