"""Runs the whole lit/FileCheck suite (tests/filecheck) as one pytest test."""

import os
import subprocess
import sys
from pathlib import Path

SUITE = Path(__file__).resolve().parents[1] / "filecheck"


def test_filecheck_suite():
    lit = Path(sys.executable).with_name("lit")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(lit), "-sv", "-j2", str(SUITE)], capture_output=True, text=True, env=env, timeout=1200
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "Passed" in result.stdout or "Total Discovered Tests" in result.stdout
