"""Crossbar whole-model speed of one checkout, for before/after comparisons run side by side on a loaded machine.

Runs MiniLM (4 x 21 tokens) on the reference executor and on the crossbar (cold: chip cache cleared; warm: the
in-memory chip cache) alternately, REPS times, with the code of the checkout given (its bench/xbar_whole_model.py
helpers), and prints the medians and ratios. Where the checkout has the on-disk chip store, "cold" programs (the
store is off) and "stored" reads the programmed matrices from a temporary store. Run it on two checkouts in turn,
e.g. the branch point in a second worktree (``git worktree add /tmp/before <commit>``) and this one:
    OMP_NUM_THREADS=1 .venv/bin/python bench/xbar_speed_ab.py /tmp/before 9
    OMP_NUM_THREADS=1 .venv/bin/python bench/xbar_speed_ab.py . 9
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import statistics
import sys
import tempfile
from pathlib import Path


def main() -> None:
    root = str(Path(sys.argv[1]).resolve())
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    sys.path[:0] = [root, root + "/bench"]
    import torch

    torch.set_num_threads(1)
    bench = importlib.import_module("xbar_whole_model")
    api = importlib.import_module("compiler.api")
    chip_cache = importlib.import_module("targets.crossbar.programming").CHIP_CACHE
    base = api.compile_model("minilm", "attn-raise")
    xbar = bench.lowered(base, "lower-to-xbar")
    has_store = importlib.util.find_spec("targets.crossbar.chip_store") is not None
    ref, cold, stored, warm = [], [], [], []
    with tempfile.TemporaryDirectory() as store:
        for rep in range(reps):
            ref.append(bench.timed_run(base, rep % 2)[0])
            chip_cache.clear()
            os.environ["ATTNC_CHIP_CACHE"] = "off"
            cold.append(bench.timed_run(xbar, rep % 2)[0])
            if has_store:
                os.environ["ATTNC_CHIP_CACHE"] = store
                if rep == 0:
                    chip_cache.clear()
                    bench.timed_run(xbar, rep % 2)  # fills the store
                chip_cache.clear()
                stored.append(bench.timed_run(xbar, rep % 2)[0])
            warm.append(bench.timed_run(xbar, rep % 2)[0])
    r, c, w = (statistics.median(x) for x in (ref, cold, warm))
    from_store = f", stored {statistics.median(stored):.4f} s ({statistics.median(stored) / r:.2f}x)" if stored else ""
    print(f"{root}: reference {r:.4f} s, crossbar cold {c:.4f} s ({c / r:.2f}x){from_store}, warm {w:.4f} s ({w / r:.2f}x)")


if __name__ == "__main__":
    main()
