"""wtpipe-eval end to end on the real sample data: from a backbone written by wtpipe-train and from
random weights; the training-time schedule; evaluation never imports the trainer."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.train.runs import run, train_cmd

TASK_DATA = {"knn": "scenes", "linear": "scenes", "discover": "objects", "davis": "davis"}


def eval_cmd(task: str, weights: str, data: str, out: str, *settings: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "wtpipe.cli.eval",
        task,
        "--weights",
        weights,
        "--data",
        data,
        "--out",
        out,
        *settings,
    ]


@pytest.fixture(scope="module")
def trained(train_shards, eval_data, tmp_path_factory) -> str:
    """A tiny DINO run that evaluates itself every 6 steps."""
    out = str(tmp_path_factory.mktemp("evalrun") / "run")
    run(
        train_cmd(
            train_shards,
            out,
            "eval.every=6",
            f"eval.knn_data={eval_data}/scenes",
            f"eval.discover_data={eval_data}/objects",
            "eval.tasks=[knn,discover,attention]",
            f"eval.attention_data={eval_data}/objects/instances.json",
        )
    )
    return out


def test_training_logs_the_scheduled_evaluations_next_to_the_loss(trained):
    with open(os.path.join(trained, "scalars.csv"), newline="") as handle:
        rows = {int(r["step"]): r for r in csv.DictReader(handle)}
    assert float(rows[6]["eval_knn_top1_k20"]) > 0 and rows[6]["eval_corloc_tokencut"] != ""
    assert rows[12]["eval_corloc_lost"] != "" and rows[2]["eval_knn_top1_k20"] == ""
    assert (
        0 < float(rows[12]["eval_attention_jaccard"]) < 100
        and rows[2]["eval_attention_jaccard"] == ""
    )
    report = json.load(open(os.path.join(trained, "eval", "step-00000006", "knn", "metrics.json")))
    assert report["weights"]["step"] == 6 and report["metrics"]["top1_k20"] == float(
        rows[6]["eval_knn_top1_k20"]
    )


@pytest.mark.parametrize("task", list(TASK_DATA))
@pytest.mark.parametrize("weights", ["trained", "random"])
def test_every_task_end_to_end(task, weights, trained, eval_data, tmp_path):
    source = trained if weights == "trained" else "random:vit_tiny_patch16_224:0"
    out = str(tmp_path / task)
    # davis at 240 px: the 480-px default runs the same code on 4 x the pixels
    settings = {"linear": ["epochs=20"], "davis": ["short_side=240"]}.get(task, [])
    result = run(
        eval_cmd(
            task,
            source,
            os.path.join(eval_data, TASK_DATA[task]),
            out,
            "cache_dir=" + str(tmp_path),
            *settings,
        )
        if task in ("knn", "linear")
        else eval_cmd(task, source, os.path.join(eval_data, TASK_DATA[task]), out, *settings)
    )
    report = json.load(open(os.path.join(out, "metrics.json")))
    assert (
        report["task"] == task
        and report["skipped"] == []
        and f"-> {out}/metrics.json" in result.stdout
    )
    assert report["weights"]["step"] == (12 if weights == "trained" else -1)
    metrics = report["metrics"]
    if task in ("knn", "linear"):
        assert os.path.exists(os.path.join(out, "confusion.png")) and report["val_images"] == 42
        assert 100 / 7 <= metrics["top1" if task == "linear" else "top1_k20"] <= 100  # 7 classes
    elif task == "discover":
        assert report["images"] == 11 and set(metrics) == {"corloc_tokencut", "corloc_lost"}
        assert len(os.listdir(os.path.join(out, "pictures"))) == 11
    else:
        assert set(report["per_sequence"]) == {"cup", "box"} and 0 <= metrics["J&F"] <= 100
        assert len(os.listdir(os.path.join(out, "davis", "cup"))) == 25
        assert os.path.exists(os.path.join(out, "strip_cup.png"))


def test_features_are_cached_and_reused(eval_data, tmp_path):
    cache = tmp_path / "cache"
    first = run(
        eval_cmd(
            "knn",
            "random:vit_tiny_patch16_224:0",
            f"{eval_data}/scenes",
            str(tmp_path / "a"),
            f"cache_dir={cache}",
        )
    )
    files = sorted(os.listdir(cache))
    assert len(files) == 2  # train and val
    stamps = [os.stat(cache / f).st_mtime_ns for f in files]
    second = run(
        eval_cmd(
            "knn",
            "random:vit_tiny_patch16_224:0",
            f"{eval_data}/scenes",
            str(tmp_path / "b"),
            f"cache_dir={cache}",
        )
    )
    assert [os.stat(cache / f).st_mtime_ns for f in files] == stamps
    assert (
        first.stdout.splitlines()[-1].split("(")[0] == second.stdout.splitlines()[-1].split("(")[0]
    )
    other = run(
        eval_cmd(
            "knn",
            "random:vit_tiny_patch16_224:1",
            f"{eval_data}/scenes",
            str(tmp_path / "c"),
            f"cache_dir={cache}",
        )
    )
    assert len(os.listdir(cache)) == 4 and other.returncode == 0  # other weights: new features


def test_bad_input_is_named_and_skipped(eval_data, tmp_path):
    data = tmp_path / "scenes"
    shutil.copytree(os.path.join(eval_data, "scenes"), data)
    broken = data / "val" / "cup" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    result = run(
        eval_cmd(
            "knn", "random:vit_tiny_patch16_224:0", str(data), str(tmp_path / "out"), "cache_dir="
        )
    )
    assert f"{broken}: unreadable image, skipped" in result.stderr
    report = json.load(open(tmp_path / "out" / "metrics.json"))
    assert report["skipped"] == [str(broken)] and report["val_images"] == 42
    (tmp_path / "cwd").mkdir()
    for args, message in (
        (["knn", "--data", str(tmp_path)], "no such directory"),
        (["davis", "--data", str(data)], "ImageSets/2017/val.txt"),
        (["knn", "--data", str(data), "k=3"], "unknown config key 'k'"),
    ):
        bad = subprocess.run(
            [sys.executable, "-m", "wtpipe.cli.eval", args[0], "--weights", "random", *args[1:]],
            capture_output=True,
            text=True,
            cwd=tmp_path / "cwd",
        )
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
        assert (
            os.listdir(tmp_path / "cwd") == []
        )  # a failed evaluation leaves no eval/TASK folder behind


def test_evaluation_does_not_import_the_trainer_or_the_methods():
    code = (
        "import sys, wtpipe.cli.eval, wtpipe.eval.tasks; "
        "bad = [m for m in sys.modules if m.startswith(('wtpipe.train', 'wtpipe.methods'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
