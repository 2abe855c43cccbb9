"""A partial ``torch`` dialect: just enough of torch-mlir's to read what its ONNX importer writes.

torch-mlir's ONNX importer writes every ONNX node as ``torch.operator "onnx.<Op>"`` on value tensors
(``!torch.vtensor<[1,16,384],f32>``), and an absent optional operand as ``torch.constant.none``. xDSL reads
that output in MLIR's generic form once these types and ops are known; ``convert-torch-to-nn`` then
rewrites it into the ``nn`` dialect.

```mlir
%0 = "torch.operator"(%x, %w) <{name = "onnx.MatMul"}> : (!torch.vtensor<[1,16,384],f32>,
       !torch.vtensor<[384,384],f32>) -> !torch.vtensor<[1,16,384],f32>
```

Dimensions are integers, or ``?`` where the ONNX file leaves them symbolic; element types are torch-mlir's
(``f32``, ``si64``, ``i1``, ...). Only the ONNX form is covered: no other torch-mlir op is defined here.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import ArrayAttr, IntAttr, StringAttr
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    prop_def,
    result_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

DYNAMIC = -1  # a dimension written `?`


@irdl_attr_definition
class ValueTensorType(ParametrizedAttribute, TypeAttribute):
    """``!torch.vtensor<[d0,d1,...],dtype>``: an immutable tensor; a dimension of -1 is printed ``?``."""

    name = "torch.vtensor"
    shape: ArrayAttr[IntAttr]
    element_type: Attribute

    def __init__(self, shape: Sequence[int], element_type: Attribute):
        super().__init__(ArrayAttr([IntAttr(d) for d in shape]), element_type)

    def get_shape(self) -> tuple[int, ...]:
        return tuple(d.data for d in self.shape.data)

    def is_static(self) -> bool:
        return DYNAMIC not in self.get_shape()

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        def dimension() -> IntAttr:
            if parser.parse_optional_characters("?") is not None:
                return IntAttr(DYNAMIC)
            return IntAttr(parser.parse_integer(allow_boolean=False))

        parser.parse_punctuation("<")
        dims = parser.parse_comma_separated_list(parser.Delimiter.SQUARE, dimension)
        parser.parse_punctuation(",")
        element_type = parser.parse_type()
        parser.parse_punctuation(">")
        return [ArrayAttr(dims), element_type]

    def print_parameters(self, printer: Printer) -> None:
        dims = ",".join("?" if d == DYNAMIC else str(d) for d in self.get_shape())
        printer.print_string(f"<[{dims}],")
        printer.print_attribute(self.element_type)
        printer.print_string(">")


@irdl_attr_definition
class NoneType(ParametrizedAttribute, TypeAttribute):
    """``!torch.none``: the type of an absent optional operand."""

    name = "torch.none"


@irdl_op_definition
class OperatorOp(IRDLOperation):
    """``torch.operator``: one op of another opset by name (``onnx.MatMul``); its ONNX attributes ride along
    as ``torch.onnx.<attribute>`` discardable attributes."""

    name = "torch.operator"
    op_name = prop_def(StringAttr, prop_name="name")
    operands_ = var_operand_def()
    results_ = var_result_def()

    def verify_(self) -> None:
        if not self.op_name.data:
            raise VerifyException("torch.operator needs a non-empty op name")


@irdl_op_definition
class ConstantNoneOp(IRDLOperation):
    """``torch.constant.none``: stands for an optional operand the ONNX node leaves out."""

    name = "torch.constant.none"
    result = result_def(NoneType)


TORCH = Dialect("torch", [OperatorOp, ConstantNoneOp], [ValueTensorType, NoneType])
