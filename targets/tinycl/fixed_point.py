"""Integer arithmetic of the TinyCL model: codes are int64 tensors, every step is exact or rounded on purpose.

A format is ``(total, frac)``: a code ``c`` in ``[-2^(total-1), 2^(total-1) - 1]`` holds ``c · 2^-frac``.
Rounding modes (applied to the bits a shift drops): ``nearest-even`` (ties to the even code), ``truncate``
(drop the bits: towards −∞, as an arithmetic right shift does), ``stochastic`` (add a uniform integer in
``[0, 2^shift)`` from a seeded generator, then truncate: rounds up with probability equal to the dropped
fraction). Overflow modes: ``saturate`` (clamp to the range) and ``wrap`` (keep the low ``total`` bits, two's
complement). Float inputs are scaled by ``2^frac`` in float64 (exact for f32 values) and rounded the same way.
"""

from __future__ import annotations

import math

import torch

Format = tuple[int, int]
TABLE_BITS = 16  # precision of the exp table of softmax (fractional bits), and the widest table index of tinycl.lut
NORM_GUARD_BITS = 8  # extra bits of the integer square root in layer norm


def code_range(total: int) -> tuple[int, int]:
    return -(1 << (total - 1)), (1 << (total - 1)) - 1


def fit(codes: torch.Tensor, total: int, overflow: str) -> torch.Tensor:
    """Codes that fit ``total`` bits: clamped (``saturate``) or reduced modulo ``2^total`` (``wrap``)."""
    low, high = code_range(total)
    if overflow == "saturate":
        return codes.clamp(low, high)
    if total >= 64:
        return codes
    return torch.remainder(codes - low, 1 << total) + low


def shift_right(codes: torch.Tensor, shift: int, rounding: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """``codes / 2^shift`` rounded to an integer with ``rounding`` (shift >= 0; exact in int64)."""
    if shift <= 0:
        return codes * (1 << -shift)
    floor = codes >> shift
    if rounding == "truncate":
        return floor
    if rounding == "nearest-even":
        rest = codes - (floor << shift)
        half = 1 << (shift - 1)
        up = (rest > half) | ((rest == half) & (floor % 2 == 1))
        return floor + up.to(codes.dtype)
    if rounding == "stochastic":
        if generator is None:
            raise ValueError("stochastic rounding needs a generator")
        noise = torch.randint(0, 1 << shift, codes.shape, generator=generator, dtype=torch.int64)
        return (codes + noise) >> shift
    raise ValueError(f"unknown rounding mode '{rounding}'")


def quantize(
    values: torch.Tensor, fmt: Format, rounding: str, overflow: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Float values → codes of ``fmt``."""
    total, frac = fmt
    scaled = values.detach().to(torch.float64) * (2.0**frac)
    if not bool(torch.isfinite(scaled).all()):
        raise ValueError("cannot quantize NaN or Inf")
    if rounding == "nearest-even":
        codes = torch.round(scaled)
    elif rounding == "truncate":
        codes = torch.floor(scaled)
    elif rounding == "stochastic":
        if generator is None:
            raise ValueError("stochastic rounding needs a generator")
        codes = torch.floor(scaled + torch.rand(scaled.shape, generator=generator, dtype=torch.float64))
    else:
        raise ValueError(f"unknown rounding mode '{rounding}'")
    low, high = -(2.0**62), 2.0**62  # keep the float → int64 conversion defined; fit() then applies the mode
    return fit(codes.clamp(low, high).to(torch.int64), total, overflow)


def dequantize(codes: torch.Tensor, fmt: Format, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return (codes.to(torch.float64) * (2.0 ** -fmt[1])).to(dtype)


def requantize(
    codes: torch.Tensor, source: Format, target: Format, rounding: str, overflow: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Codes of ``source`` → codes of ``target``: shift to its fractional bits, round, then fit its width."""
    return fit(shift_right(codes, source[1] - target[1], rounding, generator), target[0], overflow)


def mac(
    mode: str, lhs: torch.Tensor, rhs: torch.Tensor, bias: torch.Tensor | None, acc_total: int, overflow: str
) -> torch.Tensor:
    """The MAC array on codes, accumulating exactly in int64; ``overflow`` applies once, when the sum is written
    to the ``acc_total``-bit accumulator (the lowering sizes it so that nothing overflows)."""
    if mode == "forward":
        result = torch.matmul(lhs, rhs.transpose(-1, -2))
        if bias is not None:
            result = result + bias
    elif mode == "input-gradient":
        result = torch.matmul(lhs, rhs)
    elif mode == "weight-gradient":
        rows = lhs.reshape(-1, lhs.shape[-1])
        cols = (rhs if rhs.dim() == 2 else rhs.reshape(-1, rhs.shape[-1])).expand(rows.shape[0], -1)
        result = rows.transpose(0, 1) @ cols
    elif mode == "update":
        result = lhs - rhs
    else:
        raise ValueError(f"unknown MAC mode '{mode}'")
    return fit(result, acc_total, overflow)


def align_for_update(lhs: torch.Tensor, lhs_frac: int, rhs: torch.Tensor, rhs_frac: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Both operands of ``update`` shifted left to the finer of the two formats (exact)."""
    frac = max(lhs_frac, rhs_frac)
    return lhs << (frac - lhs_frac), rhs << (frac - rhs_frac)


def divide_rounded(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator`` rounded half up, in integers (denominator > 0)."""
    return torch.div(2 * numerator + denominator, 2 * denominator, rounding_mode="floor")


def exp_table(scale: float, frac: int) -> torch.Tensor:
    """``round(exp(-scale · j · 2^-frac) · 2^TABLE_BITS)`` for j = 0, 1, … until it rounds to zero."""
    length = math.floor(2.0**frac * (TABLE_BITS + 1) * math.log(2) / scale) + 2
    steps = torch.arange(length, dtype=torch.float64)
    table = torch.round(torch.exp(-scale * steps * 2.0**-frac) * 2.0**TABLE_BITS).to(torch.int64)
    return table[: int((table > 0).sum())]


def softmax(
    codes: torch.Tensor,
    fmt: Format,
    scale: float,
    causal: bool,
    keep: torch.Tensor | None = None,
    out: Format | None = None,
) -> torch.Tensor:
    """Softmax of ``scale · s`` over the last dim, codes of ``fmt`` in, codes of ``out`` (default ``fmt``) out:
    table exponentials, exact int64 row sums, one rounded division per element; error within
    ``2^-(out frac+1)`` + the table's ``2^-(TABLE_BITS+1)`` relative error per term. ``keep`` (bool, broadcast to
    the scores) and ``causal`` drop keys; a row with no key left is all zeros."""
    total, frac = fmt
    table = exp_table(scale, frac)
    kept = torch.ones(codes.shape, dtype=torch.bool)
    if keep is not None:
        kept = kept & keep.to(torch.bool)
    if causal:
        kept = kept & torch.ones(codes.shape[-2], codes.shape[-1], dtype=torch.bool).tril()
    low = code_range(total)[0]
    row_max = codes.masked_fill(~kept, low).max(dim=-1, keepdim=True).values
    distance = (row_max - codes).clamp(min=0)
    exps = torch.where(distance < len(table), table[distance.clamp(max=len(table) - 1)], torch.zeros_like(distance))
    exps = exps.masked_fill(~kept, 0)
    sums = exps.sum(dim=-1, keepdim=True)
    out_total, out_frac = out or fmt
    probs = divide_rounded(exps << out_frac, sums.clamp(min=1))
    return fit(probs, out_total, "saturate")


def integer_sqrt(values: torch.Tensor) -> torch.Tensor:
    """``floor(sqrt(v))`` for int64 v >= 0, exact: a float64 estimate corrected by integer comparisons."""
    roots = torch.sqrt(values.to(torch.float64)).floor().to(torch.int64)
    for _ in range(4):
        roots = torch.where(roots * roots > values, roots - 1, roots)
        roots = torch.where((roots + 1) * (roots + 1) <= values, roots + 1, roots)
    return roots


def layer_norm(
    codes: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    fmt: Format,
    eps: float,
    rounding: str,
    overflow: str,
    generator: torch.Generator | None = None,
    gamma_frac: int | None = None,
    beta_frac: int | None = None,
    out: Format | None = None,
) -> torch.Tensor:
    """Layer norm over the last dim: ``c = n·x − Σx`` exactly, ``σ·n = sqrt(Σc²/n + eps·n²)`` by an integer
    square root with NORM_GUARD_BITS extra bits, ``y = c / (σ·n)`` rounded to ``F = frac + out frac``
    fractional bits (``2·frac`` when the output has the input's format), then ``γ·y + β`` exact and
    requantised to ``out`` (default ``fmt``). γ and β have ``gamma_frac`` and ``beta_frac`` fractional bits
    (default: the input's); β is aligned to the product's units by an exact shift."""
    total, frac = fmt
    out = out or fmt
    gamma_frac = frac if gamma_frac is None else gamma_frac
    beta_frac = frac if beta_frac is None else beta_frac
    n = codes.shape[-1]
    precision = frac + out[1]  # fractional bits of y; kept so that c << (F + G) stays inside int64
    precision = min(precision, 62 - NORM_GUARD_BITS - total - max(1, math.ceil(math.log2(n + 1))) - 1)
    centred = n * codes - codes.sum(dim=-1, keepdim=True)  # units of 2^-frac / n
    eps_codes = round(eps * n * n * 2.0 ** (2 * frac))
    variance = torch.div((centred * centred).sum(dim=-1, keepdim=True), n, rounding_mode="floor") + eps_codes
    root = integer_sqrt(variance << (2 * NORM_GUARD_BITS))  # σ·n in units of 2^-(frac+G)
    normalised = divide_rounded(centred << (precision + NORM_GUARD_BITS), root)  # y in units of 2^-F
    units = max(precision + gamma_frac, beta_frac)
    affine = (normalised * gamma << (units - precision - gamma_frac)) + (beta << (units - beta_frac))
    return requantize(affine, (64, units), out, rounding, overflow, generator)


def l2_normalize(codes: torch.Tensor, fmt: Format) -> torch.Tensor:
    """Rows divided by their L2 norm: ``round(c · 2^frac / ||c||)`` with ``||c||`` an integer square root carrying
    NORM_GUARD_BITS extra bits; a zero row stays zero."""
    frac = fmt[1]
    root = integer_sqrt((codes * codes).sum(dim=-1, keepdim=True) << (2 * NORM_GUARD_BITS))  # units of 2^-(frac+G)
    return fit(divide_rounded(codes << (frac + NORM_GUARD_BITS), root.clamp(min=1)), fmt[0], "saturate")


def head_scale(
    codes: torch.Tensor,
    m: torch.Tensor,
    length: int,
    fmt: Format,
    rounding: str,
    overflow: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``codes / max(1, length^sigmoid(m))`` per head (dim 1): the factor quantized to ``(total, total − 2)``,
    the exact product requantised to ``fmt``."""
    total = fmt[0]
    factor_format = (total, total - 2)
    factor = 1.0 / torch.clamp(float(max(length, 1)) ** torch.sigmoid(m.detach().to(torch.float64)), min=1.0)
    factor_codes = quantize(factor, factor_format, "nearest-even", "saturate")
    shape = (1, -1) + (1,) * (codes.dim() - 2)
    product = codes * factor_codes.reshape(shape)
    return requantize(product, (64, fmt[1] + factor_format[1]), fmt, rounding, overflow, generator)


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


LUT_FUNCTIONS = {"gelu": _gelu, "relu": torch.relu}


def lut_table(function: str, fmt: Format, out: Format | None = None) -> tuple[torch.Tensor, int]:
    """The table of ``function`` over the codes of ``fmt`` (indexed by ``code >> drop``), its entries codes of
    ``out`` (default ``fmt``), and ``drop``."""
    total, frac = fmt
    drop = max(0, total - TABLE_BITS)
    low, high = code_range(total - drop)
    inputs = torch.arange(low, high + 1, dtype=torch.int64) << drop
    values = LUT_FUNCTIONS[function](dequantize(inputs, fmt, torch.float64))
    return quantize(values, out or fmt, "nearest-even", "saturate"), drop


def lut(codes: torch.Tensor, function: str, fmt: Format, out: Format | None = None) -> torch.Tensor:
    """``function`` of codes of ``fmt`` by table, into codes of ``out`` (default ``fmt``)."""
    table, drop = lut_table(function, fmt, out)
    low = code_range(fmt[0] - drop)[0]
    return table[(codes >> drop) - low]


# -- the element-wise units of the training step (backward and update) ------------------------------------------


def add(
    lhs: torch.Tensor, lhs_frac: int, rhs: torch.Tensor, rhs_frac: int, out: Format, rounding: str, overflow: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``a + b`` (broadcast): aligned to the finer format (exact), summed, requantised to ``out``."""
    frac = max(lhs_frac, rhs_frac)
    exact = (lhs << (frac - lhs_frac)) + (rhs << (frac - rhs_frac))
    return requantize(exact, (64, frac), out, rounding, overflow, generator)


def multiply(
    lhs: torch.Tensor, lhs_frac: int, rhs: torch.Tensor, rhs_frac: int, out: Format, rounding: str, overflow: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``a · b`` (broadcast): the exact product (``lhs_frac + rhs_frac`` fractional bits), requantised to ``out``."""
    return requantize(lhs * rhs, (64, lhs_frac + rhs_frac), out, rounding, overflow, generator)


def reduce_sum(
    codes: torch.Tensor, frac: int, dims: list[int], keepdim: bool, out: Format, rounding: str, overflow: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The exact sum over ``dims``, requantised to ``out``."""
    return requantize(codes.sum(dim=dims, keepdim=keepdim), (64, frac), out, rounding, overflow, generator)


def softmax_backward(
    probs: torch.Tensor, probs_frac: int, grads: torch.Tensor, grad_frac: int, out: Format, rounding: str, overflow: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``y · (dy − Σ dy·y)`` over the last dim: ``Σ dy·y`` exact (``py + pg`` fractional bits), ``dy`` aligned to
    it, the product exact (``2·py + pg``), one requantisation to ``out``."""
    row = (grads * probs).sum(dim=-1, keepdim=True)
    centred = (grads << probs_frac) - row
    return requantize(probs * centred, (64, 2 * probs_frac + grad_frac), out, rounding, overflow, generator)


def _gelu_derivative(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))) + x * torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _relu_derivative(x: torch.Tensor) -> torch.Tensor:
    return (x > 0).to(x.dtype)


DERIVATIVES = {"gelu": _gelu_derivative, "relu": _relu_derivative}


def derivative_table(function: str, fmt: Format) -> tuple[torch.Tensor, int, Format]:
    """The table of ``function``'s derivative over the codes of ``fmt`` (indexed as ``lut_table``), its ``drop``
    and the entries' format ``(total, total − 2)``: GELU' lies in [−0.17, 1.13], ReLU' in {0, 1}."""
    total, _ = fmt
    entry = (total, total - 2)
    drop = max(0, total - TABLE_BITS)
    low, high = code_range(total - drop)
    inputs = torch.arange(low, high + 1, dtype=torch.int64) << drop
    values = DERIVATIVES[function](dequantize(inputs, fmt, torch.float64))
    return quantize(values, entry, "nearest-even", "saturate"), drop, entry


def activation_backward(
    codes: torch.Tensor, fmt: Format, grads: torch.Tensor, grad_frac: int, function: str, out: Format, rounding: str,
    overflow: str, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``f'(x) · dy``: the derivative from its table, the product exact, one requantisation to ``out``."""
    table, drop, entry = derivative_table(function, fmt)
    low = code_range(fmt[0] - drop)[0]
    derivative = table[(codes >> drop) - low]
    return requantize(derivative * grads, (64, entry[1] + grad_frac), out, rounding, overflow, generator)


CROSS_ENTROPY_GUARD_BITS = 8  # fractional bits of the probabilities beyond the gradient's


def cross_entropy_backward(
    logits: torch.Tensor, fmt: Format, labels: torch.Tensor, scale: int, divisor: int, out: Format, rounding: str,
    overflow: str, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(softmax(logits) − onehot) · scale / divisor``: probabilities by the softmax unit (scale 1) with
    CROSS_ENTROPY_GUARD_BITS more fractional bits than ``out``, the one-hot subtracted exactly, the exact
    product by ``scale``, a rounded division by ``divisor`` (half up), then ``out`` with the rounding and
    overflow modes."""
    frac = out[1] + CROSS_ENTROPY_GUARD_BITS
    probs = softmax(logits, fmt, 1.0, False, out=(64, frac))
    onehot = torch.nn.functional.one_hot(labels.to(torch.int64), logits.shape[-1]).to(torch.int64) << frac
    mean = divide_rounded((probs - onehot) * scale, torch.tensor(divisor, dtype=torch.int64))
    return requantize(mean, (64, frac), out, rounding, overflow, generator)


def layer_norm_backward(
    codes: torch.Tensor, fmt: Format, grads: torch.Tensor, grad_frac: int, gamma: torch.Tensor, gamma_frac: int, eps: float,
    out: Format, rounding: str, overflow: str, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The input gradient of ``layer_norm`` over the last dim, ``dx = (n·g − Σg − x̂·Σ(g·x̂)) / (n·σ)``, ``g = dy·γ``.

    ``n·σ`` as the forward computes it (exact centring and variance, integer square root with NORM_GUARD_BITS);
    ``x̂`` rounded (half up) and ``g`` rounded with ``rounding`` to ``out``'s fractional bits ``f``; the bracket
    exact in units of ``2^-3f``; one rounded division by ``n·σ``, a shift to ``f`` with ``rounding``, then the
    width of ``out`` with ``overflow``."""
    frac, n, guard = fmt[1], codes.shape[-1], NORM_GUARD_BITS
    f = out[1]
    centred = n * codes - codes.sum(dim=-1, keepdim=True)
    eps_codes = round(eps * n * n * 2.0 ** (2 * frac))
    variance = torch.div((centred * centred).sum(dim=-1, keepdim=True), n, rounding_mode="floor") + eps_codes
    root = integer_sqrt(variance << (2 * guard))  # n·σ in units of 2^-(frac+G)
    xhat = divide_rounded(centred << (f + guard), root)  # x̂ in units of 2^-f
    g = shift_right(grads * gamma, grad_frac + gamma_frac - f, rounding, generator)  # units of 2^-f
    bracket = ((n * g - g.sum(dim=-1, keepdim=True)) << (2 * f)) - xhat * (g * xhat).sum(dim=-1, keepdim=True)
    shift = frac + guard - 2 * f  # dx·2^f = bracket·2^(frac+G−2f) / root
    if shift >= 0:
        quotient = divide_rounded(bracket << shift, root)
    else:
        quotient = shift_right(divide_rounded(bracket, root), -shift, rounding, generator)
    return fit(quotient, out[0], overflow)


def embedding_backward(
    grads: torch.Tensor, frac: int, indices: torch.Tensor, rows: int, out: Format, rounding: str, overflow: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The table gradient: ``grads`` rows summed exactly into the rows ``indices`` name, requantised to ``out``."""
    width = grads.shape[-1]
    rows_of = indices.reshape(-1).to(torch.int64)
    table = torch.zeros(rows, width, dtype=torch.int64).index_add(0, rows_of, grads.reshape(-1, width))
    return requantize(table, (64, frac), out, rounding, overflow, generator)


def l2_normalize_backward(
    codes: torch.Tensor, fmt: Format, grads: torch.Tensor, grad_frac: int, out: Format, rounding: str, overflow: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The input gradient of ``l2_normalize`` over the last dim, ``dx = (dn − n·Σ(n·dn)) / ‖x‖``.

    ``‖x‖`` as the forward computes it (exact sum of squares, integer square root with NORM_GUARD_BITS); ``n``
    rounded half up and ``dn`` rounded with ``rounding`` to ``out``'s fractional bits ``f``; the bracket exact in
    units of ``2^-3f``; one division by ``‖x‖`` rounded half up to ``f + NORM_GUARD_BITS`` fractional bits, then
    ``out`` with ``rounding`` and ``overflow``. A zero row has a zero gradient."""
    frac, guard, f = fmt[1], NORM_GUARD_BITS, out[1]
    root = integer_sqrt((codes * codes).sum(dim=-1, keepdim=True) << (2 * guard))  # ‖x‖ in units of 2^-(frac+G)
    safe = root.clamp(min=1)
    unit = divide_rounded(codes << (f + guard), safe)  # n in units of 2^-f
    g = shift_right(grads, grad_frac - f, rounding, generator)  # dn in units of 2^-f
    bracket = (g << (2 * f)) - unit * (unit * g).sum(dim=-1, keepdim=True)  # units of 2^-3f
    exponent = frac + 2 * guard - 2 * f  # dx·2^(f+G) = bracket·2^exponent / root
    quotient = divide_rounded(bracket << max(exponent, 0), safe << max(-exponent, 0))
    quotient = torch.where(root > 0, quotient, torch.zeros_like(quotient))
    return requantize(quotient, (64, f + guard), out, rounding, overflow, generator)


HEAD_SUM_BITS = 44  # the per-head sum of head_scale_backward before its product by the factor (44 + 20 bits < 64)


def head_scale_factor_format(total: int) -> Format:
    """The format of ``head_scale_backward``'s factor ``−ln L · s(1 − s)``: ``total`` fractional bits and 4 integer
    bits (|factor| ≤ ln(L)/4 < 8 for L < e^32)."""
    return total + 4, total


def head_scale_backward(
    lhs: torch.Tensor, lhs_frac: int, rhs: torch.Tensor, rhs_frac: int, m: torch.Tensor, length: int, out: Format,
    rounding: str, overflow: str, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The gradient of ``m`` through ``head_scale``, per head (dim 1): ``−ln(max(1, L)) · s(1 − s) · Σ a·b`` with
    s = sigmoid(m), the sum over every other dim. Σ a·b exact, requantised to ``(HEAD_SUM_BITS, out frac +
    NORM_GUARD_BITS)``; the factor quantized to ``head_scale_factor_format`` (nearest even, saturated); their exact
    product requantised to ``out``; both requantisations with ``rounding`` and ``overflow``."""
    factor_format = head_scale_factor_format(out[0])
    s = torch.sigmoid(m.detach().to(torch.float64))
    factor = -math.log(max(length, 1)) * s * (1.0 - s)
    factor_codes = quantize(factor, factor_format, "nearest-even", "saturate")
    dims = [d for d in range(lhs.dim()) if d != 1]
    inner: Format = (HEAD_SUM_BITS, out[1] + NORM_GUARD_BITS)
    total = requantize((lhs * rhs).sum(dim=dims), (64, lhs_frac + rhs_frac), inner, rounding, overflow, generator)
    return requantize(total * factor_codes, (64, inner[1] + factor_format[1]), out, rounding, overflow, generator)
