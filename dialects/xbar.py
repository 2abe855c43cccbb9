"""The ``xbar`` dialect: matrices held in tiled memristive crossbars, and the products computed on them.

A ``!xbar.tiles`` value is a matrix stored in crossbar tiles. Its shape is ``(batch..., out, in)`` like
``nn.linear``'s weight (leading dims give independent arrays, e.g. one K per batch item and head); inputs
drive the ``in`` rows and outputs are read on the ``out`` columns. The tile size and the resulting grid
(row tiles over ``in`` × column tiles over ``out``) are part of the type, so tiling is visible in the IR:

```mlir
%wq_tiles = xbar.program %wq : (tensor<384x384xf32>) -> !xbar.tiles<384x384, tile = 64x64, grid = 6x6>
%q = xbar.mvm %wq_tiles, %h : (!xbar.tiles<384x384, tile = 64x64, grid = 6x6>, tensor<1x16x384xf32>)
       -> tensor<1x16x384xf32>
%k_tiles = xbar.write %k {clip_alpha = 2.0 : f64, clip_beta = 0.25 : f64}
       : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
%s = xbar.mvm %k_tiles, %q4 : (!xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>, tensor<1x12x16x32xf32>)
       -> tensor<1x12x16x16xf32>
```

``xbar.program`` is a static matrix, programmed once per model instance (programming noise, stuck cells);
``xbar.write`` a dynamic one, written on every inference (write noise, optionally ClipFormer first);
``xbar.mvm`` computes ``y = x Wᵀ`` with DACs, bit slices and ADCs. The device parameters (bits per cell,
conductance range, noise levels, ...) are a dictionary attribute ``xbar.device`` on the module, set by
``lower-to-xbar`` and read by the crossbar simulator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    UnitAttr,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_attr_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from dialects.attn import clipformer_errors
from dialects.shapes import element_type, fmt_shape, is_float, tensor_shape

DEVICE_ATTRIBUTE = "xbar.device"


def tile_grid(shape: Sequence[int], tile: Sequence[int]) -> tuple[int, int]:
    """(row tiles over ``in``, column tiles over ``out``) for a stored shape ``(..., out, in)``."""
    return math.ceil(shape[-1] / tile[0]), math.ceil(shape[-2] / tile[1])


@irdl_attr_definition
class TilesType(ParametrizedAttribute, TypeAttribute):
    """A matrix ``(batch..., out, in)`` in crossbar tiles of ``rows × cols`` cells; the grid is derived."""

    name = "xbar.tiles"

    shape: ArrayAttr[IntAttr]
    tile: ArrayAttr[IntAttr]

    def __init__(self, shape: Sequence[int], tile: Sequence[int]):
        super().__init__(ArrayAttr([IntAttr(d) for d in shape]), ArrayAttr([IntAttr(d) for d in tile]))

    def get_shape(self) -> tuple[int, ...]:
        return tuple(d.data for d in self.shape.data)

    def get_tile(self) -> tuple[int, int]:
        rows, cols = (d.data for d in self.tile.data)
        return rows, cols

    def grid(self) -> tuple[int, int]:
        return tile_grid(self.get_shape(), self.get_tile())

    def tile_count(self) -> int:
        """Physical tile positions of one stored matrix (row tiles x column tiles)."""
        rows, cols = self.grid()
        return rows * cols

    def batch_shape(self) -> tuple[int, ...]:
        return self.get_shape()[:-2]

    def verify(self) -> None:
        shape, tile = self.get_shape(), [d.data for d in self.tile.data]
        if len(shape) < 2 or any(d <= 0 for d in shape):
            raise VerifyException(f"xbar.tiles holds a matrix (..., out, in) of positive dims, got {fmt_shape(shape)}")
        if len(tile) != 2 or any(d <= 0 for d in tile):
            raise VerifyException(f"xbar.tiles needs a positive tile size rows x cols, got {fmt_dims(tile)}")

    def print_parameters(self, printer: Printer) -> None:
        rows, cols = self.get_tile()
        grid_rows, grid_cols = self.grid()
        printer.print_string(f"<{'x'.join(map(str, self.get_shape()))}, tile = {rows}x{cols}, grid = {grid_rows}x{grid_cols}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        start = parser.pos
        with parser.in_angle_brackets():
            shape = parser.parse_dimension_list()
            parser.parse_punctuation(",")
            parser.parse_keyword("tile")
            parser.parse_punctuation("=")
            tile = parser.parse_dimension_list()
            grid = None
            if parser.parse_optional_punctuation(",") is not None:
                parser.parse_keyword("grid")
                parser.parse_punctuation("=")
                grid = parser.parse_dimension_list()
            end = parser.pos
        if len(shape) < 2 or len(tile) != 2:
            parser.raise_error("expected !xbar.tiles<DIMSxOUTxIN, tile = ROWSxCOLS[, grid = RxC]>", start, end)
        if any(d <= 0 for d in (*shape, *tile)):  # also rejects `?` (dynamic dims parse as negative)
            parser.raise_error(
                f"xbar.tiles needs static, positive dims and tile size, got {fmt_dims(shape)} and tile {fmt_dims(tile)}",
                start,
                end,
            )
        if grid is not None and tuple(grid) != tile_grid(shape, tile):
            expected = "x".join(map(str, tile_grid(shape, tile)))
            parser.raise_error(
                f"grid {fmt_dims(grid)} does not match the shape and tile size (expected {expected})", start, end
            )
        return [ArrayAttr([IntAttr(d) for d in shape]), ArrayAttr([IntAttr(d) for d in tile])]


def fmt_dims(dims: Sequence[int]) -> str:
    return "x".join("?" if d < 0 else str(d) for d in dims)


def _tiles_type(value: SSAValue) -> TilesType:
    if not isinstance(value.type, TilesType):
        raise VerifyException(f"expected an !xbar.tiles operand, got {value.type}")
    return value.type


def _verify_stored(op: IRDLOperation, matrix: SSAValue, tiles: SSAValue) -> None:
    shape, typ = tensor_shape(matrix), _tiles_type(tiles)
    if not is_float(element_type(matrix)):
        raise VerifyException(f"{op.name} stores a floating-point matrix, got {element_type(matrix)}")
    if shape != typ.get_shape():
        raise VerifyException(f"the tiles hold {fmt_shape(typ.get_shape())} but the matrix is {fmt_shape(shape)}")


def verify_adc_full_scale(full_scale: DenseIntOrFPElementsAttr | None, tiles: TilesType) -> None:
    """``adc_full_scale``: the ADC full-scale of a calibrated ADC range, one per (row tile, slice, column tile),
    in the device's level units (current above g_min per cell level, times input levels), the largest
    noise-free current seen on the calibration inputs; set at compile time (``adc-range=calibrated``)."""
    if full_scale is None:
        return
    shape = tuple(full_scale.get_shape())
    rows, cols = tiles.grid()
    if len(shape) != 3 or shape[0] != rows or shape[2] != cols:
        raise VerifyException(
            f"adc_full_scale has shape {fmt_shape(shape)}; expected {rows}x(slices)x{cols} (row tiles, slices, column tiles)"
        )
    if not is_float(full_scale.get_element_type()):
        raise VerifyException("adc_full_scale holds floats")
    values = [float(v) for v in full_scale.get_values() if isinstance(v, (int, float))]
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise VerifyException("adc_full_scale holds a negative or non-finite value")


@irdl_op_definition
class ProgramOp(IRDLOperation):
    """Programs a static matrix ``(out, in)`` into crossbar tiles once per model instance.

    ``%t = xbar.program %w : (tensor<1536x384xf32>) -> !xbar.tiles<1536x384, tile = 64x64, grid = 6x24>``

    ``skip_zero_tiles``: tiles that hold only zeros (a pruned weight) are not programmed; ``zero_tiles`` is
    how many there are, counted from the weights at compile time (absent until counted).
    ``adc_full_scale`` (``adc-range=calibrated``): see :func:`verify_adc_full_scale`.
    """

    name = "xbar.program"
    matrix = operand_def(TensorType)
    skip_zero_tiles = opt_attr_def(UnitAttr)
    zero_tiles = opt_attr_def(IntegerAttr)
    adc_full_scale = opt_attr_def(DenseIntOrFPElementsAttr)
    result = result_def(TilesType)
    assembly_format = "$matrix attr-dict `:` functional-type(operands, results)"
    traits = traits_def(Pure())

    def __init__(self, matrix: SSAValue, tile: Sequence[int]):
        super().__init__(operands=[matrix], result_types=[TilesType(tensor_shape(matrix), tile)])

    def verify_(self) -> None:
        _verify_stored(self, self.matrix, self.result)
        verify_adc_full_scale(self.adc_full_scale, self.result.type)
        if len(tensor_shape(self.matrix)) != 2:
            raise VerifyException(f"a static matrix is 2-d (out x in), got {fmt_shape(tensor_shape(self.matrix))}")
        if self.zero_tiles is not None:
            count, total = self.zero_tiles.value.data, self.result.type.tile_count()
            if self.skip_zero_tiles is None:
                raise VerifyException("zero_tiles is only meaningful with skip_zero_tiles")
            if not 0 <= count <= total:
                raise VerifyException(f"zero_tiles = {count} is not within the {total} tiles of the matrix")


KV_RANGES = ("matrix", "global", "head", "token")
"""How a written K or V is ranged onto the conductance window (see :class:`WriteOp`)."""
CALIBRATED_KV_RANGES = ("global", "head")
CLIP_DOMAINS = ("conductance", "value")


@irdl_op_definition
class WriteOp(IRDLOperation):
    """Writes a dynamic matrix ``(batch..., out, in)`` into crossbar tiles, on every inference (write noise).

    With ``clip_alpha``/``clip_beta`` (both or neither), ClipFormer acts on the conductances before the
    write, with the mapping scale of the unclipped matrix (what ``attn.kv_clip`` means on this target).

    How the matrix is ranged onto the conductance window (``lower-to-xbar{kv-range=...}``; absent: ``matrix``):
    ``kv_range`` is one of :data:`KV_RANGES` (each matrix's max|x|; a calibrated range per write site, ``global``,
    or per site and head, ``head``; each token's max|x|), ``kv_scale`` the calibrated ranges, one per head (dim -3
    of the matrix), set at compile time from the calibration inputs (``global``/``head`` only; absent until
    calibrated), ``kv_percentile`` the percentile of |x| they are taken at, and ``clip_domain`` (absent:
    ``conductance``) where the clip acts, one of :data:`CLIP_DOMAINS` (targets/crossbar/kv_ranges.py).

    ``%t = xbar.write %k {clip_alpha = 2.0 : f64, clip_beta = 0.25 : f64}
           : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>``
    """

    name = "xbar.write"
    matrix = operand_def(TensorType)
    clip_alpha = opt_attr_def(FloatAttr)
    clip_beta = opt_attr_def(FloatAttr)
    adc_full_scale = opt_attr_def(DenseIntOrFPElementsAttr)
    kv_range = opt_attr_def(StringAttr)
    kv_scale = opt_attr_def(DenseIntOrFPElementsAttr)
    kv_percentile = opt_attr_def(FloatAttr)
    clip_domain = opt_attr_def(StringAttr)
    result = result_def(TilesType)
    assembly_format = "$matrix attr-dict `:` functional-type(operands, results)"

    def __init__(self, matrix: SSAValue, tile: Sequence[int], clip: tuple[float, float] | None = None):
        attributes = {}
        if clip is not None:
            attributes = {"clip_alpha": FloatAttr(float(clip[0]), 64), "clip_beta": FloatAttr(float(clip[1]), 64)}
        super().__init__(
            operands=[matrix], result_types=[TilesType(tensor_shape(matrix), tile)], attributes=attributes
        )

    @property
    def clip(self) -> tuple[float, float] | None:
        if self.clip_alpha is None or self.clip_beta is None:
            return None
        return self.clip_alpha.value.data, self.clip_beta.value.data

    def verify_(self) -> None:
        _verify_stored(self, self.matrix, self.result)
        verify_adc_full_scale(self.adc_full_scale, self.result.type)
        if (self.clip_alpha is None) != (self.clip_beta is None):
            raise VerifyException("ClipFormer needs both clip_alpha and clip_beta, or neither")
        if self.clip is not None:
            for error in clipformer_errors(*self.clip, alpha_name="clip_alpha", beta_name="clip_beta"):
                raise VerifyException(error)
        self._verify_range()

    @property
    def range_policy(self) -> str:
        return "matrix" if self.kv_range is None else self.kv_range.data

    def _verify_range(self) -> None:
        policy = self.range_policy
        if policy not in KV_RANGES:
            raise VerifyException(f"kv_range must be one of {', '.join(KV_RANGES)}, got '{policy}'")
        if self.clip_domain is not None:
            if self.clip_domain.data not in CLIP_DOMAINS:
                raise VerifyException(f"clip_domain must be one of {', '.join(CLIP_DOMAINS)}, got '{self.clip_domain.data}'")
            if self.clip is None:
                raise VerifyException("clip_domain is only meaningful with clip_alpha and clip_beta")
        calibrated = policy in CALIBRATED_KV_RANGES
        if not calibrated and (self.kv_scale is not None or self.kv_percentile is not None):
            raise VerifyException(f"kv_scale and kv_percentile belong to calibrated ranges (global, head), not '{policy}'")
        if calibrated and self.kv_percentile is None:
            raise VerifyException(f"kv_range = '{policy}' needs the kv_percentile its ranges are calibrated at")
        if self.kv_percentile is not None and not 0.0 < self.kv_percentile.value.data <= 100.0:
            raise VerifyException(f"kv_percentile must be in (0, 100], got {self.kv_percentile.value.data}")
        if self.kv_scale is not None:
            shape = tensor_shape(self.matrix)
            heads = shape[-3] if len(shape) >= 3 else 1
            if tuple(self.kv_scale.get_shape()) != (heads,):
                raise VerifyException(f"kv_scale has shape {fmt_shape(tuple(self.kv_scale.get_shape()))}; expected {heads} "
                                      "(one range per head)")
            values = [float(v) for v in self.kv_scale.get_values() if isinstance(v, (int, float))]
            if any(not math.isfinite(v) or v <= 0 for v in values):
                raise VerifyException("kv_scale holds a non-positive or non-finite range")


@irdl_op_definition
class MvmOp(IRDLOperation):
    """``y = x Wᵀ`` on the crossbar holding W: inputs on the rows (DAC), outputs from the columns (ADC).

    A 2-d W takes any ``(..., in)``; a batched W ``(batch..., out, in)`` takes ``(batch..., M, in)``.

    ``%y = xbar.mvm %t, %x : (!xbar.tiles<384x384, tile = 64x64, grid = 6x6>, tensor<1x16x384xf32>)
           -> tensor<1x16x384xf32>``
    """

    name = "xbar.mvm"
    tiles = operand_def(TilesType)
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$tiles `,` $input attr-dict `:` functional-type(operands, results)"

    def __init__(self, tiles: SSAValue, input: SSAValue):
        typ = _tiles_type(tiles)
        shape = (*tensor_shape(input)[:-1], typ.get_shape()[-2])
        super().__init__(operands=[tiles, input], result_types=[TensorType(element_type(input), shape)])

    def verify_(self) -> None:
        typ, x = _tiles_type(self.tiles), tensor_shape(self.input)
        *batch, out_features, in_features = typ.get_shape()
        if not x or x[-1] != in_features:
            raise VerifyException(f"input has {x[-1] if x else 0} features, the crossbar holds {in_features} rows")
        if batch and (len(x) != len(batch) + 2 or tuple(x[:-2]) != tuple(batch)):
            raise VerifyException(
                f"batched tiles {fmt_shape(typ.get_shape())} need inputs ({fmt_shape(batch)}xMx{in_features}), "
                f"got {fmt_shape(x)}"
            )
        expected = (*x[:-1], out_features)
        if tensor_shape(self.result) != expected:
            raise VerifyException(f"result must be {fmt_shape(expected)}, got {fmt_shape(tensor_shape(self.result))}")
        if element_type(self.result) != element_type(self.input):
            raise VerifyException(f"result element type must be the input's {element_type(self.input)}")


XBAR = Dialect("xbar", [ProgramOp, WriteOp, MvmOp], [TilesType])
