"""Named pipelines: short names for the pass-pipeline strings users type most often."""

from __future__ import annotations

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
