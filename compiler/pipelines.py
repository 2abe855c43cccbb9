"""Named pipelines: short names for the pass-pipeline strings users type most often."""

from __future__ import annotations

NAMED_PIPELINES: dict[str, str] = {
    "none": "",
    "raise": "attn-raise",
}


def resolve_pipeline(pipeline: str | None) -> str:
    """A pass-pipeline string for either a pipeline name or a pipeline string given verbatim."""
    if pipeline is None:
        return ""
    return NAMED_PIPELINES.get(pipeline.strip(), pipeline.strip())
