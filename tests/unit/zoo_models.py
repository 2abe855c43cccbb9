"""Tiny random-weight configurations of mainstream architectures, for the model-zoo test.

Not a test module itself (pytest collects ``test_*.py`` only). Every configuration is built from its
``transformers`` config class, offline (no hub access), with 2 layers, width 32 and 4 heads where the
architecture allows, so that exporting and importing the whole zoo stays cheap. ``ZOO`` maps a name to a
factory returning ``(model, example_inputs)``; every model returns plain tensors.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable

import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BATCH, SEQ, VOCAB = 2, 8, 96
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=VOCAB)


def _ids(seed: int = 0, length: int = SEQ) -> torch.Tensor:
    return torch.randint(3, VOCAB, (BATCH, length), generator=torch.Generator().manual_seed(seed))


def _padding_mask(length: int = SEQ) -> torch.Tensor:
    """The second sequence ends in 3 padding tokens, so the padding mask is exercised."""
    mask = torch.ones(BATCH, length, dtype=torch.int64)
    mask[1, -3:] = 0
    return mask


def _images(channels: int = 3, size: int = 16) -> torch.Tensor:
    return torch.randn(BATCH, channels, size, size, generator=torch.Generator().manual_seed(0))


class HiddenStates(nn.Module):
    """Wraps a ``transformers`` model so export sees its first output tensor (the last hidden state)."""

    def __init__(self, model: nn.Module, *input_names: str):
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        kwargs = dict(zip(self.input_names, inputs))
        if "use_cache" in inspect.signature(self.model.forward).parameters:
            kwargs["use_cache"] = False
        return self.model(**kwargs)[0]


def _hf(config_name: str, model_name: str = "AutoModel", attn: str = "eager", **config) -> nn.Module:
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    cfg = getattr(transformers, config_name)(**config)
    cfg._attn_implementation = attn
    cls = getattr(transformers, model_name)
    model = cls.from_config(cfg, attn_implementation=attn) if model_name == "AutoModel" else cls(cfg)
    return model.eval()


def encoder(config_name: str, attn: str = "eager", **config):
    """A text encoder on ``(input_ids, attention_mask)`` with padding."""

    def factory():
        model = _hf(config_name, attn=attn, **{**TINY, **config})
        return HiddenStates(model, "input_ids", "attention_mask").eval(), (_ids(), _padding_mask())

    return factory


def decoder(config_name: str, attn: str = "eager", **config):
    """A causal decoder on ``input_ids``."""

    def factory():
        model = _hf(config_name, attn=attn, **{**TINY, **config})
        return HiddenStates(model, "input_ids").eval(), (_ids(),)

    return factory


def seq2seq(config_name: str, attn: str = "eager", **config):
    """An encoder-decoder on ``(input_ids, attention_mask, decoder_input_ids)``."""

    def factory():
        model = _hf(config_name, attn=attn, **config)
        inputs = (_ids(), _padding_mask(), _ids(1, SEQ - 2))
        return HiddenStates(model, "input_ids", "attention_mask", "decoder_input_ids").eval(), inputs

    return factory


def vision(config_name: str, model_name: str = "AutoModel", attn: str = "eager", channels: int = 3, size: int = 16, **config):
    """A vision encoder on ``pixel_values``."""

    def factory():
        model = _hf(config_name, model_name, attn=attn, **config)
        return HiddenStates(model, "pixel_values").eval(), (_images(channels, size),)

    return factory


def whisper_encoder(attn: str = "eager"):
    def factory():
        model = _hf(
            "WhisperConfig", attn=attn, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=8,
            max_source_positions=8, max_target_positions=16, vocab_size=VOCAB, pad_token_id=0,
            bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
        ).get_encoder()
        features = torch.randn(BATCH, 8, 16, generator=torch.Generator().manual_seed(0))
        return HiddenStates(model, "input_features").eval(), (features,)

    return factory


class SelfAttention(nn.Module):
    """``nn.MultiheadAttention`` as self-attention, returning the attention output only."""

    def __init__(self, need_weights: bool):
        super().__init__()
        self.mha = nn.MultiheadAttention(32, 4, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=self.need_weights)[0]


def _sequence(seed: int = 0, length: int = SEQ) -> torch.Tensor:
    return torch.randn(BATCH, length, 32, generator=torch.Generator().manual_seed(seed))


def mha(need_weights: bool):
    def factory():
        torch.manual_seed(0)
        return SelfAttention(need_weights).eval(), (_sequence(),)

    return factory


def transformer_encoder():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval(), (_sequence(),)


class CausalDecoder(nn.Module):
    """``nn.TransformerDecoder`` with an explicit causal target mask (``tgt_is_causal=True``)."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerDecoderLayer(32, 4, dim_feedforward=64, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, 2)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], dtype=tgt.dtype)
        return self.decoder(tgt, memory, tgt_mask=mask, tgt_is_causal=True)


def transformer_decoder():
    torch.manual_seed(0)
    return CausalDecoder().eval(), (_sequence(0, SEQ - 2), _sequence(1))


class EinsumAttention(nn.Module):
    """Attention as research code writes it with ``einsum``, projections included."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(32, 96)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.unflatten(-1, (4, 8)) for t in self.qkv(x).chunk(3, dim=-1))
        scores = torch.einsum("bihd,bjhd->bhij", q, k) / 8**0.5
        return torch.einsum("bhij,bjhd->bihd", scores.softmax(dim=-1), v).flatten(2)


class FusedQkvAttention(nn.Module):
    """timm's ViT attention: one qkv projection split with ``unbind(0)``."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(32, 96)
        self.proj = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, 4, width // 4).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        probs = ((q @ k.transpose(-2, -1)) * (width // 4) ** -0.5).softmax(dim=-1)
        return self.proj((probs @ v).transpose(1, 2).reshape(batch, length, width))


def research_code(module_type: type[nn.Module]):
    def factory():
        torch.manual_seed(0)
        return module_type().eval(), (_sequence(),)

    return factory


ROPE = dict(max_position_embeddings=64)

ZOO: dict[str, Callable[[], tuple[nn.Module, tuple]]] = {
    "bert": encoder("BertConfig"),
    "bert-sdpa": encoder("BertConfig", attn="sdpa"),
    "distilbert": encoder("DistilBertConfig", dim=32, n_layers=2, n_heads=4, hidden_dim=64),
    "roberta": encoder("RobertaConfig"),
    "albert": encoder("AlbertConfig", embedding_size=16),
    "deberta-v2": encoder("DebertaV2Config", max_relative_positions=16, position_buckets=8, relative_attention=True,
                          pos_att_type=["p2c", "c2p"]),
    "mpnet": encoder("MPNetConfig"),
    "t5": seq2seq("T5Config", d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, vocab_size=VOCAB,
                  relative_attention_num_buckets=8, decoder_start_token_id=0),
    "bart": seq2seq("BartConfig", d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                    decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=VOCAB,
                    max_position_embeddings=32),
    "whisper-encoder": whisper_encoder(),
    "clip-text": encoder("CLIPTextConfig", max_position_embeddings=16),
    "clip-vision": vision("CLIPVisionConfig", "CLIPVisionModel", image_size=16, patch_size=4, hidden_size=32,
                          num_hidden_layers=2, num_attention_heads=4, intermediate_size=64),
    "vit": vision("ViTConfig", image_size=16, patch_size=4, **{k: v for k, v in TINY.items() if k != "vocab_size"}),
    "deit": vision("DeiTConfig", image_size=16, patch_size=4, **{k: v for k, v in TINY.items() if k != "vocab_size"}),
    "swin": vision("SwinConfig", image_size=16, patch_size=2, embed_dim=16, depths=[1, 1], num_heads=[2, 4],
                   window_size=4),
    "gpt2": decoder("GPT2Config", n_embd=32, n_layer=2, n_head=4, n_positions=32),
    "gpt-neo": decoder("GPTNeoConfig", num_layers=2, attention_types=[[["global", "local"], 1]], window_size=4,
                       max_position_embeddings=32),
    "gpt-neox": decoder("GPTNeoXConfig", **ROPE),
    "gpt-j": decoder("GPTJConfig", n_embd=32, n_layer=2, n_head=4, n_positions=32, rotary_dim=4),
    "opt": decoder("OPTConfig", ffn_dim=64, word_embed_proj_dim=32, max_position_embeddings=32),
    "bloom": decoder("BloomConfig", n_layer=2, n_head=4),
    "falcon": decoder("FalconConfig", num_kv_heads=2, new_decoder_architecture=True),
    "llama": decoder("LlamaConfig", num_key_value_heads=2, **ROPE),
    "llama-sdpa": decoder("LlamaConfig", attn="sdpa", num_key_value_heads=2, **ROPE),
    "mistral": decoder("MistralConfig", num_key_value_heads=2, sliding_window=4, **ROPE),
    "qwen2": decoder("Qwen2Config", num_key_value_heads=2, **ROPE),
    "phi": decoder("PhiConfig", **ROPE),
    "phi3": decoder("Phi3Config", num_key_value_heads=2, pad_token_id=0, **ROPE),
    "gemma": decoder("GemmaConfig", num_key_value_heads=2, head_dim=8, **ROPE),
    "gemma2": decoder("Gemma2Config", num_key_value_heads=2, head_dim=8, sliding_window=4, **ROPE),
    "stablelm": decoder("StableLmConfig", num_key_value_heads=2, **ROPE),
    "mha": mha(need_weights=True),
    "mha-sdpa": mha(need_weights=False),
    "transformer-encoder": transformer_encoder,
    "transformer-decoder": transformer_decoder,
    "einsum-attention": research_code(EinsumAttention),
    "timm-fused-qkv": research_code(FusedQkvAttention),
}
