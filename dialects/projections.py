"""Where an attention operand comes from: the ``nn.linear`` projection (W_Q, W_K) behind Q or K.

A pass that changes the projections of an attention (``attn-prune``) and the fitting step that computes
its result both need the same answer, so it lives here, below both. From an ``attn.sdpa`` operand the
search walks back through data-movement and elementwise ops (reshape, transpose, slice, rotary
embeddings' mul/add/neg/concat, GQA's broadcast) to the one ``nn.linear`` whose weight is an
``nn.param``. The ops in between are the operand's *path*: replaying them with a different weight gives the
operand that weight would produce, with the executor's own op implementations.

The pruning record is an attribute on the pruned ``nn.param`` (``PRUNE_MARK``), a dictionary that says how
it is pruned and whether the pruned weights are in the weights file yet (``status``).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import DictionaryAttr, FloatAttr, IntegerAttr, StringAttr, i64
from xdsl.ir import Attribute, Operation, SSAValue

from dialects import attn, nn

PRUNE_MARK = "attn.prune"
PENDING, APPLIED = "pending", "applied"

_PASS_THROUGH = (
    nn.ReshapeOp,
    nn.TransposeOp,
    nn.PermuteOp,
    nn.BroadcastToOp,
    nn.SliceOp,
    nn.ConcatOp,
    nn.NegOp,
    nn.MulOp,
    nn.AddOp,
    nn.SubOp,
    nn.DropoutOp,
    attn.KvClipOp,
)
_MAX_PATH_OPS = 64  # a projection is a few ops away; a longer search has left the attention


@dataclass(frozen=True)
class ProjectionPath:
    """The projection behind an attention operand and the ops from it to the operand, in program order."""

    linear: nn.LinearOp
    weight: nn.ParamOp
    ops: tuple[Operation, ...]
    operand: SSAValue

    def externals(self) -> list[tuple[Operation, int]]:
        """(op, operand index) of every operand the path reads from outside it, the projection's weight aside."""
        inside = {result for op in self.ops for result in op.results}
        return [
            (op, index)
            for op in self.ops
            for index, value in enumerate(op.operands)
            if value not in inside and not (op is self.linear and index == 1)
        ]


def _producer(value: SSAValue) -> Operation | None:
    return value.owner if isinstance(value.owner, Operation) else None


def projection_path(operand: SSAValue) -> ProjectionPath | None:
    """The single ``nn.linear`` with an ``nn.param`` weight that ``operand`` is computed from, or None."""
    linears: list[nn.LinearOp] = []
    visited: set[Operation] = set()
    stack = [operand]
    while stack:
        op = _producer(stack.pop())
        if op is None or op in visited:
            continue
        visited.add(op)
        if len(visited) > _MAX_PATH_OPS:
            return None
        if isinstance(op, nn.LinearOp):
            if isinstance(_producer(op.weight), nn.ParamOp):
                linears.append(op)
            continue
        if isinstance(op, _PASS_THROUGH):
            stack.extend(op.operands)
    if len(linears) != 1:
        return None
    linear = linears[0]
    weight = _producer(linear.weight)
    assert isinstance(weight, nn.ParamOp)
    reached: set[Operation] = {linear}
    for op in _program_order(visited):  # forward from the projection, inside what the search saw
        if op is not linear and any(_producer(value) in reached for value in op.operands):
            reached.add(op)
    ops = tuple(op for op in _program_order(visited) if op in reached)
    return ProjectionPath(linear, weight, ops, operand)


def _program_order(ops: set[Operation]) -> list[Operation]:
    """``ops`` sorted by their position in their block (a projection's path lies in one block)."""

    def position(op: Operation) -> int:
        block = op.parent_block()
        return block.get_operation_index(op) if block is not None else 0

    return sorted(ops, key=position)


def query_key_paths(op: attn.SdpaOp) -> tuple[ProjectionPath | None, ProjectionPath | None]:
    """The projection paths of an attention's query and key."""
    return projection_path(op.query), projection_path(op.key)


def prune_record(op: Operation) -> dict[str, object] | None:
    """The ``attn.prune`` record of an op as Python values (None when it has none)."""
    entries = op.attributes.get(PRUNE_MARK)
    if not isinstance(entries, DictionaryAttr):
        return None
    values: dict[str, object] = {}
    for key, value in entries.data.items():
        if isinstance(value, StringAttr):
            values[key] = value.data
        elif isinstance(value, FloatAttr):
            values[key] = float(value.value.data)
        elif isinstance(value, IntegerAttr):
            values[key] = int(value.value.data)
    return values


def set_prune_record(op: Operation, values: dict[str, object]) -> None:
    """Writes an ``attn.prune`` record (str, float and int values) onto an op."""
    entries: dict[str, Attribute] = {}
    for key, value in values.items():
        if isinstance(value, str):
            entries[key] = StringAttr(value)
        elif isinstance(value, bool) or isinstance(value, int):
            entries[key] = IntegerAttr(int(value), i64)
        elif isinstance(value, float):
            entries[key] = FloatAttr(value, 64)
    op.attributes[PRUNE_MARK] = DictionaryAttr(entries)
