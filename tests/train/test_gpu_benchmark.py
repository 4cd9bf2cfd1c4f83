"""benchmarks/gpu_train.py: it says so without a GPU, and every row it would time on one runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from .runs import ENV

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_train.py")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the benchmark would run")
def test_without_cuda_it_says_so_and_exits_0():
    result = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0 and "no CUDA device" in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the script would run")
def test_the_all_gpu_figures_script_says_so_too(tmp_path):
    out = tmp_path / "figures"
    result = subprocess.run(
        ["bash", os.path.join(ROOT, "tools", "gpu_figures.sh"), str(out)],
        capture_output=True,
        text=True,
        env={**ENV, "PYTHON": sys.executable},
    )
    assert result.returncode == 0 and "no CUDA device" in result.stdout and not out.exists()


@pytest.mark.slow
def test_its_rows_train_at_toy_sizes(train_shards):
    result = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--cpu-check",
            "--shards",
            train_shards,
            "--steps",
            "4",
            "--warmup",
            "0",
            "--workers",
            "1",
            "--only",
            "dora",
        ],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if "worker" in line or "reference" in line]
    assert len(rows) == 4 and not any("failed" in row for row in rows), result.stdout
    assert (
        "frame by frame" in rows[0] and rows[0].split()[-1] == "1.00"
    )  # the reference row, itself
