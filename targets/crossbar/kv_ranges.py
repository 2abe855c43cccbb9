"""Range policies for the crossbar's dynamic K/V writes, and the domain ClipFormer acts in.

ClipFormer's thresholds are fractions of a mapping range; the paper does not say how that range is set.
:class:`KvRangeFunctions` is the crossbar simulator (:class:`XbarFunctions`) with the range of every
``xbar.write`` chosen by a policy:

* ``matrix``: each written matrix's own max|x| (one per batch item and head): the simulator's default;
* ``global``: one fixed range per write site (layer, K or V), a percentile of |x| over calibration inputs;
* ``head``: one fixed range per write site and head, a percentile of that head's |x| over calibration inputs;
* ``token``: each token's own max|x| (a row of K, a column of Vᵀ). The scales are applied digitally:
  Q·Kᵀ's output column of token t is multiplied by its scale, and P's input column t before P·V.

Fixed ranges saturate: a value beyond its range is written at the top level. ``domain`` says where the
``clip`` of an ``xbar.write`` acts: ``conductance`` (ClipFormer: the clipped matrix keeps the unclipped
range, so its cells sit low in the conductance window, where the absolute write noise is small) or ``value``
(the values are clipped and the clipped range is mapped onto the full window, as a digital clip before an
ordinary write would do: the cells span the whole window again).

Calibration: run the lowered program on calibration inputs with ``record=True`` and pass
:func:`calibrated_ranges` of the recorded samples as ``ranges``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from xdsl.interpreter import Interpreter, impl, register_impls

from dialects import xbar
from runtime.clip_kernels import clip_normalised_magnitude, clip_thresholds, matrix_max
from targets.crossbar.device import ClipFormer, CrossbarConfig, CrossbarTiles, mvm, write
from targets.crossbar.simulator import XbarFunctions, adc_full_scale

RANGE_POLICIES = xbar.KV_RANGES
CLIP_DOMAINS = xbar.CLIP_DOMAINS
CALIBRATED = xbar.CALIBRATED_KV_RANGES
_TINY = 1e-30
_SAMPLES_PER_WRITE = 4096  # values kept per head and calibration run (enough for a 99.9th percentile)


class TokenScaled(NamedTuple):
    """A matrix written with one range per token; ``scale`` multiplies Q·Kᵀ's outputs or P·V's inputs."""

    tiles: CrossbarTiles
    scale: torch.Tensor
    on_input: bool


@dataclass(frozen=True)
class KvPolicy:
    """How K and V are ranged (``range``, one of RANGE_POLICIES) and where clipping acts (``domain``)."""

    range: str = "matrix"
    domain: str = "conductance"
    ranges: dict[str, torch.Tensor] = field(default_factory=dict)  # write site -> range per head (calibrated policies)

    def __post_init__(self) -> None:
        if self.range not in RANGE_POLICIES:
            raise ValueError(f"range policy must be one of {', '.join(RANGE_POLICIES)}, got '{self.range}'")
        if self.domain not in CLIP_DOMAINS:
            raise ValueError(f"clip domain must be one of {', '.join(CLIP_DOMAINS)}, got '{self.domain}'")


def calibrated_ranges(samples: dict[str, list[torch.Tensor]], policy: str, percentile: float) -> dict[str, torch.Tensor]:
    """Per write site, the ``percentile`` of recorded |x|: one value for all heads (``global``) or one per head."""
    if policy not in CALIBRATED:
        raise ValueError(f"only {', '.join(CALIBRATED)} ranges are calibrated, not '{policy}'")
    ranges = {}
    for site, parts in samples.items():
        per_head = torch.cat(parts, dim=-1)  # (H, samples)
        q = percentile / 100.0
        if policy == "global":
            value = torch.quantile(per_head.flatten(), q)
            ranges[site] = value.expand(per_head.shape[0]).clone()
        else:
            ranges[site] = torch.quantile(per_head, q, dim=-1)
    return ranges


@register_impls
class KvRangeFunctions(XbarFunctions):
    """The crossbar simulator with K/V ranges set by a :class:`KvPolicy` (``record``: also keep samples of
    each write site's |x| per head, for :func:`calibrated_ranges`)."""

    def __init__(self, config: CrossbarConfig, seed: int = 0, policy: KvPolicy | None = None, record: bool = False):
        super().__init__(config, seed)
        self.policy = policy or KvPolicy()
        self.record = record
        self.samples: dict[str, list[torch.Tensor]] = {}
        self._sampler = torch.Generator().manual_seed(seed)
        self._sites: dict[xbar.WriteOp, str] = {}

    def write_site(self, op: xbar.WriteOp) -> str:
        """A write's name: its place among the program's writes in execution order and its result's name
        (``write3_matmul_v_tiles``), the same in every lowering of one model."""
        if op not in self._sites:
            self._sites[op] = f"write{len(self._sites)}_{op.results[0].name_hint or 'tiles'}"
        return self._sites[op]

    def policy_for(self, op: xbar.WriteOp, site: str) -> KvPolicy:
        """The policy of one write: the op's own (``lower-to-xbar{kv-range=... clip-domain=...}``, with its
        calibrated ``kv_scale``) where it carries one, else this instance's."""
        if op.kv_range is None and op.clip_domain is None:
            return self.policy
        ranges = self.policy.ranges
        if op.kv_scale is not None:
            ranges = {site: torch.tensor(op.kv_scale.get_values(), dtype=torch.float32)}
        domain = op.clip_domain.data if op.clip_domain is not None else "conductance"
        return KvPolicy(op.range_policy, domain, ranges)

    def _keep_sample(self, site: str, matrix: torch.Tensor) -> None:
        per_head = matrix.abs().movedim(-3, 0).reshape(matrix.shape[-3], -1)  # (H, values)
        picks = torch.randint(0, per_head.shape[1], (_SAMPLES_PER_WRITE,), generator=self._sampler)
        self.samples.setdefault(site, []).append(per_head[:, picks])

    @impl(xbar.WriteOp)
    def run_write(self, interpreter: Interpreter, op: xbar.WriteOp, args):
        matrix = args[0].detach()
        site = self.write_site(op)
        if self.record:
            self._keep_sample(site, matrix)
        policy = self.policy_for(op, site)
        if policy.range == "matrix" and (op.clip is None or policy.domain == "conductance"):
            return super().run_write(interpreter, op, args).values  # the base impl is wrapped by @impl
        cfg = self.config_for(op.result.type)
        token_scale = None
        if policy.range == "matrix":
            scale = matrix_max(matrix)
        elif policy.range == "token":
            on_input = site.endswith("_v_tiles")  # Vᵀ (d, L): tokens are inputs; K (L, d): tokens are outputs
            token_scale = matrix.abs().amax(dim=-2 if on_input else -1, keepdim=True).clamp(min=_TINY)
            matrix = matrix / token_scale
            scale = torch.ones_like(matrix_max(matrix))
        else:
            if site not in policy.ranges:
                raise ValueError(f"no calibrated range for write site '{site}' (calibrate on this program first)")
            scale = policy.ranges[site].to(matrix.dtype).view(-1, 1, 1).clamp(min=_TINY)
        clip = None if op.clip is None else ClipFormer(*op.clip)
        if clip is not None and policy.domain == "value":
            magnitude = (matrix.abs() / scale).clamp(max=1.0)
            clipped = clip_normalised_magnitude(magnitude, clip.alpha, clip.beta, cfg.g_min, cfg.g_max)
            matrix = torch.sign(matrix) * clipped * scale
            _, ceiling = clip_thresholds(clip.alpha, clip.beta, cfg.g_min, cfg.g_max)
            scale = scale * ceiling  # the clipped range fills the conductance window
            clip = None
        tiles = write(matrix, cfg, self.inference_generator, clip=clip, stuck_map=self._stuck_map(op, args[0], cfg), scale=scale,
                      adc_full_scale=adc_full_scale(op))
        if token_scale is None:
            return (tiles,)
        on_input = site.endswith("_v_tiles")
        return (TokenScaled(tiles, token_scale if on_input else token_scale.transpose(-1, -2), on_input),)

    def _stuck_map(self, op: xbar.WriteOp, matrix: torch.Tensor, cfg: CrossbarConfig) -> Any:
        if cfg.stuck_at_rate <= 0:
            return None
        raise ValueError("range policies other than 'matrix' do not model stuck-at cells")

    @impl(xbar.MvmOp)
    def run_mvm(self, interpreter: Interpreter, op: xbar.MvmOp, args):
        state, x = args
        if not isinstance(state, TokenScaled):
            return super().run_mvm(interpreter, op, args).values
        if state.on_input:
            return (mvm(state.tiles, x * state.scale, self.inference_generator).to(x.dtype),)
        return ((mvm(state.tiles, x, self.inference_generator) * state.scale).to(x.dtype),)
