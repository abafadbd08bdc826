"""The examples run as a user runs them and produce what they promise."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_train_and_compare_writes_its_plot(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_and_compare.py"), "--steps", "30", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    png = (tmp_path / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "trained 30 steps" in run.stdout
    assert "LinearNexus chunk form against the PyTorch recurrence" in run.stdout
