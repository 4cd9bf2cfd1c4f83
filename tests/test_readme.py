"""Every command the README and the documentation pages show in a ``bash`` block runs as pasted,
in page order, or is listed here with the reason it is not run; a ``python`` block runs as a
script. They run in one folder laid out as after ``wtpipe demo`` and a few trainings
(``demo/shards``, ``demo/run``, ``runs/dino_vits16_wt``, ``runs/dora_tiny_cpu``), with the
repository's configs, jobs, tools and benchmarks beside them, so a page's later commands find
what its earlier ones made (getting started: ``my_shards``, ``runs/first``). Synopses
(placeholders in capitals, optional parts in brackets) sit in ``text`` blocks and are not
commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from wtpipe.shards.build import ShardBuilder
from wtpipe.shards.settings import BuildSettings

from .train.runs import ENV

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PAGES = ["README.md", "docs/getting-started.md"] + sorted(
    os.path.join("docs", name)
    for name in os.listdir(os.path.join(ROOT, "docs"))
    if name.endswith(".md") and name != "getting-started.md"
)
MINUTES = "minutes of training on 2 CPU cores; tests/train and tests/methods run the same recipes"
NOT_RUN = {
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/wtpipe demo": "installs wtpipe and runs the demo: .ci/run does both from a fresh clone",
    "bash .ci/run": "the test run itself",
    "wtpipe train --config configs/tiny_cpu.yaml data.shards=demo/shards": MINUTES,
    "wtpipe train --config configs/swav_tiny_cpu.yaml data.shards=demo/shards": MINUTES,
    "wtpipe demo method.name=swav --out demo_swav": "the demo (minutes); tests/test_demo.py runs it with SwAV",
    "python benchmarks/learning.py --methods dino,dora,swav": "a benchmark, 20 minutes",
    'python -m pytest -q -m "not slow and not slurm"': "the tests themselves",
    "mkdocs build --strict": ".ci/run builds the site (strict) on every run",
    "accelerate launch -m wtpipe.cli.train --config configs/dora_vits16_wt.yaml data.shards=/data/wt_shards": "the GPU recipe on the user's own shards",
    "torchrun --nproc_per_node 2 -m wtpipe.cli.train --config configs/tiny_cpu.yaml data.shards=demo/shards": "two training processes for minutes; tests/train/test_trainer.py runs DDP",
    "accelerate launch -m wtpipe.cli.train --config configs/dino_vits16_wt.yaml data.shards=/data/wt_shards": "the GPU recipe on the user's own shards",
    "wtpipe export runs/dino_vits16_wt/checkpoints/step-00010000": "a checkpoint of a longer run than the tests make",
    "wtpipe train --config configs/dora_vits16_wt.yaml data.shards=/data/wt_shards": "the GPU recipe on the user's own shards",
    "wtpipe train --config configs/dora_tiny_cpu.yaml data.shards=demo/shards": MINUTES,
    "wtpipe eval seg --config configs/seg_upernet_ade20k.yaml data.root=/data/ADEChallengeData2016 "
    "model.weights=runs/dora_vits16_wt": "ADE20K and a GPU",
    "wtpipe eval seg --config configs/seg_linear_ade20k.yaml data.root=... model.weights=...": "placeholders for the user's ADE20K folder and weights",
    "torchrun --nproc_per_node 8 -m wtpipe.cli.main eval seg --config configs/seg_upernet_ade20k.yaml ...": "8 GPUs",
    "accelerate launch --num_processes 8 -m wtpipe.cli.main eval seg --config configs/seg_upernet_ade20k.yaml ...": "8 GPUs",
    "wtpipe submit jobs/seg_upernet_ade20k.yaml --after JOBID": "submits to a Slurm cluster (a job id to wait for)",
    "wtpipe eval det --config configs/det_maskrcnn_coco.yaml data.root=/data/coco model.weights=runs/dora_vits16_wt": "COCO and a GPU",
    "wtpipe eval det --config configs/det_tiny_cpu.yaml data.root=~/.cache/wtpipe/media/evaldata-v3/det "
    "model.weights=demo/run --baseline": "4.5 minutes of Mask R-CNN on 2 CPU cores; tests/finetune/test_det.py runs it",
    "wtpipe submit jobs/det_maskrcnn_coco.yaml --after JOBID": "submits to a Slurm cluster (a job id to wait for)",
    "wtpipe demo --out demo": "the demo (minutes); .ci/run runs it after the tests",
    "wtpipe demo --out demo optim.epochs=10": "the demo, longer",
    "wtpipe demo --out demo --no-reference": "the demo (minutes); tests/test_demo.py runs it",
    "python benchmarks/learning.py [--seeds 3] [--steps 100] [--out DIR] [--device cuda]": "a synopsis of a 14-minute benchmark",
    "python benchmarks/learning.py --seeds 1 --methods dora optim.lr=0.008": "a benchmark, minutes",
    "wtpipe submit train --config configs/dino_vits16_wt.yaml data.shards=/data/wt run.output_dir=/runs/dino "
    "--nodes 2 --gpus-per-node 8 --cpus-per-task 10 --time 1440 --partition gpu --account proj": "submits to a Slurm cluster with GPUs",
    "wtpipe submit train --config configs/tiny_cpu.yaml data.shards=demo/shards --local --cpu": MINUTES,
    "wtpipe submit eval knn --weights /runs/dino --data /data/scenes --after 4242": "submits to a Slurm cluster",
    "wtpipe submit ingest /data/videos --out /data/wt --array-size 32 --cpus-per-task 8 --fps 4": "submits to a Slurm cluster",
    "wtpipe submit jobs/dora_vits16_wt.yaml --time 240 run.max_steps=1000": "submits to a Slurm cluster",
}


def commands(page: str) -> list[str]:
    """The commands of a page, in order: each line of a ``bash`` block (continuation lines
    joined, comments dropped), and each ``python`` block whole, as ``python -c`` would run it."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as handle:
        text = handle.read()
    found = []
    for kind, block in re.findall(r"```(bash|python)\n(.*?)```", text, re.S):
        if kind == "python":
            found.append(PYTHON + block)
            continue
        for line in re.sub(r"\\\n\s*", "", block).splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                found.append(" ".join(command.split()))
    return found


PYTHON = "# python\n"  # marks a python block among the commands
SHOWN = [(page, command) for page in PAGES for command in commands(page)]
ALL = [(p, c) for i, (p, c) in enumerate(SHOWN) if c not in {c for _, c in SHOWN[:i]}]  # once each


def test_every_command_not_run_is_still_on_a_page():
    shown = {command for _, command in ALL}
    assert [c for c in NOT_RUN if c not in shown] == []


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, reference):
    """A folder as after ``wtpipe demo`` and the README's trainings, the repository's files beside."""
    root = tmp_path_factory.mktemp("readme")
    for name in ("configs", "jobs", "tools", "benchmarks", "wtpipe"):
        os.symlink(os.path.join(ROOT, name), root / name)
    ShardBuilder(
        [os.path.join(ROOT, "wtpipe", "assets", "vtest.mp4")],
        str(root / "demo" / "shards"),
        BuildSettings(),
        progress=False,
    ).run()
    shutil.copytree(reference, root / "runs" / "dino_vits16_wt")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "wtpipe.cli.train",
            "--config",
            "configs/dora_tiny_cpu.yaml",
            "data.shards=demo/shards",
            "run.output_dir=runs/dora_tiny_cpu",
            "optim.epochs=1",
            "optim.steps_per_epoch=2",
            "data.num_workers=0",
        ],
        cwd=root,
        env=ENV,
        check=True,
        capture_output=True,
    )
    os.symlink(root / "runs" / "dora_tiny_cpu", root / "demo" / "run")
    return root


@pytest.mark.slow
@pytest.mark.parametrize(
    "page, command", [(p, c) for p, c in ALL if c not in NOT_RUN], ids=lambda v: v[:60]
)
def test_the_command_runs_as_pasted(workspace, page, command):
    env = {**ENV, "PATH": os.path.dirname(sys.executable) + os.pathsep + ENV["PATH"]}
    argv = (
        [sys.executable, "-c", command] if command.startswith(PYTHON) else ["bash", "-c", command]
    )
    result = subprocess.run(
        argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{page}: {command}\n{result.stderr[-3000:]}"
