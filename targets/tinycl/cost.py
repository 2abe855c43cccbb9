"""The TinyCL cost model: MACs, cycles, memory accesses and energy per layer, and the on-chip memory plan.

The array is ``pe_rows × pe_cols`` processing elements, output-stationary: a ``tinycl.mac`` is cut into output
tiles of ``pe_rows × pe_cols``; one tile takes ``K + pe_rows + pe_cols − 2`` cycles (K products per PE plus the
systolic fill and drain). The array holds one lhs tile (``rows × K``) and one rhs tile (``cols × K``); moving to
the next tile loads only the operand tile that changes. Raster order (left to right on every tile row) reloads
the rhs tile at every row turn; the snake order (left to right, then right to left) keeps it, as TinyCL's
snake traversal keeps the overlapping window. Activations live in the on-chip SRAM (the memory plan checks the
peak fits); weights stream from off-chip memory into the array. Element-wise units (softmax, layer norm,
function tables, requantisation) process ``pe_cols`` elements per cycle and read and write each element once.

Energies (picojoules) are Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm): an 8-bit multiply 0.2 pJ,
scaled with the square of the width; a 32-bit add 0.1 pJ, scaled linearly with the accumulator width; an SRAM
access 20 pJ per 64 bits (32 KB bank) and a DRAM access 1.3 nJ per 64 bits (the low end of 1.3–2.6 nJ), both
scaled with the word width. TinyCL is a 65 nm design, so the figures are indicative, not the chip's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, StringAttr
from xdsl.ir import Operation, SSAValue

from dialects import nn, tinycl
from dialects.locations import module_path_of
from dialects.shapes import element_type, tensor_shape

MULTIPLY_8BIT_PJ = 0.2
ADD_32BIT_PJ = 0.1
SRAM_64BIT_PJ = 20.0
DRAM_64BIT_PJ = 1300.0


@dataclass(frozen=True)
class ArrayConfig:
    total_bits: int = 16
    frac_bits: int = 8
    pe_rows: int = 16
    pe_cols: int = 16
    sram_kb: int = 1024
    snake: bool = True

    @classmethod
    def of(cls, module: ModuleOp) -> ArrayConfig:
        config = module.attributes.get(tinycl.CONFIG_ATTRIBUTE)
        if not isinstance(config, DictionaryAttr):
            raise ValueError(f"the module has no '{tinycl.CONFIG_ATTRIBUTE}' dictionary: lower it with lower-to-tinycl")
        values = {k: v.value.data for k, v in config.data.items() if isinstance(v, IntegerAttr)}
        return cls(
            **{k: int(values[k]) for k in ("total_bits", "frac_bits", "pe_rows", "pe_cols", "sram_kb") if k in values},
            snake=bool(values.get("snake", 1)),
        )


def mac_energy_pj(bits: int, accumulator_bits: int) -> float:
    return MULTIPLY_8BIT_PJ * (bits / 8) ** 2 + ADD_32BIT_PJ * accumulator_bits / 32


def sram_energy_pj(bits: int) -> float:
    return SRAM_64BIT_PJ * bits / 64


def dram_energy_pj(bits: int) -> float:
    return DRAM_64BIT_PJ * bits / 64


@dataclass
class LayerCost:
    """The figures of one layer (one module path) on the array."""

    layer: str
    macs: int = 0
    cycles: int = 0
    busy_pe_cycles: int = 0
    on_chip: int = 0
    on_chip_raster: int = 0
    off_chip: int = 0
    off_chip_raster: int = 0
    energy_pj: float = 0.0
    energy_raster_pj: float = 0.0
    ops: list[str] = field(default_factory=list)

    def utilisation(self, pes: int) -> float:
        return self.macs / (self.cycles * pes) if self.cycles else 0.0


def _is_weight(value: SSAValue) -> bool:
    """A quantized parameter: streamed from off-chip memory."""
    owner = value.owner
    return isinstance(owner, tinycl.QuantizeOp) and isinstance(owner.input.owner, nn.ParamOp)


def tile_loads(rows: int, cols: int, depth: int, m: int, n: int, snake: bool) -> tuple[int, int]:
    """Words of (lhs, rhs) loaded into the array for one (M × K)·(N × K)ᵀ product in tile order."""
    tiles_m, tiles_n = math.ceil(m / rows), math.ceil(n / cols)
    lhs_words = m * depth  # every lhs tile is loaded once, when its tile row starts
    rhs_words, current = 0, None
    for i in range(tiles_m):
        order = range(tiles_n) if not snake or i % 2 == 0 else range(tiles_n - 1, -1, -1)
        for j in order:
            if j != current:
                rhs_words += min(cols, n - j * cols) * depth
                current = j
    return lhs_words, rhs_words


def gemm_dims(op: tinycl.MacOp) -> tuple[int, int, int, int]:
    """(batch, M, N, depth) of a forward or gradient ``tinycl.mac``: M×depth times depth×N, ``batch`` times."""
    lhs, rhs = tensor_shape(op.lhs), tensor_shape(op.rhs)
    mode = op.mode.data
    if mode == "forward":
        depth, n = lhs[-1], rhs[-2]
    elif mode == "input-gradient":
        depth, n = lhs[-1], rhs[-1]
    else:
        depth, n = math.prod(lhs[:-1]), rhs[-1]
    if mode == "weight-gradient":
        batch, m = 1, lhs[-1]
    elif len(rhs) == 2:
        batch, m = 1, math.prod(lhs[:-1])
    else:
        batch, m = math.prod(lhs[:-2]), lhs[-2]
    return batch, m, n, depth


def mac_figures(op: tinycl.MacOp, config: ArrayConfig, snake: bool) -> tuple[int, int, int, int]:
    """(MACs, cycles, on-chip words, off-chip words) of one ``tinycl.mac``."""
    if op.mode.data == "update":
        elements = math.prod(tensor_shape(op.result))
        return 0, math.ceil(elements / config.pe_cols), 3 * elements, 0
    batch, m, n, depth = gemm_dims(op)
    bias = n if op.bias is not None else 0
    return product_figures(batch, m, n, depth, config, snake, _is_weight(op.rhs), bias)


def product_figures(
    batch: int, m: int, n: int, depth: int, config: ArrayConfig, snake: bool, rhs_off_chip: bool = False, bias: int = 0
) -> tuple[int, int, int, int]:
    """(MACs, cycles, on-chip words, off-chip words) of ``batch`` products (M × K)·(N × K)ᵀ on the array."""
    rows, cols = config.pe_rows, config.pe_cols
    tiles = math.ceil(m / rows) * math.ceil(n / cols)
    cycles = batch * tiles * (depth + rows + cols - 2)
    lhs_words, rhs_words = tile_loads(rows, cols, depth, m, n, snake)
    on_chip = batch * (lhs_words + m * n)
    off_chip = bias
    if rhs_off_chip:
        off_chip += batch * rhs_words
    else:
        on_chip += batch * rhs_words
    return batch * m * n * depth, cycles, on_chip, off_chip


def attention_figures(kind: str, batch: int, length: int, dim: int, config: ArrayConfig, snake: bool = True) -> dict[str, float]:
    """The array's figures for one attention of ``batch`` (batch × heads) sequences of ``length`` tokens of ``dim``
    features: ``softmax`` (Q·Kᵀ, the softmax unit on L² scores, P·V) or ``cosine`` (row L2 norms of Q and K,
    N(K)ᵀ·V, N(Q)·(N(K)ᵀV): linear in L). Element-wise work goes to the vector unit (``pe_cols`` per cycle)."""
    if kind == "softmax":
        products = [(length, length, dim), (length, dim, length)]
        elementwise = 3 * length * length  # requantise scores, softmax, requantise P·V's accumulator
    elif kind == "cosine":
        products = [(dim, dim, length), (length, dim, dim)]
        elementwise = 4 * length * dim + dim * dim  # two norms, two requantisations, the d×d state
    else:
        raise ValueError(f"unknown attention kind '{kind}'")
    figures = {"macs": 0.0, "cycles": 0.0, "on_chip": 0.0, "off_chip": 0.0}
    for m, n, depth in products:
        macs, cycles, on_chip, off_chip = product_figures(batch, m, n, depth, config, snake)
        for key, value in zip(figures, (macs, cycles, on_chip, off_chip)):
            figures[key] += value
    figures["cycles"] += batch * math.ceil(elementwise / config.pe_cols)
    figures["on_chip"] += batch * 2 * elementwise
    bits = config.total_bits
    figures["energy_pj"] = figures["macs"] * mac_energy_pj(bits, 2 * bits + 8) + figures["on_chip"] * sram_energy_pj(bits)
    return figures


COMPUTE_OPS = (
    tinycl.MacOp,
    tinycl.SoftmaxOp,
    tinycl.LayerNormOp,
    tinycl.LutOp,
    tinycl.RequantOp,
    tinycl.L2NormalizeOp,
    tinycl.HeadScaleOp,
    tinycl.AddOp,
    tinycl.MulOp,
    tinycl.ReduceSumOp,
    tinycl.SoftmaxBackwardOp,
    tinycl.LayerNormBackwardOp,
    tinycl.ActivationBackwardOp,
    tinycl.CrossEntropyBackwardOp,
    tinycl.EmbeddingBackwardOp,
    tinycl.L2NormalizeBackwardOp,
    tinycl.HeadScaleBackwardOp,
)



def unit_elements(op: Operation) -> int:
    """The elements an element-wise unit streams: its result's, or the operands' for a reduction to one value per
    head (``head_scale_backward``)."""
    if isinstance(op, tinycl.HeadScaleBackwardOp):
        return math.prod(tensor_shape(op.lhs))
    return math.prod(tensor_shape(op.results[0]))

def layer_costs(module: ModuleOp) -> list[LayerCost]:
    """One entry per module path that holds tinycl compute, in program order."""
    config = ArrayConfig.of(module)
    layers: dict[str, LayerCost] = {}
    bits = config.total_bits
    for op in module.walk():
        if not isinstance(op, COMPUTE_OPS):
            continue
        path = module_path_of(op) or "<top>"
        cost = layers.setdefault(path, LayerCost(path))
        if isinstance(op, tinycl.MacOp):
            macs, cycles, on_chip, off_chip = mac_figures(op, config, config.snake)
            _, _, on_raster, off_raster = mac_figures(op, config, False)
            acc = element_type(op.result)
            assert isinstance(acc, tinycl.FixedType)
            compute = macs * mac_energy_pj(bits, acc.total.data)
            cost.macs += macs
            cost.busy_pe_cycles += macs
            cost.ops.append(f"mac {op.mode.data}")
        else:
            elements = unit_elements(op)
            cycles, on_chip, off_chip = math.ceil(elements / config.pe_cols), 2 * elements, 0
            on_raster, off_raster, compute = on_chip, off_chip, 0.0
            if not isinstance(op, tinycl.RequantOp):
                cost.ops.append(op.name.removeprefix("tinycl."))
        cost.cycles += cycles
        cost.on_chip += on_chip
        cost.off_chip += off_chip
        cost.on_chip_raster += on_raster
        cost.off_chip_raster += off_raster
        cost.energy_pj += compute + on_chip * sram_energy_pj(bits) + off_chip * dram_energy_pj(bits)
        cost.energy_raster_pj += compute + on_raster * sram_energy_pj(bits) + off_raster * dram_energy_pj(bits)
    return list(layers.values())


PHASES = ("forward", "input-gradient", "weight-gradient", "update")
PHASE_KEYS = ("macs", "cycles", "on_chip", "off_chip", "off_chip_raster", "energy_pj")


def _phase_of(op: Operation) -> str:
    """The training phase a tinycl op belongs to: a MAC's mode; a quantize feeding or a requant reading a MAC,
    that MAC's; an op the lowering marked with ``phase`` (the backward units, the update), that phase; every
    other unit (softmax, layer norm, tables) runs in the forward phase."""
    marked = op.attributes.get("phase")
    if isinstance(marked, StringAttr) and marked.data in PHASES:
        return marked.data
    if isinstance(op, tinycl.MacOp):
        return op.mode.data
    if isinstance(op, tinycl.RequantOp) and isinstance(op.input.owner, tinycl.MacOp):
        return op.input.owner.mode.data
    for use in op.results[0].uses if op.results else ():
        if isinstance(use.operation, tinycl.MacOp):
            return use.operation.mode.data
    return "forward"


def phase_costs(module: ModuleOp) -> dict[str, dict[str, float]]:
    """MACs, cycles, word accesses and energy per training phase (forward, input gradient, weight gradient,
    update) of one run of the module.

    The update phase is the lowered SGD step (its products by η and μ, its ``update``-mode MACs and
    requantisations); a ``grad.sgd`` left on the host is modelled as the update mode would run it
    (``ceil(elements / pe-cols)`` cycles, three on-chip words per element: parameter, gradient, velocity).
    """
    config = ArrayConfig.of(module)
    bits = config.total_bits
    phases = {phase: dict.fromkeys(PHASE_KEYS, 0.0) for phase in PHASES}
    for op in module.walk():
        if op.name == "grad.sgd":
            elements = math.prod(tensor_shape(op.operands[0]))
            figures = phases["update"]
            figures["cycles"] += math.ceil(elements / config.pe_cols)
            figures["on_chip"] += 3 * elements
            figures["energy_pj"] += 3 * elements * sram_energy_pj(bits)
            continue
        if not isinstance(op, COMPUTE_OPS):
            continue
        figures = phases[_phase_of(op)]
        if isinstance(op, tinycl.MacOp):
            macs, cycles, on_chip, off_chip = mac_figures(op, config, config.snake)
            off_raster = mac_figures(op, config, False)[3]
            acc = element_type(op.result)
            assert isinstance(acc, tinycl.FixedType)
            compute = macs * mac_energy_pj(bits, acc.total.data)
        else:
            elements = unit_elements(op)
            macs, cycles, on_chip, compute = 0, math.ceil(elements / config.pe_cols), 2 * elements, 0.0
            off_chip = off_raster = 0
        figures["macs"] += macs
        figures["cycles"] += cycles
        figures["on_chip"] += on_chip
        figures["off_chip"] += off_chip
        figures["off_chip_raster"] += off_raster
        figures["energy_pj"] += compute + on_chip * sram_energy_pj(bits) + off_chip * dram_energy_pj(bits)
    return phases


def format_phases(module: ModuleOp) -> str:
    """The per-phase table of a training step (empty for a forward-only program)."""
    phases = phase_costs(module)
    if not any(phases[p]["cycles"] for p in PHASES[1:]):
        return ""
    lines = [f"{'phase':<28} {'MACs':>10} {'cycles':>9} {'on-chip':>10} {'off-chip':>9} {'(raster)':>9} {'energy uJ':>10}"]
    for phase, f in phases.items():
        name = phase
        lines.append(
            f"{name:<28} {int(f['macs']):>10} {int(f['cycles']):>9} {int(f['on_chip']):>10} {int(f['off_chip']):>9} "
            f"{int(f['off_chip_raster']):>9} {f['energy_pj'] / 1e6:>10.3f}"
        )
    return "\n".join(lines)


class SramOverflow(Exception):
    """The memory plan's peak does not fit the on-chip SRAM."""

    def __init__(self, message: str, op: Operation):
        super().__init__(message)
        self.op = op


@dataclass(frozen=True)
class MemoryPlan:
    schedule: list[Operation]
    peak_bytes: int
    peak_op: Operation | None
    live_at_peak: list[str]


def _on_chip_bytes(value: SSAValue) -> int:
    fmt = element_type(value)
    if not isinstance(fmt, tinycl.FixedType) or _is_weight(value):
        return 0
    return math.prod(tensor_shape(value)) * math.ceil(fmt.total.data / 8)


def memory_plan(module: ModuleOp, sram_kb: int | None = None) -> MemoryPlan:
    """A topological schedule of the ops (program order breaks ties), the liveness of every on-chip buffer
    (fixed-point activations and accumulators; weights stream through), and the peak; raises
    :class:`SramOverflow` naming the layer at the peak when it exceeds ``sram_kb``."""
    graph: nx.DiGraph = nx.DiGraph()
    order: dict[Operation, int] = {}
    for op in module.walk():
        if op.regions:  # the module and func.func: their bodies are what runs
            continue
        order[op] = len(order)
        graph.add_node(op)
        for operand in op.operands:
            if isinstance(operand.owner, Operation) and operand.owner in order:
                graph.add_edge(operand.owner, op)
    schedule = list(nx.lexicographical_topological_sort(graph, key=lambda o: order[o]))
    step = {op: index for index, op in enumerate(schedule)}
    buffers: list[tuple[int, int, int, str]] = []  # (first step, last step, bytes, name)
    for op in schedule:
        for value in op.results:
            size = _on_chip_bytes(value)
            if size:
                last = max((step[use.operation] for use in value.uses if use.operation in step), default=step[op])
                buffers.append((step[op], last, size, value.name_hint or "value"))
    peak, peak_step, live = 0, None, []
    for index in range(len(schedule)):
        here = [(size, name) for first, last, size, name in buffers if first <= index <= last]
        total = sum(size for size, _ in here)
        if total > peak:
            peak, peak_step, live = total, index, [f"{name} {size} B" for size, name in here]
    peak_op = schedule[peak_step] if peak_step is not None else None
    plan = MemoryPlan(schedule, peak, peak_op, live)
    if sram_kb is not None and peak > sram_kb * 1024 and peak_op is not None:
        raise SramOverflow(
            f"the model does not fit sram-kb={sram_kb} ({sram_kb * 1024} B): layer '{module_path_of(peak_op) or '<top>'}' "
            f"({peak_op.name}) needs {peak} B ({peak / 1024:.1f} KiB) of live on-chip buffers: {', '.join(live[:6])}",
            peak_op,
        )
    return plan


def totals(layers: list[LayerCost]) -> dict[str, float]:
    keys = ("macs", "cycles", "on_chip", "off_chip", "on_chip_raster", "off_chip_raster", "energy_pj", "energy_raster_pj")
    return {key: float(sum(getattr(layer, key) for layer in layers)) for key in keys}


def format_numbers(module: ModuleOp, config: ArrayConfig) -> str:
    """``16/8``, or ``16-bit calibrated formats`` when every value has a format of its own."""
    settings = module.attributes.get(tinycl.CONFIG_ATTRIBUTE)
    if isinstance(settings, DictionaryAttr) and settings.data.get("formats") == StringAttr("calibrated"):
        return f"{config.total_bits}-bit calibrated formats"
    return f"{config.total_bits}/{config.frac_bits}"


def format_report(module: ModuleOp) -> str:
    """The per-layer table and the memory plan, as ``attnc run --report`` prints them."""
    config = ArrayConfig.of(module)
    layers = layer_costs(module)
    pes = config.pe_rows * config.pe_cols
    lines = [
        f"TinyCL array {config.pe_rows}x{config.pe_cols}, {format_numbers(module, config)} fixed point, "
        f"SRAM {config.sram_kb} KiB, {'snake' if config.snake else 'raster'} tile order",
        f"{'layer':<28} {'MACs':>10} {'cycles':>9} {'util':>6} {'on-chip':>10} {'(raster)':>10} "
        f"{'off-chip':>9} {'(raster)':>9} {'energy uJ':>10}  ops",
    ]
    for layer in layers:
        lines.append(
            f"{layer.layer:<28} {layer.macs:>10} {layer.cycles:>9} {layer.utilisation(pes):>6.1%} {layer.on_chip:>10} "
            f"{layer.on_chip_raster:>10} {layer.off_chip:>9} {layer.off_chip_raster:>9} {layer.energy_pj / 1e6:>10.3f}  "
            f"{', '.join(dict.fromkeys(layer.ops))}"
        )
    total = totals(layers)
    utilisation = total["macs"] / (total["cycles"] * pes) if total["cycles"] else 0.0
    lines.append(
        f"{'total':<28} {int(total['macs']):>10} {int(total['cycles']):>9} {utilisation:>6.1%} {int(total['on_chip']):>10} "
        f"{int(total['on_chip_raster']):>10} {int(total['off_chip']):>9} {int(total['off_chip_raster']):>9} "
        f"{total['energy_pj'] / 1e6:>10.3f}"
    )
    plan = memory_plan(module)
    where = module_path_of(plan.peak_op) if plan.peak_op is not None else ""
    lines.append(
        f"memory plan: {len(plan.schedule)} ops scheduled, peak on-chip {plan.peak_bytes} B ({plan.peak_bytes / 1024:.1f} KiB) "
        f"of {config.sram_kb} KiB at '{where or '<top>'}'"
    )
    phases = format_phases(module)
    if phases:
        lines.append(phases)
    return "\n".join(lines)
