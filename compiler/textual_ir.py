"""The textual IR attnc writes and reads: every printed module parses back to the same module.

xDSL 0.74's printer and parser disagree in two places, and both lose a saved model silently or loudly:

* **SSA names.** The printer names a value after its name hint and de-duplicates repeated hints with
  ``_1``, ``_2``, ... suffixes, but a hint may itself end in ``_<digits>`` (xDSL strips one such suffix
  when a hint is set, so ``split_1_0`` keeps the hint ``split_1``). Two values hinted ``split`` and one
  hinted ``split_1`` then all print as ``%split_1`` and the text no longer parses. ``RoundTripPrinter``
  gives every value (and block) a name no other one in its scope has.
* **Floats in dense literals.** For ``inf`` and ``nan`` the printer writes MLIR's bit-pattern form
  (``dense<0xFF800000> : tensor<f32>``, which is -inf), and it falls back to that form for finite values
  whose 9 (f32) or 17 (f64) significant digits have no decimal point (``123456792.0``). xDSL's parser
  reads such a literal as the *integer* 4286578688 and converts it, so -inf comes back as 4.29e9.
  ``RoundTripParser`` reads a hexadecimal literal in a float dense literal as its bit pattern, as MLIR
  does. ``RoundTripPrinter`` writes finite values as exact decimals, keeps a dense attribute holding a
  non-finite value in MLIR's raw hex buffer form (``dense<"0x0000807F">``, which every MLIR reader,
  stock xDSL included, reads as those bytes), and decides whether a dense attribute is a splat by its
  bits, so ``[0.0, -0.0]`` keeps its negative zero.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import AnyFloat, DenseIntOrFPElementsAttr, Float32Type, Float64Type
from xdsl.ir import Attribute, Block, SSAValue
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.lexer import Input
from xdsl.utils.mlir_lexer import MLIRLexer, MLIRTokenKind

# Significant decimal digits that always round-trip a binary float of this type.
_EXACT_DIGITS = {Float32Type: 9, Float64Type: 17}


@dataclass(eq=False, repr=False)
class RoundTripPrinter(Printer):
    """xDSL's printer, but its output always parses back to the module it printed (see module docstring)."""

    _taken_value_names: list[set[str]] = field(default_factory=lambda: [set()], init=False)
    _taken_block_names: list[set[str]] = field(default_factory=lambda: [set()], init=False)

    # -- names -----------------------------------------------------------------------------------------

    @staticmethod
    def _fresh_name(hint: str, counters: dict[str, int], taken: set[str]) -> str:
        """``hint``, else ``hint_1``, ``hint_2``, ... : the first that no value or block in scope has yet."""
        index = counters.get(hint, 0)
        name = hint if index == 0 else f"{hint}_{index}"
        while name in taken:
            index += 1
            name = f"{hint}_{index}"
        counters[hint] = index + 1
        taken.add(name)
        return name

    def print_ssa_value(self, value: SSAValue) -> str:
        if value not in self._ssa_values and value.name_hint:
            self._ssa_values[value] = self._fresh_name(value.name_hint, self.ssa_names, self._taken_value_names[-1])
        return super().print_ssa_value(value)

    def _populate_block_name(self, block: Block, block_index: int | None = None) -> None:
        """Hinted blocks get unique names; the others keep xDSL's ``^bb<N>`` (no parsed block has such a hint)."""
        if block.name_hint:
            self._blocks[block] = self._fresh_name(block.name_hint, self.block_names, self._taken_block_names[-1])
            return
        super()._populate_block_name(block, block_index)

    def enter_scope(self) -> None:
        super().enter_scope()
        self._taken_value_names.append(set(self._taken_value_names[-1]))
        self._taken_block_names.append(set(self._taken_block_names[-1]))

    def exit_scope(self) -> None:
        super().exit_scope()
        self._taken_value_names.pop()
        self._taken_block_names.pop()

    # -- floats ----------------------------------------------------------------------------------------

    def print_float(self, value: float, type: AnyFloat) -> None:
        digits = _EXACT_DIGITS.get(type.__class__)
        if digits is None or not math.isfinite(value):
            super().print_float(value, type)  # f16/bf16 are exact at xDSL's 6 digits; inf/nan: bit pattern
            return
        short = f"{value:.5e}".replace("e", "0e")  # xDSL's (and mlir-opt's) readable form
        if type.unpack(type.pack([float(short)]), 1)[0] == value:
            self.print_string(short)
            return
        exact = f"{value:.{digits}g}"
        self.print_string(exact if "." in exact else f"{value:.{digits - 1}e}")

    def print_attribute(self, attribute: Attribute) -> None:
        if isinstance(attribute, DenseIntOrFPElementsAttr) and isinstance(attribute.get_element_type(), AnyFloat):
            self._print_float_dense(attribute)
            return
        super().print_attribute(attribute)

    def _print_float_dense(self, attribute: DenseIntOrFPElementsAttr) -> None:
        element_type: Any = attribute.get_element_type()  # a float type: print_attribute checked
        size = element_type.compile_time_size
        raw = attribute.data.data
        elements = [raw[i : i + size] for i in range(0, len(raw), size)]
        values: list = list(attribute.get_values())  # floats here (the caller checked the element type)
        self.print_string("dense<")
        if not elements:
            pass
        elif all(e == elements[0] for e in elements):  # a splat, bit for bit (so -0.0 is not 0.0)
            if math.isfinite(values[0]):
                self.print_float(values[0], element_type)
            else:
                self.print_string(f'"0x{elements[0].hex().upper()}"')
        elif len(elements) > 100 or not all(math.isfinite(v) for v in values):
            self.print_string(f'"0x{raw.hex().upper()}"')
        else:
            shape = attribute.get_shape() if attribute.shape_is_complete else (len(values),)
            self._print_float_list(values, shape, element_type)
        self.print_string("> : ")
        self.print_attribute(attribute.get_type())

    def _print_float_list(self, values, shape, element_type: AnyFloat) -> None:
        """``[[a, b], [c, d]]``: nested by ``shape``, each element an exact decimal."""
        if len(shape) > 1:
            step = len(values) // shape[0]
            rows = [values[i : i + step] for i in range(0, len(values), step)]
            with self.in_square_brackets():
                self.print_list(rows, lambda row: self._print_float_list(row, shape[1:], element_type))
            return
        with self.in_square_brackets():
            self.print_list(values, lambda value: self.print_float(value, element_type))


class LinearTimeLexer(MLIRLexer):
    """xDSL's lexer with a string-literal pattern that runs in linear time.

    xDSL 0.74 matches a string with ``"(?:[^"...]+|escape)*"``: a repeated group around a repeated class,
    which backtracks exponentially on an unterminated string (a mutated ``loc("...")`` kept ``attnc run``
    busy for minutes). One character per iteration, with a possessive loop, accepts the same strings.
    """

    _unescaped_characters_regex = re.compile(r'"(?:[^"\\\n\v\f]|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*+"')


class RoundTripParser(Parser):
    """xDSL's parser, reading a hexadecimal element of a float dense literal as its bit pattern (as MLIR does),
    on a lexer that cannot backtrack exponentially (``LinearTimeLexer``)."""

    def __init__(self, ctx: Context, input: str | bytes, name: str = "<unknown>") -> None:
        super().__init__(ctx, input, name)
        text = input.decode("utf-8") if isinstance(input, bytes) else input
        lexer = LinearTimeLexer(Input(text, name))
        self._parser_state.lexer = lexer
        self._parser_state.current_token = lexer.lex()

    @dataclass
    class _BitPatternElement(Parser._TensorLiteralElement):
        """A ``0x...`` tensor literal element: an integer for integer types, raw bits for float types."""

        def to_type(self, parser, type):
            if not isinstance(type, AnyFloat):
                return super().to_type(parser, type)
            size = type.compile_time_size
            if self.value >= 1 << (8 * size):
                parser.raise_error(f"hexadecimal float literal does not fit in {type}", at_position=self.span)
            return type.unpack(self.value.to_bytes(size, "little"), 1)[0]

    def _parse_tensor_literal_element(self) -> Parser._TensorLiteralElement:
        token = self._current_token
        if token.kind == MLIRTokenKind.INTEGER_LIT and token.text[:2] in ("0x", "0X"):
            self._consume_token(MLIRTokenKind.INTEGER_LIT)
            return self._BitPatternElement(False, token.kind.get_int_value(token.span), token.span)
        return super()._parse_tensor_literal_element()
