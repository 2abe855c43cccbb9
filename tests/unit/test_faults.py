"""Fault-injection campaigns (compiler/faults.py, ``attnc faults``): Wilson intervals, input variation, and a
tiny campaign through the CLI on local Ray, read back from its JSON file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from compiler.faults import relative_change, summarise, varied_inputs, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == pytest.approx(1.0)
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_varied_inputs_keep_masks_and_special_tokens():
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102, 0, 0], [101, 7592, 2088, 2045, 2003, 2307, 2154, 102]])
    mask = (ids != 0).long()
    varied_ids, varied_mask = varied_inputs((ids, mask), seed=5)
    assert torch.equal(varied_mask, mask) and not torch.equal(varied_ids, ids)
    assert torch.equal(varied_ids[:, 0], ids[:, 0]) and varied_ids[0, 5] == 102 and varied_ids[1, 7] == 102
    assert torch.equal(varied_ids[0, 6:], ids[0, 6:])
    assert torch.equal(varied_inputs((ids, mask), seed=5)[0], varied_ids)  # reproducible
    assert varied_inputs((ids, mask), seed=0)[0] is ids


def test_summary_counts_significance_detection_and_false_alarms():
    results = [
        {"kind": "trial", "site": "p", "change": 0.5, "detected": True, "invariants": ["normaliser"]},
        {"kind": "trial", "site": "p", "change": 0.5, "detected": False, "invariants": []},
        {"kind": "trial", "site": "p", "change": 1e-6, "detected": True, "invariants": ["normaliser"]},
        {"kind": "trial", "site": "p", "change": float("inf"), "detected": True, "invariants": ["output-checksum"]},
        {"kind": "clean", "false_alarm": False, "where": []},
        {"kind": "clean", "false_alarm": True, "where": ["x"]},
    ]
    summary = summarise(results, ["p"], 1e-3)
    row = summary["sites"]["p"]
    assert (row["trials"], row["significant"], row["detected_significant"], row["sdc"], row["benign_detected"]) == (4, 3, 2, 1, 1)
    assert row["detection_rate"] == pytest.approx(2 / 3) and row["ci_low"] < 2 / 3 < row["ci_high"]
    assert (summary["clean_runs"], summary["false_alarms"], summary["threshold"]) == (2, 1, 1e-3)
    assert relative_change([torch.tensor([1.0, float("nan")])], [torch.ones(2)]) == float("inf")


def test_tiny_campaign_on_local_ray(tmp_path):
    """compile → attnc faults with two local Ray workers → faults.json, in fresh processes as a user runs them."""
    pytest.importorskip("ray")
    attnc = [sys.executable, "-m", "compiler.cli.main"]
    out = tmp_path / "m"
    subprocess.run([*attnc, "compile", "mha-sdpa", "-p", "attn-raise,abft-weave{linear=true}", "-o", str(out)], check=True,
                   capture_output=True, timeout=300)
    report = tmp_path / "faults.json"
    run = subprocess.run(
        [*attnc, "faults", str(out), "--sites", "p,acc,weight", "--trials", "12", "--clean-runs", "10", "--seed", "3",
         "--workers", "2", "--models", "bitflip-exponent,nan", "--json", str(report)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(report.read_text())
    assert set(summary["sites"]) == {"p", "acc", "weight"}
    for site, row in summary["sites"].items():
        assert row["trials"] == 12 and 0 <= row["detected_significant"] <= row["significant"] <= 12
        assert row["sdc"] == row["significant"] - row["detected_significant"]
        assert 0.0 <= row["ci_low"] <= row["ci_high"] <= 1.0
    assert summary["sites"]["p"]["significant"] > 0 and summary["sites"]["p"]["sdc"] == 0  # NaNs in P always matter
    assert summary["clean_runs"] == 10 and summary["false_alarms"] == 0 and summary["threshold"] == 1e-3
    assert "ray (local, 2 workers)" in summary["engine"] and "false alarms: 0" in run.stdout
    rerun = subprocess.run(
        [*attnc, "faults", str(out), "--sites", "p,acc,weight", "--trials", "12", "--clean-runs", "10", "--seed", "3",
         "--workers", "1", "--models", "bitflip-exponent,nan", "--json", str(tmp_path / "again.json")],
        capture_output=True, text=True, timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["sites"] == summary["sites"]  # same seed, same faults, whatever the number of workers


def test_campaign_errors_are_one_line_and_leave_the_thread_count(tmp_path, capsys):
    from compiler.cli.main import main

    threads = torch.get_num_threads()
    assert main(["faults", str(tmp_path / "missing")]) == 1
    assert "attnc: error:" in capsys.readouterr().err
    assert torch.get_num_threads() == threads  # only Ray workers pin one thread; the caller's setting stays
