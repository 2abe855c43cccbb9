"""Cross-check of the project's SparseGPT (``fitting.prune_masks.sparsegpt``) against llmcompressor's on one layer.

Both prune the same weight with the same Hessian H = XᵀX: W_Q and W_K of one all-MiniLM-L6-v2 layer, X the
layer's input on the 128 calibration summaries of ``bench/prune_attention.py`` (real tokens only). llmcompressor's
``sparsify_weight`` (``llmcompressor.modifiers.pruning.sparsegpt.sgpt_sparsify``) is called directly on an
``nn.Linear`` holding the weight, with the same block size (128) and damping (1 % of H's mean diagonal). It runs
in a separate virtual environment (a bench-only install), which this script calls as a subprocess:

    python3 -m venv /tmp/llmc-venv && /tmp/llmc-venv/bin/pip install torch==2.13.0 llmcompressor==0.14.0.1
    .venv/bin/python bench/sparsegpt_vs_llmcompressor.py --llmcompressor-python /tmp/llmc-venv/bin/python

Compared per matrix and setting (50 %, 70 %, 90 % unstructured and 2:4): the sparsity reached, the layer
reconstruction error ‖X(W − Ŵ)ᵀ‖_F / ‖XWᵀ‖_F on the calibration inputs and on held-out inputs (the 64 evaluation
summaries), how many mask entries agree, and ‖Ŵ_ours − Ŵ_llmc‖_F / ‖W‖_F. At 2:4 both choose each group's mask the
same way (the two lowest w²/[H⁻¹]²_jj of the updated weights when the group starts), so the two results should
agree up to rounding; run with ``--float64`` llmcompressor works in double precision as the project does. For
unstructured sparsity the project keeps the same count in every row, llmcompressor thresholds each 128-column
block over all rows at once (the paper's choice), so masks differ there by design.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = [("50%", 0.5, "unstructured"), ("70%", 0.7, "unstructured"), ("90%", 0.9, "unstructured"), ("2:4", 0.5, "2:4")]


def worker(inputs: str, outputs: str, float64: bool) -> None:
    """Runs inside llmcompressor's environment: prunes every weight of ``inputs`` with its Hessian."""
    import llmcompressor
    from llmcompressor.modifiers.pruning.sparsegpt import sgpt_sparsify
    from safetensors.torch import load_file, save_file

    if float64:
        sgpt_sparsify.SGPT_PRECISION = torch.float64  # read by sparsify_weight when it converts the weight
    tensors, out = load_file(inputs), {}
    for name in sorted(key for key in tensors if key.endswith(".weight")):
        stem = name.removesuffix(".weight")
        weight, hessian = tensors[name], tensors[stem + ".hessian"]
        for label, sparsity, granularity in SETTINGS:
            layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=weight.dtype)
            layer.weight.data = weight.clone()
            n, m = (2, 4) if granularity == "2:4" else (0, 0)
            _, pruned = sgpt_sparsify.sparsify_weight(layer, {layer: hessian.clone().to(sgpt_sparsify.SGPT_PRECISION)},
                                                      sparsity, n, m, 128, 0.01, False)
            out[f"{stem}@{label}"] = pruned.contiguous()
    out["version"] = torch.tensor([ord(c) for c in llmcompressor.__version__])
    save_file(out, outputs)


def layer_inputs(layer: int, calibration: int, heldout: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """W_Q, W_K of the layer and its input rows (real tokens) on the calibration and held-out summaries."""
    import prune_attention

    from compiler.models import _offline_hub, minilm_path

    _offline_hub()
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = AutoModel.from_pretrained(minilm_path(), attn_implementation="eager").eval()
    attention = model.encoder.layer[layer].attention.self
    seen: list[torch.Tensor] = []
    hook = attention.query.register_forward_hook(lambda module, args, output: seen.append(args[0].detach()))

    def rows(texts: list[str]) -> torch.Tensor:
        collected = []
        with torch.no_grad():
            for ids, mask in prune_attention.batches(tokenizer, texts):
                seen.clear()
                model(input_ids=ids, attention_mask=mask)
                collected.append(seen[0][mask.bool()])
        return torch.cat(collected)

    calibration_text, heldout_text = prune_attention.texts(calibration, heldout)
    x_calibration, x_heldout = rows(calibration_text), rows(heldout_text)
    hook.remove()
    weights = {"query": attention.query.weight.detach().clone(), "key": attention.key.weight.detach().clone()}
    return weights, x_calibration, x_heldout


def relative_error(x: torch.Tensor, weight: torch.Tensor, pruned: torch.Tensor) -> float:
    x, weight, pruned = x.double(), weight.double(), pruned.double()
    return float((x @ (weight - pruned).t()).norm() / (x @ weight.t()).norm())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llmcompressor-python", help="python of the environment where llmcompressor is installed")
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--float64", action="store_true", help="run llmcompressor's SparseGPT in double precision")
    parser.add_argument("--worker", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--output", default="sparsegpt_vs_llmcompressor")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.worker:
        worker(*args.worker, args.float64)
        return 0
    if not args.llmcompressor_python:
        parser.error("--llmcompressor-python is required")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from safetensors.torch import load_file, save_file

    from fitting.prune_masks import sparsegpt

    weights, x_calibration, x_heldout = layer_inputs(args.layer, 128, 64)
    hessian = x_calibration.double().t() @ x_calibration.double()
    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs = Path(folder) / "in.safetensors", Path(folder) / "out.safetensors"
        tensors = {}
        for name, weight in weights.items():
            tensors[f"{name}.weight"] = weight.double() if args.float64 else weight
            tensors[f"{name}.hessian"] = hessian.clone() if args.float64 else hessian.float()
        save_file(tensors, str(inputs))
        command = [args.llmcompressor_python, __file__, "--worker", str(inputs), str(outputs)]
        subprocess.run(command + (["--float64"] if args.float64 else []), check=True)
        theirs = load_file(str(outputs))
    version = "".join(chr(int(c)) for c in theirs.pop("version"))
    rows = []
    for name, weight in weights.items():
        for label, sparsity, granularity in SETTINGS:
            ours = sparsegpt(weight.double(), hessian, sparsity, granularity).float()
            other = theirs[f"{name}@{label}"].float()
            rows.append({
                "matrix": name, "setting": label,
                "sparsity_ours": float((ours == 0).float().mean()), "sparsity_llmc": float((other == 0).float().mean()),
                "calibration_error_ours": relative_error(x_calibration, weight, ours),
                "calibration_error_llmc": relative_error(x_calibration, weight, other),
                "heldout_error_ours": relative_error(x_heldout, weight, ours),
                "heldout_error_llmc": relative_error(x_heldout, weight, other),
                "mask_agreement": float(((ours == 0) == (other == 0)).float().mean()),
                "weight_difference": float((ours - other).norm() / weight.norm()),
            })
            print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    stem = args.output + ("_float64" if args.float64 else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps({"llmcompressor": version, "layer": args.layer, "rows": rows}, indent=1))
    lines = [
        "# SparseGPT: the project's implementation vs llmcompressor's, on one MiniLM layer",
        "",
        f"`{' '.join(['.venv/bin/python bench/sparsegpt_vs_llmcompressor.py', *sys.argv[1:]])}`. llmcompressor {version} "
        f"(`sparsify_weight`, block 128, damping 0.01, {'float64' if args.float64 else 'its float32'}), layer "
        f"{args.layer} of all-MiniLM-L6-v2, H = XᵀX over {len(x_calibration)} calibration tokens; held-out: "
        f"{len(x_heldout)} tokens of other articles. Error: ‖X(W − Ŵ)ᵀ‖_F / ‖XWᵀ‖_F.",
        "",
        "| matrix | setting | sparsity ours / llmc | calibration error ours / llmc | held-out error ours / llmc "
        "| mask entries that agree | ‖Ŵ_ours − Ŵ_llmc‖ / ‖W‖ |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['matrix']} | {row['setting']} | {row['sparsity_ours']:.4f} / {row['sparsity_llmc']:.4f} | "
            f"{row['calibration_error_ours']:.4f} / {row['calibration_error_llmc']:.4f} | "
            f"{row['heldout_error_ours']:.4f} / {row['heldout_error_llmc']:.4f} | {row['mask_agreement']:.4f} | "
            f"{row['weight_difference']:.2e} |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
