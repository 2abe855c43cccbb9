"""Property tests: bad input is a clean error, and ``attn-raise`` never changes what a program computes.

* mutated ``model.mlir`` files (tokens deleted, duplicated or swapped, truncation, flipped bytes) through
  ``attnc run`` and ``attnc-opt``;
* random option values for every registered pass (new passes are covered without touching this file);
* random small attention graphs written in the ways real models write them: ``attn-raise`` either leaves
  them alone or keeps their outputs within 1e-5 of PyTorch.

The CLI is driven in-process (``main(argv)``), so hundreds of cases cost seconds. Profiles: ``ci`` (the
default, sized for ``make test``) and ``fuzz`` (``make fuzz``: ``HYPOTHESIS_PROFILE=fuzz``); both
derandomised, so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.api import ModelSpec, compile_model
from compiler.artifacts import write_manifest
from compiler.cli import main as attnc_cli
from compiler.cli import opt as opt_cli
from compiler.registry import PASSES

for profile in ("ci", "fuzz"):  # example counts are set per test (``examples``); both reproducible
    settings.register_profile(
        profile,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


def examples(ci: int, fuzz: int):
    """Per-test example count: ``ci`` in ``make test``, ``fuzz`` under ``make fuzz``."""
    return settings(max_examples=fuzz if FUZZ else ci)


def run_cli(main, argv: list[str]) -> tuple[int, str]:
    """Runs a CLI entry point in-process; returns (exit code, stderr). An exception escaping is a failure."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse and xdsl-opt exit this way
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code or 0, err.getvalue()


def assert_clean(code: int, stderr: str, tool: str) -> None:
    """Success, or exactly one ``<tool>: error:`` line; never a traceback."""
    assert "Traceback" not in stderr, stderr
    if code == 0:
        return
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("remark:")]
    assert len(lines) == 1 and lines[0].startswith(f"{tool}: error:"), stderr[-3000:]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A real compiled artifact (``mha-sdpa`` through ``attn-raise``): model.mlir, weights, inputs."""
    outdir = tmp_path_factory.mktemp("fuzz") / "model"
    compile_model("mha-sdpa", "attn-raise").save(outdir)
    return outdir


# ---------------------------------------------------------------------------------------------------------
# 1. Mutated model.mlir through `attnc run` and `attnc-opt`
# ---------------------------------------------------------------------------------------------------------

TOKEN = re.compile(rb"\s+|[A-Za-z_][\w.$]*|-?\d+(?:\.\d+)?(?:e[-+]?\d+)?|%[\w.$]+|@[\w.$\"]+|.", re.S)


@st.composite
def mutations(draw, text: bytes) -> bytes:
    """One to three token- or byte-level edits of ``text``."""
    tokens = TOKEN.findall(text)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "flip", "replace"]))
        i = draw(st.integers(0, len(tokens) - 1))
        if kind == "delete":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == "replace":
            tokens[i] = draw(
                st.sampled_from([b"0", b"-1", b"99999999999", b"1.5", b"f16", b"i1", b"?", b"{", b"}", b")", b"<", b"%x"])
            )
        elif kind == "truncate":
            tokens = tokens[:i]
        else:
            blob = bytearray(b"".join(tokens))
            if blob:
                position = draw(st.integers(0, len(blob) - 1))
                blob[position] ^= 1 << draw(st.integers(0, 7))
            tokens = TOKEN.findall(bytes(blob))
        if not tokens:
            break
    return b"".join(tokens)


@examples(ci=300, fuzz=5000)
@given(data=st.data())
def test_mutated_model_mlir_is_a_clean_error_or_runs(saved_model, tmp_path_factory, data):
    text = (saved_model / "model.mlir").read_bytes()
    mutated = data.draw(mutations(text))
    outdir = tmp_path_factory.mktemp("mutant")
    for file in saved_model.iterdir():
        shutil.copy(file, outdir / file.name)
    (outdir / "model.mlir").write_bytes(mutated)
    reseal(outdir)
    assert_clean(*run_cli(attnc_cli.main, ["run", str(outdir)]), "attnc")
    assert_clean(*run_cli(opt_cli.main, [str(outdir / "model.mlir"), "-p", "attn-raise"]), "attnc-opt")


def reseal(outdir: Path) -> None:
    """Lets a hand-edited artifact past its integrity check, so the fuzzer reaches the parser."""
    write_manifest(outdir)


# ---------------------------------------------------------------------------------------------------------
# 2. Random option values for every registered pass
# ---------------------------------------------------------------------------------------------------------

OPTION_VALUES = st.one_of(
    st.sampled_from(
        ["0", "1", "-1", "2", "64", "0.0", "-0.5", "1e309", "-1e309", "nan", "inf", "1e-300", "99999999999999999999",
         "banana", "true", "false", "''", '"x"', "(", ".*", "[a-", "*", "fast", "exact", "dynamic", "max"]
    ),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="abcxyz019.-_*()[]", min_size=1, max_size=6),
)


def pass_options(name: str) -> list[str]:
    """The kebab-case option names of a registered pass, read from its dataclass fields."""
    return [field.name.replace("_", "-") for field in dataclasses.fields(PASSES[name]())]


@st.composite
def pipelines(draw) -> str:
    name = draw(st.sampled_from(sorted(PASSES)))
    options = pass_options(name) + ["no-such-option"]
    chosen = draw(st.lists(st.sampled_from(options), max_size=3))  # repeats test duplicated options
    args = " ".join(f"{option}={draw(OPTION_VALUES)}" for option in chosen)
    prefix = "attn-raise," if name != "attn-raise" and draw(st.booleans()) else ""
    return f"{prefix}{name}{{{args}}}" if args else f"{prefix}{name}"


@examples(ci=250, fuzz=5000)
@given(pipeline=pipelines())
def test_random_pass_options_are_a_clean_error_or_apply(saved_model, pipeline):
    assert_clean(*run_cli(opt_cli.main, [str(saved_model / "model.mlir"), "-p", pipeline]), "attnc-opt")


# ---------------------------------------------------------------------------------------------------------
# 3. Random attention graphs through attn-raise
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AttentionForm:
    """How one attention is written: the knobs real models turn."""

    batch: int
    heads: int
    kv_heads: int
    q_len: int
    k_len: int
    head_dim: int
    fused: bool  # F.scaled_dot_product_attention vs eager matmul/softmax/matmul
    scale: str  # default | explicit | mul-scores | div-scores | mul-q
    mask: str  # none | additive | additive-4d | bool-masked-fill | bool-where | causal-triu | is-causal
    key_transpose: str  # transpose-last | transpose-2-3 | permute
    softmax_dim: int  # -1 or 3
    dropout: bool
    gqa: str  # expand-reshape | repeat-interleave-free (kv_heads == heads)


@st.composite
def attention_forms(draw) -> AttentionForm:
    heads = draw(st.sampled_from([1, 2, 4]))
    kv_heads = draw(st.sampled_from([h for h in (1, 2, 4) if heads % h == 0]))
    q_len = draw(st.integers(1, 6))
    fused = draw(st.booleans())
    masks = ["none", "additive", "additive-4d", "bool-masked-fill", "bool-where", "causal-triu"]
    return AttentionForm(
        batch=draw(st.integers(1, 2)),
        heads=heads,
        kv_heads=kv_heads,
        q_len=q_len,
        k_len=draw(st.sampled_from([q_len, draw(st.integers(1, 6))])),
        head_dim=draw(st.sampled_from([1, 2, 4, 8])),
        fused=fused,
        scale=draw(st.sampled_from(["default", "explicit"] if fused else ["default", "mul-scores", "div-scores", "mul-q"])),
        mask=draw(st.sampled_from(masks + (["is-causal"] if fused else []))),
        key_transpose=draw(st.sampled_from(["transpose-last", "transpose-2-3", "permute"])),
        softmax_dim=draw(st.sampled_from([-1, 3])),
        dropout=draw(st.booleans()),
        gqa="expand-reshape" if kv_heads != heads else "none",
    )


class RandomAttention(torch.nn.Module):
    """One attention over inputs q (b, h, Lq, d), k and v (b, kv, Lk, d), written as ``form`` says."""

    def __init__(self, form: AttentionForm, generator: torch.Generator):
        super().__init__()
        self.form = form
        shape = (form.q_len, form.k_len)
        keep = torch.rand(shape, generator=generator) > 0.3
        keep[:, 0] = True  # no row fully masked: softmax of an empty row is NaN in PyTorch
        self.register_buffer("keep", keep)
        self.register_buffer("bias", torch.randn(shape, generator=generator))
        self.register_buffer("bias4d", torch.randn(form.batch, 1, *shape, generator=generator))
        self.register_buffer("causal", torch.ones(shape, dtype=torch.bool).triu(1))
        self.dropout = torch.nn.Dropout(0.1)

    def repeat_kv(self, x: torch.Tensor) -> torch.Tensor:
        form = self.form
        if form.kv_heads == form.heads:
            return x
        b, kv, length, d = x.shape
        group = form.heads // kv
        return x[:, :, None].expand(b, kv, group, length, d).reshape(b, kv * group, length, d)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        form = self.form
        k, v = self.repeat_kv(k), self.repeat_kv(v)
        scale = form.head_dim**-0.5
        if form.fused:
            mask = {
                "none": None,
                "additive": self.bias,
                "additive-4d": self.bias4d,
                "bool-masked-fill": self.keep,
                "bool-where": self.keep,
                "causal-triu": ~self.causal,
                "is-causal": None,
            }[form.mask]
            return F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=form.mask == "is-causal",
                scale=0.37 if form.scale == "explicit" else None,
            )
        if form.scale == "mul-q":
            q = q * scale
        key_t = {
            "transpose-last": lambda t: t.transpose(-2, -1),
            "transpose-2-3": lambda t: t.transpose(2, 3),
            "permute": lambda t: t.permute(0, 1, 3, 2),
        }[form.key_transpose](k)
        scores = torch.matmul(q, key_t)
        if form.scale == "mul-scores" or form.scale == "default":
            scores = scores * scale
        elif form.scale == "div-scores":
            scores = scores / (form.head_dim**0.5)
        if form.mask == "additive":
            scores = scores + self.bias
        elif form.mask == "additive-4d":
            scores = scores + self.bias4d
        elif form.mask == "bool-masked-fill":
            scores = scores.masked_fill(~self.keep, float("-inf"))
        elif form.mask == "bool-where":
            scores = torch.where(self.keep, scores, torch.finfo(scores.dtype).min)
        elif form.mask == "causal-triu":
            scores = scores.masked_fill(self.causal, float("-inf"))
        probs = torch.softmax(scores, dim=form.softmax_dim)
        if form.dropout:
            probs = self.dropout(probs)
        return torch.matmul(probs, v)


RAISED = {"raised": 0, "left alone": 0}


@examples(ci=60, fuzz=1000)
@given(form=attention_forms(), seed=st.integers(0, 2**16))
def test_attn_raise_preserves_random_attention(form, seed):
    generator = torch.Generator().manual_seed(seed)
    model = RandomAttention(form, generator).eval()
    q = torch.randn(form.batch, form.heads, form.q_len, form.head_dim, generator=generator)
    k = torch.randn(form.batch, form.kv_heads, form.k_len, form.head_dim, generator=generator)
    v = torch.randn(form.batch, form.kv_heads, form.k_len, form.head_dim, generator=generator)
    with torch.no_grad():
        expected = model(q, k, v)
    compiled = compile_model(ModelSpec("random-attention", model, (q, k, v)), "attn-raise")
    raised = sum(op.name == "attn.sdpa" for op in compiled.module.walk())
    RAISED["raised" if raised else "left alone"] += 1
    (out,) = compiled.run()
    assert out.shape == expected.shape
    error = (out.double() - expected.double()).abs().max().item()
    assert error <= 1e-5, f"{form}: attn-raise changed the output by {error:.3e} (raised {raised})"
