"""A second route from ``torch.export`` to ``nn``: torch-mlir's FX importer, then attnc's one ATen table.

``attnc compile SPEC --frontend torch-mlir`` imports the exported program with
``torch_mlir.fx.export_and_import`` (nothing decomposed, parameters, buffers and lifted constants as
function arguments, so no weight is copied into the IR), then reads torch-mlir's ``torch.aten.*`` ops back
as ATen calls and translates them with the FX importer's handlers: both routes share one ATen → ``nn``
table, and the route is a cross-check of the FX frontend (same outputs, same attention raised). torch-mlir
does not carry ``nn_module_stack``, so ops imported this way have no module-path locations.
Needs the ``onnx`` extra (it installs torch-mlir).
"""

from __future__ import annotations

import operator
import re
from types import SimpleNamespace
from typing import Any

import torch
import torch.fx

from compiler.errors import AttncError
from compiler.frontend.fx_importer import FxImporter, ImportedProgram, UnsupportedOpError

_ELEMENT_TYPES = {
    "f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16,
    "si64": torch.int64, "si32": torch.int32, "i1": torch.bool, "si8": torch.int8, "ui8": torch.uint8,
}
_VTENSOR = re.compile(r"!torch\.vtensor<\[([0-9,]*)\],(\w+)>")


def _meta_value(type_text: str) -> torch.Tensor:
    match = _VTENSOR.fullmatch(type_text)
    if match is None or match.group(2) not in _ELEMENT_TYPES:
        raise UnsupportedOpError(f"torch-mlir value of type {type_text} (static value tensors only)")
    shape = [int(d) for d in match.group(1).split(",") if d]
    return torch.empty(shape, dtype=_ELEMENT_TYPES[match.group(2)], device="meta")


def _aten_target(op_name: str) -> Any:
    """``torch.aten.transpose.int`` → ``torch.ops.aten.transpose.int`` (``.default`` when no overload)."""
    parts = op_name.removeprefix("torch.aten.").split(".")
    packet = getattr(torch.ops.aten, parts[0], None)
    if packet is None:
        raise UnsupportedOpError(f"unknown ATen op '{op_name}' in torch-mlir's output")
    overload = parts[1] if len(parts) > 1 and parts[1] in packet.overloads() else "default"
    return getattr(packet, overload)


def import_via_torch_mlir(program: torch.export.ExportedProgram) -> ImportedProgram:
    """Imports a ``run_decompositions({})`` program through torch-mlir (see the module docstring)."""
    from compiler.frontend.onnx_importer import require_extra

    require_extra()
    from torch.export.graph_signature import InputKind
    from torch_mlir import fx, ir
    from torch_mlir.extras.fx_importer import FxImporterHooks

    lifted_kinds = (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
    user_inputs = [s.arg.name for s in program.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    lifted: list[Any] = []

    class WeightsAsArguments(FxImporterHooks):
        """Every parameter, buffer and lifted constant becomes an entry-block argument, not a literal."""

        def resolve_input(self, gni, value, info):
            if info.input_spec.kind in lifted_kinds and info.mutable_producer_node_name is None:
                lifted.append(info.input_spec)
                return gni._b.add_argument(info.ir_type, ir.Location.current)
            return None

    try:
        module = fx.export_and_import(program, hooks=WeightsAsArguments(), decomposition_table={},
                                      experimental_support_mutation=True, func_name="main")
    except Exception as error:
        raise AttncError(f"torch-mlir cannot import the program: {type(error).__name__}: {error}") from None
    function = next(op for op in module.body.operations if op.operation.name == "func.func")
    block = function.regions[0].blocks[0]
    graph = torch.fx.Graph()
    env: dict[Any, Any] = {}
    names = [*user_inputs, *(f"lifted_{i}" for i in range(len(lifted)))]
    for argument, name in zip(block.arguments, names):
        node = graph.placeholder(name)
        node.meta["val"] = _meta_value(str(argument.type))
        env[argument] = node
    for op in block.operations:
        name = op.operation.name
        attributes = op.operation.attributes
        if name == "torch.operator":  # an ATen op torch-mlir has no op definition for, named by attribute
            name = "torch." + ir.StringAttr(attributes["name"]).value.removeprefix("torch.")
        if name == "torch.constant.int":
            env[op.result] = ir.IntegerAttr(attributes["value"]).value
        elif name == "torch.constant.float":
            env[op.result] = ir.FloatAttr(attributes["value"]).value
        elif name == "torch.constant.bool":
            env[op.result] = ir.BoolAttr(attributes["value"]).value
        elif name == "torch.constant.str":
            env[op.result] = ir.StringAttr(attributes["value"]).value
        elif name in ("torch.constant.none", "torch.constant.device"):
            env[op.result] = None if name.endswith("none") else "cpu"
        elif name == "torch.prim.ListConstruct":
            env[op.result] = [env[v] for v in op.operands]
        elif name == "torch.prim.ListUnpack":
            source = env[op.operands[0]]
            source.meta["val"] = [_meta_value(str(r.type)) for r in op.results]
            for index, result in enumerate(op.results):
                item = graph.call_function(operator.getitem, (source, index))
                item.meta["val"] = _meta_value(str(result.type))
                env[result] = item
        elif name.startswith("torch.aten."):
            target = _aten_target(name)
            args, kwargs = [], {}
            for schema_arg, operand in zip(target._schema.arguments, op.operands):
                if schema_arg.kwarg_only:
                    kwargs[schema_arg.name] = env[operand]
                else:
                    args.append(env[operand])
            node = graph.call_function(target, tuple(args), kwargs)
            if len(op.results) == 1 and str(op.results[0].type).startswith("!torch.vtensor"):
                node.meta["val"] = _meta_value(str(op.results[0].type))
                env[op.results[0]] = node
            elif len(op.results) == 1:  # a list of tensors, unpacked by torch.prim.ListUnpack
                node.meta["val"] = []
                env[op.results[0]] = node
            else:
                node.meta["val"] = tuple(_meta_value(str(r.type)) for r in op.results)
                for index, result in enumerate(op.results):
                    item = graph.call_function(operator.getitem, (node, index))
                    item.meta["val"] = _meta_value(str(result.type))
                    env[result] = item
        elif name == "func.return":
            graph.output(tuple(env[v] for v in op.operands))
        else:
            raise UnsupportedOpError(f"torch-mlir op '{name}' is not supported by the torch-mlir route")
    specs = [SimpleNamespace(kind=spec.kind, arg=SimpleNamespace(name=f"lifted_{i}"), target=spec.target)
             for i, spec in enumerate(lifted)]
    view = SimpleNamespace(graph=graph, graph_signature=SimpleNamespace(input_specs=specs),
                           state_dict=program.state_dict, constants=program.constants)
    return FxImporter(view).run()  # type: ignore[arg-type]

