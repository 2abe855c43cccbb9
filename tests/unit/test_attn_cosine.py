"""attn-cosine through the executor: padding is honoured exactly, causal forms agree, causality holds."""

from __future__ import annotations

import torch

from compiler.api import apply_passes, parse_pipeline
from compiler.frontend.fx_importer import import_exported_program
from compiler.models import minilm_tokenize
from runtime.cosine_kernels import cosine_attention_reference
from runtime.executor import Executor


def compiled(exported, name: str, pipeline: str):
    spec, program, _ = exported(name)
    imported = import_exported_program(program)
    apply_passes(imported.module, parse_pipeline(pipeline))
    return spec, imported


def test_minilm_cosine_embedding_of_a_sentence_does_not_depend_on_padding(exported):
    spec, imported = compiled(exported, "minilm", "attn-raise,attn-cosine")
    assert sum(op.name == "attn.cosine" for op in imported.module.walk()) == 6
    run = Executor(imported.module, imported.weights)
    with torch.no_grad():
        _, batch_embeddings = run(*spec.inputs)
    ids, mask = spec.inputs
    lengths = mask.sum(dim=1)
    shortest = int(lengths.argmin())
    # the shortest sentence, padded differently: its real tokens followed by a different amount of padding
    alone_ids = torch.zeros_like(ids)
    alone_mask = torch.zeros_like(mask)
    n = int(lengths[shortest])
    alone_ids[:, :n] = ids[shortest, :n]
    alone_mask[:, :n] = 1
    alone_ids[:, n:] = 7  # arbitrary token ids under the padding: must not matter
    with torch.no_grad():
        _, alone_embeddings = run(alone_ids, alone_mask)
    assert torch.allclose(alone_embeddings[0], batch_embeddings[shortest], atol=1e-5)


def test_cosine_rewrite_changes_minilm_outputs_and_m_starts_at_one_half(exported):
    spec, imported = compiled(exported, "minilm", "attn-raise,attn-cosine")
    run = Executor(imported.module, imported.weights)
    m_names = [k for k in run.weights if k.endswith("cosine_m")]
    assert len(m_names) == 6 and all(torch.all(run.weights[k] == 0.5) for k in m_names)
    _, _, reference = exported("minilm")
    with torch.no_grad():
        _, embeddings = run(*spec.inputs)
    cosine = torch.nn.functional.cosine_similarity(embeddings, reference[1], dim=-1)
    assert cosine.max() < 0.9999  # without recovery the rewrite is not the softmax model


def test_causal_chunked_and_recurrent_forms_agree_on_gpt2(exported):
    spec, chunked = compiled(exported, "gpt2-tiny", "attn-raise,attn-cosine{causal=true}")
    _, recurrent = compiled(exported, "gpt2-tiny", "attn-raise,attn-cosine{causal=true causal-form=recurrent}")
    with torch.no_grad():
        (a,) = Executor(chunked.module, chunked.weights)(*spec.inputs)
        (b,) = Executor(recurrent.module, recurrent.weights)(*spec.inputs)
    assert (a - b).abs().max() <= 1e-5


def test_causal_cosine_model_ignores_future_tokens(exported):
    spec, imported = compiled(exported, "gpt2-tiny", "attn-raise,attn-cosine{causal=true}")
    run = Executor(imported.module, imported.weights)
    (ids,) = spec.inputs
    changed = ids.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 256
    with torch.no_grad():
        (before,) = run(ids)
        (after,) = run(changed)
    assert torch.allclose(before[:, :8], after[:, :8], atol=1e-6)
    assert not torch.allclose(before[:, 8:], after[:, 8:], atol=1e-3)


def test_cosine_op_matches_the_reference_formula():
    """One attention, raised and rewritten, against the naive O(T²) Cottention formula with padding."""

    class Attention(torch.nn.Module):
        def forward(self, q, k, v, keep):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=gen) for _ in range(3))
    valid = torch.ones(2, 7, dtype=torch.bool)
    valid[1, 5:] = False
    keep = valid[:, None, None, :].expand(2, 1, 7, 7).contiguous()
    program = torch.export.export(Attention(), (q, k, v, keep)).run_decompositions({})
    imported = import_exported_program(program)
    apply_passes(imported.module, parse_pipeline("attn-raise,attn-cosine"))
    run = Executor(imported.module, imported.weights)
    (out,) = run(q, k, v, keep)
    m = torch.full((3,), 0.5)
    expected = cosine_attention_reference(q, k, v, m, causal=False, valid=valid)
    assert torch.allclose(out[0], expected[0], atol=1e-5)
    assert torch.allclose(out[1, :, :5], expected[1, :, :5], atol=1e-5)


def test_tokenizer_helper_pads_to_the_longest():
    encoded = minilm_tokenize(["short", "a somewhat longer sentence here"])
    assert encoded["input_ids"].shape == encoded["attention_mask"].shape
    assert encoded["attention_mask"][0].sum() < encoded["attention_mask"][1].sum()
