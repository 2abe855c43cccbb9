"""Cottention trained from scratch: softmax vs cosine attention, same budget, test perplexity side by side.

Byte-level GPT-2 models (bench/byte_gpt.py, plain PyTorch with Hugging Face GPT-2's parameter names), two per
size and seed, identical in everything but the attention:

- **softmax:** causal scaled dot-product attention;
- **cosine:** the compiler's ``attn.cosine`` causal form, computed while training by the differentiable kernel
  ``runtime.cosine_kernels.cosine_attention_causal``, with one learned scalar m per head
  (``<layer>.attn.cosine_m``, initialised to 0.5 like ``attn-cosine``'s parameter; s = sigmoid(m), values at key
  position j divided by max(1, j^s), no softmax, no 1/sqrt(d)).

Same budget for both: the same train windows in the same order (one seeded generator), the same initial weights
(drawn before m exists), the same AdamW settings, schedule and number of steps.

Three modes:

1. ``--export-corpus DIR`` (here): the byte corpus, the 10,033 Wikipedia summaries of bench/cosine_lm_perplexity.py
   split by article (seed 0, the same split for every training seed) into train / validation / test byte streams
   (``*.bin``, one uint8 per byte) plus ``manifest.json``. Training needs nothing else.
2. ``--train --corpus DIR --out-dir OUT [--device cuda]``: trains every (size, seed, attention) job, imports only
   torch, safetensors and runtime/cosine_kernels.py (no transformers, no xDSL), so it runs on a bare GPU machine.
   ``--workers N`` trains N jobs at once as separate processes (small models leave a GPU mostly idle). Each job
   evaluates its test perplexity on the device (float32) with its weights rounded to float16, the form they are
   stored in. OUT gets ``summary.json`` (every job's log) and the weights + logs as one tar.gz cut into parts of
   at most 15.9 MB (``cottention_runs.tar.gz.partNN``); weights go in, smallest jobs first, while they fit in
   ``--max-parts`` parts: a job whose weights do not fit keeps its log (and device perplexity) only.
3. ``--report --from OUT --out bench/results/cottention_scratch`` (here): loads each returned model into Hugging
   Face's GPT-2 (eager attention; the cosine one compiled through ``attn-raise,attn-cosine{causal=true}`` with its
   trained m), and computes test perplexity with PyTorch and through the attnc executor on the first
   ``--eval-windows`` test windows, beside the device's perplexity on all test windows; writes .md, .json, .png.

Perplexity is per byte on non-overlapping 129-byte test windows: the model reads 128 bytes, each predicting the next.

Device run (one H200, carrying the corpus): ``python3 bench/cottention_scratch.py --train --device cuda --amp --workers 8
--deadline-s 320 --out-dir OUT``. CPU check: ``--train --sizes S --steps 20`` then ``--report``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tarfile
import time
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import byte_gpt  # noqa: E402

COSINE_ATTENTION = "attnc_cosine_causal"
COSINE_M_INIT = byte_gpt.COSINE_M_INIT
CONTEXT = 128
# Sizes: head size 32 for S/M, 64 for L/XL. Steps sized for one H200: all 16 jobs (4 sizes x
# 2 seeds x 2 attentions, 8 at a time) take about 4 minutes there; the train split is 4.6 MB, so 2,000 steps of
# 64 x 128 bytes are 3.6 epochs (dropout on L and XL).
SIZES = {
    "S": {"layers": 2, "width": 64, "heads": 2, "steps": 4000, "lr": 2e-3, "dropout": 0.0},
    "M": {"layers": 4, "width": 128, "heads": 4, "steps": 4000, "lr": 2e-3, "dropout": 0.0},
    "L": {"layers": 6, "width": 256, "heads": 4, "steps": 2500, "lr": 1e-3, "dropout": 0.1},
    "XL": {"layers": 8, "width": 384, "heads": 6, "steps": 2000, "lr": 8e-4, "dropout": 0.1},
}
PAPER = {"softmax": 10.3, "cosine": 11.6, "params": "300 M"}  # the Cottention paper's Pile perplexities
PART_BYTES = 15_900_000
RETURN_BYTES = 64 * 2**20 - 2_000_000  # all parts together (summary.json takes the rest)
ARCHIVE = "cottention_runs.tar.gz"
SPLIT_SEED = 0
VALIDATION_WINDOWS = 128  # validation loss during training: the first windows of the validation stream
RUNS_CACHE = Path(__file__).resolve().parent / ".cache" / "cottention_runs"


@dataclass(frozen=True)
class Job:
    """Everything that determines one trained model."""

    size: str
    attention: str
    seed: int
    layers: int
    width: int
    heads: int
    steps: int
    lr: float
    dropout: float
    context: int = CONTEXT
    batch: int = 64
    warmup_steps: int = 200
    min_lr_fraction: float = 0.1
    weight_decay: float = 0.1
    eval_every: int = 250

    @property
    def name(self) -> str:
        return f"{self.size}-{self.attention}-s{self.seed}"

    def shape(self) -> byte_gpt.GPTShape:
        return byte_gpt.GPTShape(self.layers, self.width, self.heads, self.context, self.dropout)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------------------------


def export_corpus(folder: Path) -> None:
    """Writes the article-split byte streams and their manifest (needs the Wikipedia-summaries package)."""
    import cosine_lm_perplexity as lm_bench

    splits = lm_bench.load_splits(lm_bench.TrainSettings(seed=SPLIT_SEED))
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "source": f"{lm_bench.DATA_PACKAGE}/{lm_bench.DATA_FILE} ({lm_bench.INSTALL_HINT})",
        "source_sha256": hashlib.sha256(lm_bench.data_path().read_bytes()).hexdigest(),
        "split_seed": SPLIT_SEED,
        "splits": {},
    }
    for name, texts in splits.items():
        data = lm_bench.byte_stream(texts).to(torch.uint8).numpy().tobytes()
        (folder / f"{name}.bin").write_bytes(data)
        manifest["splits"][name] = {"articles": len(texts), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log(f"corpus written to {folder}: {json.dumps(manifest['splits'])}")


def load_corpus(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The byte streams (int64) and the manifest, each stream checked against its hash."""
    manifest = json.loads((folder / "manifest.json").read_text())
    streams = {}
    for name, meta in manifest["splits"].items():
        data = (folder / f"{name}.bin").read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise SystemExit(f"{folder / name}.bin does not match its manifest hash")
        streams[name] = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    return streams, manifest


def eval_windows(stream: torch.Tensor, context: int) -> torch.Tensor:
    """Non-overlapping (context + 1)-byte windows, stride ``context``: each byte after the first is a target once."""
    count = (len(stream) - 1) // context
    return torch.stack([stream[i * context : i * context + context + 1] for i in range(count)])


# --------------------------------------------------------------------------------------------------------------
# Training (torch only)
# --------------------------------------------------------------------------------------------------------------


def make_jobs(sizes: list[str], seeds: list[int], attentions: list[str], steps: int | None, batch: int | None) -> list[Job]:
    jobs = []
    for size in sizes:
        for seed in seeds:
            for attention in attentions:
                job = Job(size=size, attention=attention, seed=seed, **SIZES[size])
                if steps is not None:
                    job = replace(job, steps=steps, warmup_steps=min(job.warmup_steps, max(1, steps // 10)),
                                  eval_every=max(1, min(job.eval_every, steps // 4)))
                if batch is not None:
                    job = replace(job, batch=batch)
                jobs.append(job)
    return jobs


def parameter_count(job: Job) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in byte_gpt.ByteGPT(job.shape(), job.attention).parameters())


@torch.no_grad()
def mean_loss(model: torch.nn.Module, windows: torch.Tensor, batch: int) -> float:
    """Mean next-byte cross-entropy (nats) over the windows, float32, no autocast."""
    total, count = 0.0, 0
    for first in range(0, len(windows), batch):
        chunk = windows[first : first + batch]
        logits = model(chunk[:, :-1]).float()
        total += F.cross_entropy(logits.reshape(-1, byte_gpt.VOCAB), chunk[:, 1:].reshape(-1), reduction="sum").item()
        count += chunk[:, 1:].numel()
    return total / count


def train_job(job: Job, streams: dict[str, torch.Tensor], device: str, amp: bool, deadline: float, subset: int):
    """Trains one model; returns (weights stored as float16, log)."""
    torch.manual_seed(job.seed)
    model = byte_gpt.ByteGPT(job.shape(), job.attention).to(device).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    fused = {"fused": True} if device.startswith("cuda") else {}
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": job.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=job.lr, betas=(0.9, 0.95), **fused,
    )

    def rate(step: int) -> float:
        if step < job.warmup_steps:
            return (step + 1) / job.warmup_steps
        progress = min(1.0, (step - job.warmup_steps) / max(1, job.steps - job.warmup_steps))
        return job.min_lr_fraction + (1 - job.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    train_stream = streams["train"].to(device)
    validation = eval_windows(streams["validation"], job.context)[:VALIDATION_WINDOWS].to(device)
    generator = torch.Generator().manual_seed(job.seed)
    offsets = torch.arange(job.context + 1, device=device)
    losses: list[torch.Tensor] = []
    validation_curve, step_times = [], []
    start = last = time.perf_counter()
    steps_done = 0
    for step in range(job.steps):
        if time.time() > deadline:
            log(f"{job.name}: deadline reached at step {step} of {job.steps}")
            break
        starts = torch.randint(0, len(train_stream) - job.context - 1, (job.batch,), generator=generator).to(device)
        windows = train_stream[starts[:, None] + offsets]
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=amp):
            logits = model(windows[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, byte_gpt.VOCAB), windows[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach())
        steps_done = step + 1
        if steps_done % 10 == 0:
            torch.stack(losses[-10:]).cpu()  # one sync every 10 steps
            now = time.perf_counter()
            step_times.append((now - last) / 10)
            last = now
        if steps_done % job.eval_every == 0 or steps_done == job.steps:
            model.eval()
            validation_curve.append([steps_done, mean_loss(model, validation, 64)])
            model.train()
            last = time.perf_counter()
            log(f"{job.name}: step {steps_done}/{job.steps} train {loss.item():.3f} val {validation_curve[-1][1]:.3f}")
    seconds = time.perf_counter() - start
    curve = torch.stack(losses).cpu().tolist() if losses else []
    weights = {n: t.to("cpu", torch.float16) for n, t in byte_gpt.hf_state_dict(model).items()}
    model.eval()
    test = eval_windows(streams["test"], job.context).to(device)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
    ppl_fp32 = math.exp(mean_loss(model, test, 64))
    model.load_state_dict({n: t.float() for n, t in weights.items()})
    ppl_stored = math.exp(mean_loss(model, test, 64))
    ppl_subset = math.exp(mean_loss(model, test[:subset], 64))
    step_times.sort()
    tail = curve[-50:]
    record = {
        "job": asdict(job),
        "name": job.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps_done": steps_done,
        "complete": steps_done == job.steps,
        "seconds": seconds,
        "step_seconds_median": step_times[len(step_times) // 2] if step_times else None,
        "tokens_seen": steps_done * job.batch * job.context,
        "final_train_loss": sum(tail) / max(1, len(tail)),
        "loss_every_10_steps": curve[::10],
        "validation_loss": validation_curve,
        "test_windows": len(test),
        "ppl_device_fp32_weights": ppl_fp32,
        "ppl_device": ppl_stored,
        "ppl_device_subset": ppl_subset,
        "subset_windows": subset,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "amp": "bf16 autocast (linear layers, LM head); attention float32; TF32 matmuls" if amp else "float32",
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if device.startswith("cuda") else None,
    }
    if job.attention == "cosine":
        s = torch.sigmoid(torch.stack([b.attn.cosine_m.detach().float().cpu() for b in model.transformer.h]))
        record["s_after"] = {"min": s.min().item(), "mean": s.mean().item(), "max": s.max().item()}
    log(f"{job.name}: done in {seconds:.0f} s, test ppl {ppl_stored:.3f} (float32 weights {ppl_fp32:.3f})")
    return weights, record


def run_one(args: argparse.Namespace, job: Job) -> None:
    """Trains one job and writes <job dir>/model.safetensors and log.json."""
    from safetensors.torch import save_file

    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch.set_num_threads(args.threads)
    streams, _ = load_corpus(args.corpus)
    weights, record = train_job(job, streams, args.device, args.amp, args.deadline, args.subset_windows)
    folder = args.work_dir / job.name
    folder.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "log.json").write_text(json.dumps(record, indent=1))


def train_all(args: argparse.Namespace) -> int:
    """Runs every job (``--workers`` at a time, each in its own process), then packs OUT."""
    jobs = make_jobs(args.sizes.split(","), [int(s) for s in args.seeds.split(",")], args.attentions.split(","),
                     args.steps, args.batch)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + args.deadline_s
    # Longest first (parameters × steps), so the big jobs never start last.
    order = sorted(jobs, key=lambda j: -parameter_count(j) * j.steps)
    log(f"{len(jobs)} jobs, {args.workers} at a time on {args.device}; deadline in {args.deadline_s} s")
    running: list[tuple[Job, subprocess.Popen]] = []
    base = [sys.executable, str(Path(__file__).resolve()), "--corpus", str(args.corpus), "--work-dir", str(work),
            "--device", args.device, "--deadline", str(deadline), "--subset-windows", str(args.subset_windows),
            "--threads", str(args.threads)] + (["--amp"] if args.amp else [])
    failed = []
    while order or running:
        while order and len(running) < args.workers:
            job = order.pop(0)
            command = base + ["--job", json.dumps(asdict(job))]
            running.append((job, subprocess.Popen(command)))
        time.sleep(0.5)
        for job, process in list(running):
            if process.poll() is not None:
                running.remove((job, process))
                if process.returncode != 0:
                    failed.append(job.name)
                    log(f"{job.name}: FAILED (exit {process.returncode})")
    pack(jobs, work, args.out_dir, args.max_parts)
    log(f"done; failed: {failed or 'none'}")
    return 1 if failed else 0


def pack(jobs: list[Job], work: Path, out: Path, max_parts: int) -> None:
    """summary.json (every log) and the weights + logs as a tar.gz in parts; smallest jobs' weights first."""
    records = [json.loads((work / j.name / "log.json").read_text()) for j in jobs if (work / j.name / "log.json").is_file()]
    # At most 8 files of 16 MiB, 64 MiB together come back: the parts plus summary.json. gzip hardly shrinks float16
    # weights; keep a margin for tar headers and summary.json.
    budget = min(max_parts * PART_BYTES, RETURN_BYTES) * 0.97
    shipped, used = [], 0
    pairs: dict[tuple[int, int, str], list[Path]] = {}  # both attentions of a size and seed, or neither
    for job in jobs:
        pairs.setdefault((parameter_count(replace(job, attention="softmax")), job.seed, job.size), []).append(work / job.name)
    for key in sorted(pairs):
        files = [folder / "model.safetensors" for folder in pairs[key]]
        size = sum(f.stat().st_size for f in files if f.is_file())
        if all(f.is_file() for f in files) and used + size <= budget:
            shipped += [folder.name for folder in pairs[key]]
            used += size
    for record in records:
        record["weights_returned"] = record["name"] in shipped
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as archive:
        for record in records:
            archive.add(work / record["name"] / "log.json", arcname=f"{record['name']}/log.json")
            if record["weights_returned"]:
                archive.add(work / record["name"] / "model.safetensors", arcname=f"{record['name']}/model.safetensors")
    data = buffer.getvalue()
    parts = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)]
    for index, part in enumerate(parts):
        (out / f"{ARCHIVE}.part{index:02d}").write_bytes(part)
    (out / "summary.json").write_text(json.dumps({"records": records, "archive_parts": len(parts),
                                                  "archive_sha256": hashlib.sha256(data).hexdigest()}, indent=1))
    log(f"packed {len(shipped)} of {len(records)} models' weights into {len(parts)} parts ({len(data) / 1e6:.1f} MB)")


# --------------------------------------------------------------------------------------------------------------
# The Hugging Face cosine model (also used by bench/cottention_decode.py and the tests)
# --------------------------------------------------------------------------------------------------------------


def cosine_attention_forward(module, query, key, value, attention_mask, **kwargs):
    """Hugging Face attention function: causal cosine attention with the module's per-head ``cosine_m``.

    ``attention_mask`` is ignored: training and evaluation windows have no padding, so the mask is the causal
    triangle, which the kernel applies itself. Returns (B, T, H, d) like every HF attention function."""
    from runtime.cosine_kernels import cosine_attention_causal

    return cosine_attention_causal(query, key, value, module.cosine_m).transpose(1, 2), None


def register_cosine_attention() -> None:
    """Makes ``COSINE_ATTENTION`` a Hugging Face attention implementation (masks built as for sdpa)."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(COSINE_ATTENTION, cosine_attention_forward)
    AttentionMaskInterface.register(COSINE_ATTENTION, sdpa_mask)


def make_cosine_lm(settings) -> torch.nn.Module:
    """The HF byte-level GPT-2 of ``cosine_lm_perplexity.make_lm`` with cosine attention and an m per head."""
    import cosine_lm_perplexity as lm_bench

    register_cosine_attention()
    model = lm_bench.make_lm(settings)
    model.config._attn_implementation = COSINE_ATTENTION
    for block in model.transformer.h:
        block.attn.config._attn_implementation = COSINE_ATTENTION
        block.attn.cosine_m = torch.nn.Parameter(torch.full((settings.heads,), COSINE_M_INIT))
    return model


def layer_of(name: str) -> int:
    """The GPT-2 block index in a weight name (``...h.<i>.attn...``)."""
    from compiler.errors import AttncError

    found = re.search(r"(?:^|\.)h\.(\d+)\.attn", name)
    if found is None:
        raise AttncError(f"no GPT-2 block index in {name!r}")
    return int(found.group(1))


def compiled_cosine(settings, cosine_model: torch.nn.Module, example: torch.Tensor):
    """The trained cosine model compiled by attnc: eager architecture + attn-cosine, trained m values in."""
    import cosine_lm_perplexity as lm_bench

    from compiler.api import ModelSpec, compile_model
    from compiler.errors import AttncError

    trained_weights = cosine_model.lm.state_dict()
    eager = lm_bench.make_lm(settings)
    eager.load_state_dict({n: t for n, t in trained_weights.items() if not n.endswith("cosine_m")})
    compiled = compile_model(ModelSpec("byte-gpt2", lm_bench.LogitsOnly(eager).eval(), (example,)), lm_bench.COSINE_PIPELINE)
    trained_m = {layer_of(n): t for n, t in trained_weights.items() if n.endswith("cosine_m")}
    pass_m = [n for n in compiled.weights if n.endswith(".cosine_m")]
    if sorted(layer_of(n) for n in pass_m) != sorted(trained_m):
        raise AttncError(f"attn-cosine made m for {pass_m}, the model has {sorted(trained_m)}")
    for name in pass_m:
        compiled.weights[name] = trained_m[layer_of(name)].detach().to(compiled.weights[name].dtype).clone()
    return compiled


# --------------------------------------------------------------------------------------------------------------
# Report (here: PyTorch and the attnc executor from the returned weights)
# --------------------------------------------------------------------------------------------------------------


def unpack(source: Path) -> tuple[Path, dict]:
    """Joins and unpacks the returned archive parts into bench/.cache/cottention_runs/<hash>/.

    When parts are missing (a transfer limit), the leading parts that did come back are unpacked as far as they go:
    every model wholly inside them is kept, and the others are marked ``weights_returned: false`` (device only)."""
    summary = json.loads((source / "summary.json").read_text())
    present = [i for i in range(summary["archive_parts"]) if (source / f"{ARCHIVE}.part{i:02d}").is_file()]
    leading = next((i for i in range(summary["archive_parts"]) if i not in present), summary["archive_parts"])
    data = b"".join((source / f"{ARCHIVE}.part{i:02d}").read_bytes() for i in range(leading))
    complete = leading == summary["archive_parts"]
    digest = hashlib.sha256(data).hexdigest()
    if complete and digest != summary["archive_sha256"]:
        raise SystemExit(f"the archive parts in {source} do not match summary.json's hash")
    if not complete:
        missing = sorted(set(range(summary["archive_parts"])) - set(present))
        log(f"archive parts {missing} missing: unpacking parts 0-{leading - 1}")
    target = RUNS_CACHE / digest[:16]
    if not target.is_dir():
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
            member = None
            try:
                for member in archive:
                    archive.extract(member, partial, filter="data")
            except (EOFError, tarfile.ReadError, zlib.error) as cut:
                if complete:
                    raise
                name = "the first member" if member is None else member.name
                log(f"archive cut off inside {name} ({type(cut).__name__}); the models before it are kept")
                if member is not None:
                    (partial / member.name).unlink(missing_ok=True)
        partial.rename(target)
    for record in summary["records"]:
        if record.get("weights_returned") and not (target / record["name"] / "model.safetensors").is_file():
            record["weights_returned"] = False
            record["weights_lost_in_transfer"] = True
    return target, summary


def evaluate_here(record: dict, folder: Path, windows: torch.Tensor, batch: int) -> dict:
    """PyTorch (HF GPT-2) and attnc-executor perplexity of one returned model on ``windows``."""
    import cosine_lm_perplexity as lm_bench
    from safetensors.torch import load_file

    from compiler.api import ModelSpec, compile_model

    job = record["job"]
    settings = lm_bench.TrainSettings(layers=job["layers"], width=job["width"], heads=job["heads"], context=job["context"])
    weights = {n: t.float() for n, t in load_file(str(folder / record["name"] / "model.safetensors")).items()}
    lm = (make_cosine_lm if job["attention"] == "cosine" else lm_bench.make_lm)(settings)
    lm.load_state_dict(weights, strict=True)
    model = lm_bench.LogitsOnly(lm).eval()
    example = windows[:batch, :-1].clone()
    if job["attention"] == "cosine":
        compiled = compiled_cosine(settings, model, example)
    else:
        compiled = compile_model(ModelSpec("byte-gpt2", model, (example,)), lm_bench.SOFTMAX_PIPELINE)
    with torch.no_grad():
        reference = model(example)
        error = (compiled.run((example,))[0] - reference).abs().max().item()
    torch_ppl, tokens, torch_s = lm_bench.perplexity(model, windows, batch, f"{record['name']} PyTorch")
    attnc_ppl, _, attnc_s = lm_bench.perplexity(lm_bench.executor_run(compiled), windows, batch, f"{record['name']} attnc")
    return {
        "ppl_torch_here": torch_ppl,
        "ppl_attnc": attnc_ppl,
        "tokens_here": tokens,
        "max_abs_logit_error": error,
        "max_abs_logit": reference.abs().max().item(),
        "attention_ops": sorted({op.name for op in compiled.module.walk() if op.name.startswith("attn.")}),
        "seconds_torch_here": torch_s,
        "seconds_attnc": attnc_s,
    }


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.3f} ± {std:.3f}"


def report_text(rows: list[dict], summary: dict, corpus: dict, command: str, wall: float) -> str:
    first = rows[0]["job"]
    subset = rows[0]["subset_windows"]
    lines = [
        f"Command: `{command}`",
        "",
        "| size | layers × width (heads) | parameters | steps × batch | attention | seed | final train loss | last val loss "
        f"| test ppl (device, all {rows[0]['test_windows']} windows) | ppl device, first {subset} "
        f"| ppl PyTorch here, first {subset} "
        f"| ppl attnc executor, first {subset} | max abs logit error attnc vs PyTorch | cosine ÷ softmax ppl | train time |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        job = row["job"]
        partner = next((r for r in rows if r["name"] == f"{job['size']}-softmax-s{job['seed']}"), None)
        ratio = "—" if partner is None else f"{row['ppl_device'] / partner['ppl_device']:.3f}"
        here = row.get("ppl_torch_here")
        steps = f"{row['steps_done']}" + ("" if row["complete"] else f" of {job['steps']} (deadline)")
        lines.append(
            f"| {job['size']} | {job['layers']} × {job['width']} ({job['heads']}) | {row['parameters']:,} "
            f"| {steps} × {job['batch']} "
            f"| {job['attention']} | {job['seed']} | {row['final_train_loss']:.3f} "
            f"| {row['validation_loss'][-1][1] if row['validation_loss'] else math.nan:.3f} | {row['ppl_device']:.3f} "
            f"| {row['ppl_device_subset']:.3f} "
            + (f"| {here:.3f} | {row['ppl_attnc']:.3f} | {row['max_abs_logit_error']:.1e} (of {row['max_abs_logit']:.1f}) "
               if here is not None else "| — | — | weights not returned (device only) ")
            + f"| {ratio} | {row['seconds']:.0f} s |"
        )
    if any(not r.get("weights_returned") for r in rows):
        lost = any(r.get("weights_lost_in_transfer") for r in rows)
        lines += ["", "Models marked device only were evaluated on the device alone: their weights "
                  + ("were in archive parts that did not come back (the returned files are capped at 64 MiB in all)."
                     if lost else "did not fit in the returned files (capped at 64 MiB in all).")]
    lines += ["", "Per size, mean ± standard deviation over seeds (device perplexity on all test windows):", "",
              "| size | parameters | seeds | softmax ppl | cosine ppl | cosine ÷ softmax (per seed, then mean) |",
              "|---|---:|---:|---:|---:|---:|"]
    for size in [s for s in SIZES if any(r["job"]["size"] == s for r in rows)]:
        by = {a: {r["job"]["seed"]: r for r in rows if r["job"]["size"] == size and r["job"]["attention"] == a}
              for a in ("softmax", "cosine")}
        seeds = sorted(set(by["softmax"]) & set(by["cosine"]))
        if not seeds:
            continue
        ratios = [by["cosine"][s]["ppl_device"] / by["softmax"][s]["ppl_device"] for s in seeds]
        lines.append(
            f"| {size} | {by['softmax'][seeds[0]]['parameters']:,} | {len(seeds)} "
            f"| {mean_std([by['softmax'][s]['ppl_device'] for s in seeds])} "
            f"| {mean_std([by['cosine'][s]['ppl_device'] for s in seeds])} | {mean_std(ratios)} |"
        )
    cosine_s = [r["s_after"] for r in rows if "s_after" in r]
    lines += [
        "",
        f"Paper (Cottention, {PAPER['params']} parameters, the Pile): softmax {PAPER['softmax']}, cosine "
        f"{PAPER['cosine']}, cosine ÷ softmax {PAPER['cosine'] / PAPER['softmax']:.2f}.",
        "",
        "| setting | value |",
        "|---|---|",
        f"| data | {corpus['source']}; articles split (seed {corpus['split_seed']}) into train / validation / test: "
        + ", ".join(f"{k} {v['articles']:,} articles, {v['bytes']:,} bytes" for k, v in corpus["splits"].items()) + " |",
        f"| training (both attentions) | AdamW (β 0.9, 0.95), weight decay {first['weight_decay']} (not on m, biases, "
        f"LayerNorm), windows of {first['context']} bytes at random offsets, batch in the table, lr per size (S, M "
        f"{SIZES['S']['lr']:g}; L {SIZES['L']['lr']:g}; XL {SIZES['XL']['lr']:g}), linear warm-up {first['warmup_steps']} "
        f"steps then cosine decay to {first['min_lr_fraction']:g} × lr, gradient clip 1.0, dropout (embeddings, residual "
        f"branches; none on attention) S, M {SIZES['S']['dropout']}, L, XL {SIZES['L']['dropout']} |",
        f"| precision | {rows[0]['amp']} |",
        f"| device | {rows[0]['device']}, torch {rows[0]['torch']}; test perplexity on the device in float32 with the weights "
        "rounded to float16 (as stored and returned) |",
        "| cosine attention | `runtime.cosine_kernels.cosine_attention_causal` (chunked, differentiable), m per head "
        f"initialised to {COSINE_M_INIT}; s = sigmoid(m) after training: "
        + ", ".join(f"{r['name']} {r['s_after']['min']:.2f}–{r['s_after']['max']:.2f}" for r in rows if "s_after" in r)
        + (" |" if cosine_s else "— |"),
        "| compiled with (here) | softmax: `attn-raise`; cosine: `attn-raise,attn-cosine{causal=true}` + trained m; "
        f"evaluated in float32 on {platform.machine()}, torch {torch.__version__} |",
        f"| time | report run {wall:.0f} s; train times in the table are from the device run |",
    ]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Per size: train loss (thin) and validation loss (markers), softmax vs cosine; last panel: ppl vs parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [s for s in SIZES if any(r["job"]["size"] == s for r in rows)]
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(4.2 * (len(sizes) + 1), 3.6), squeeze=False)
    colors = {"softmax": "tab:blue", "cosine": "tab:red"}
    for ax, size in zip(axes[0], sizes, strict=False):
        for row in (r for r in rows if r["job"]["size"] == size):
            job = row["job"]
            curve = row["loss_every_10_steps"]
            style = "-" if job["seed"] == 0 else ":"
            ax.plot([10 * i for i in range(len(curve))], curve, style, color=colors[job["attention"]], lw=0.6, alpha=0.5)
            steps, values = zip(*row["validation_loss"], strict=True) if row["validation_loss"] else ((), ())
            ax.plot(steps, values, style + "o", color=colors[job["attention"]], ms=3,
                    label=f"{job['attention']} s{job['seed']} (ppl {row['ppl_device']:.2f})")
        ax.set_title(f"{size}: {next(r['parameters'] for r in rows if r['job']['size'] == size):,} params")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/byte)")
        ax.set_ylim(0.8, 3.0)
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    for attention, color in colors.items():
        points = sorted((r["parameters"], r["ppl_device"]) for r in rows if r["job"]["attention"] == attention)
        if points:
            ax.plot(*zip(*points, strict=True), "o", color=color, label=attention)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("test perplexity (per byte)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def report(args: argparse.Namespace) -> int:
    wall = time.perf_counter()
    torch.set_num_threads(args.threads)
    folder, summary = unpack(args.source)
    streams, corpus = load_corpus(args.corpus)
    rows = []
    for record in summary["records"]:
        windows = eval_windows(streams["test"], record["job"]["context"])[: record["subset_windows"]]
        row = dict(record)
        if record.get("weights_returned"):
            row.update(evaluate_here(record, folder, windows, args.eval_batch))
            log(f"{record['name']}: device {row['ppl_device_subset']:.4f}, PyTorch here {row['ppl_torch_here']:.4f}, "
                f"attnc {row['ppl_attnc']:.4f} (first {len(windows)} test windows)")
        rows.append(row)
    order = {s: i for i, s in enumerate(SIZES)}
    rows.sort(key=lambda r: (order[r["job"]["size"]], r["job"]["seed"], r["job"]["attention"] != "softmax"))
    command = f".venv/bin/python {' '.join(shlex.quote(a) for a in sys.argv)}"
    text = report_text(rows, summary, corpus, command, time.perf_counter() - wall)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"command": command, "corpus": corpus, "rows": rows}, indent=1))
        plot(rows, args.out.with_suffix(".png"))
        args.out.with_suffix(".md").write_text(text + "\n")
    return 0


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--export-corpus", type=Path, metavar="DIR", help="write the byte corpus to DIR")
    mode.add_argument("--train", action="store_true", help="train every job; write OUT")
    mode.add_argument("--report", action="store_true", help="evaluate the returned weights here")
    mode.add_argument("--job", help=argparse.SUPPRESS)  # one job, as JSON (a worker process of --train)
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parent / ".cache" / "cottention_corpus")
    parser.add_argument("--sizes", default="S,M,L,XL", help=f"comma-separated, from {', '.join(SIZES)}")
    parser.add_argument("--attentions", default="softmax,cosine")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=None, help="override every size's step count (checks)")
    parser.add_argument("--batch", type=int, default=None, help="override the batch (windows per step)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for the linear layers (cuda)")
    parser.add_argument("--workers", type=int, default=1, help="jobs trained at once (one process each)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    parser.add_argument("--deadline-s", type=float, default=1e9, help="training stops in every job after this")
    parser.add_argument("--deadline", type=float, default=1e18, help=argparse.SUPPRESS)
    parser.add_argument("--subset-windows", type=int, default=256, help="test windows evaluated here (and on the device)")
    parser.add_argument("--max-parts", type=int, default=7, help="archive parts of at most 15.9 MB returned")
    parser.add_argument("--out-dir", type=Path, help="--train: where summary.json and the archive parts go")
    parser.add_argument("--work-dir", type=Path, default=None, help="--train: per-job folders (default under bench/.cache)")
    parser.add_argument("--from", dest="source", type=Path, help="--report: the folder with summary.json and the parts")
    parser.add_argument("--eval-batch", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None, help="--report: write <out>.md, <out>.json and <out>.png")
    args = parser.parse_args()
    if args.train and args.out_dir is None:
        parser.error("--train needs --out-dir")
    if args.report and args.source is None:
        parser.error("--report needs --from")
    if args.train and args.work_dir is None:
        args.work_dir = RUNS_CACHE.parent / "cottention_work" / time.strftime("%Y%m%d-%H%M%S")
    return args


def main() -> int:
    args = parse_args()
    if args.export_corpus is not None:
        export_corpus(args.export_corpus)
        return 0
    if args.job is not None:
        run_one(args, Job(**json.loads(args.job)))
        return 0
    if args.train:
        return train_all(args)
    return report(args)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
