"""``wtpipe demo`` end to end on the bundled clip: Ctrl-C to the process group mid-training, the
re-run finishes with a report whose pictures exist, and a third run redoes nothing."""

from __future__ import annotations

import os
import re
import signal
import sys

import pytest

from tests.train.runs import ENV, logged_steps, run, start, wait_for

SHORT = [
    "optim.epochs=2",
    "optim.steps_per_epoch=4",
    "run.checkpoint_every=2",
    "run.viz_every=4",
    "run.log_every=2",
    "data.num_workers=1",
    "data.global_size=64",
    "data.local_size=32",
]


def demo_cmd(out: str) -> list[str]:
    return [sys.executable, "-m", "wtpipe.cli.main", "demo", "--out", out, *SHORT]


@pytest.mark.slow
def test_demo_interrupted_then_resumed_writes_a_complete_report(tmp_path, eval_data):
    out = str(tmp_path / "demo")
    process = start(demo_cmd(out))
    wait_for(process, os.path.join(out, "run", "checkpoints", "step-00000002"), timeout=300)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr[-2000:]
    assert "re-run the same command to continue" in stderr
    assert not os.path.exists(os.path.join(out, "report.md"))

    result = run(demo_cmd(out), env={**ENV, "MPLCONFIGDIR": str(tmp_path / "mpl")})
    assert "k-NN top-1" in result.stdout and "report" in result.stdout
    assert logged_steps(os.path.join(out, "run")) == [
        2,
        4,
        6,
        8,
    ]  # each step once across the interruption
    assert logged_steps(os.path.join(out, "reference")) == [2, 4, 6, 8]
    report = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    pictures = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert {"contact_sheet.png", "run/loss.png", "reference/loss.png", "metrics.png"} <= set(
        pictures
    )
    assert any(
        p.startswith("run/viz/step00000008-clip") for p in pictures
    )  # masks at the end of training
    assert (
        any(p.startswith("eval/trained/discover/pictures/") for p in pictures)
        and "attention_voc.png" in pictures
    )
    assert all(os.path.getsize(os.path.join(out, p)) > 1000 for p in pictures)
    assert re.search(r"\| k-NN top-1 \(k=20\), scenes \| \d+\.\d \| \d+\.\d \| \d+\.\d \|", report)

    scored = [
        os.path.join(out, "eval", w, t, "metrics.json")
        for w in ("trained", "reference", "random")
        for t in ("knn", "discover", "attention")
    ]
    stamps = [os.stat(p).st_mtime_ns for p in scored]
    again = run(demo_cmd(out), env={**ENV, "MPLCONFIGDIR": str(tmp_path / "mpl")})
    assert [os.stat(p).st_mtime_ns for p in scored] == stamps  # nothing scored twice
    assert logged_steps(os.path.join(out, "run")) == [2, 4, 6, 8]
    assert again.stdout.splitlines()[1:5] == result.stdout.splitlines()[1:5]  # the same numbers


def test_report_names_the_methods_and_compares_the_loss_without_koleo_with_ln_k(tmp_path):
    from wtpipe.config import load_config
    from wtpipe.demo import run as demo
    from wtpipe.train.config import TrainConfig

    dora = load_config(TrainConfig, "configs/dora_tiny_cpu.yaml", [])
    dino = load_config(TrainConfig, "configs/tiny_cpu.yaml", ["method.koleo=1.0"])
    for folder, row in (
        ("run", "100,3.5,0.2,0.0625,\n"),
        ("reference", "100,5.2,0.2,0.125,-0.25\n"),
    ):
        os.makedirs(tmp_path / folder)
        (tmp_path / folder / "scalars.csv").write_text(
            "step,loss,teacher_entropy,dims_used,koleo\n" + row
        )
    scores = {
        "trained": (92.86, 9.1, 9.1, 8.0),
        "reference": (100.0, 9.1, 0.0, 14.5),
        "random": (95.24, 9.1, 9.1, 9.7),
    }
    metrics = {
        name: {
            "knn": {"top1_k20": k},
            "discover": {"corloc_tokencut": t, "corloc_lost": lost},
            "attention": {"jaccard": j},
        }
        for name, (k, t, lost, j) in scores.items()
    }
    train = {"trained": {"collapsed": []}, "reference": {"collapsed": []}}
    result = demo.DemoResult(
        str(tmp_path),
        train,
        metrics,
        {"tracked masks": [], "metrics": ["m.png"]},
        configs={"trained": dora, "reference": dino},
    )
    report = open(demo.write_report(result), encoding="utf-8").read()
    first = report.split("\n\n")[
        1
    ]  # the paragraph after the title: what happened, is it expected, what next
    assert first.startswith("This demo ingested the bundled clip `vtest.mp4`")
    assert (
        "pretrained DoRA (vit_tiny_patch16_224, 100 steps, batch 4 clips of 4 frames) on them"
        in first
    )
    assert (
        "That is expected at this budget: DoRA finds its objects in the teacher's [CLS] attention"
        in first
    )
    assert (
        "The reference run, DINO (vit_tiny_patch16_224, 100 steps, batch 8 images, KoLeo 1), is the tiny "
        "recipe that does learn here"
    ) in first
    assert (
        "Next: train DoRA as the paper does" in first and "python benchmarks/learning.py" in first
    )
    assert (
        "last logged loss 3.500 against ln K = 5.545" in report
    )  # no KoLeo column: the loss as logged
    assert (
        "last logged loss 5.450 against ln K = 5.545" in report
        and "KoLeo term adds -0.250" in report
    )
    assert (
        "Trained: level with random init on CorLoc TokenCut, CorLoc LOST; below random init on "
        "k-NN top-1 (k=20), scenes (-2.4), [CLS] attention Jaccard (-1.7)." in report
    )
    assert (
        "Reference: above random init on k-NN top-1 (k=20), scenes (+4.8), [CLS] attention Jaccard (+4.8); "
        "level with random init on CorLoc TokenCut; below random init on CorLoc LOST (-9.1)."
        in report
    )
    assert "| metric | trained (DoRA) | reference (DINO + KoLeo) | random init |" in report
    assert "| k-NN top-1 (k=20), scenes | 92.9 | 100.0 | 95.2 |" in report
    assert "## Tracked masks" not in report and "![metrics](m.png)" in report
    assert f"## Metrics\n\n{demo.CAPTIONS['metrics']}\n\n![metrics](m.png)" in report
    assert set(demo.report_pictures(str(tmp_path), {})) <= set(
        demo.CAPTIONS
    )  # every picture the report shows has one


def test_attention_sheets_show_the_first_image_and_where_each_run_rose_most(tmp_path):
    import json

    from PIL import Image

    from wtpipe.demo import run as demo

    per_image = {
        "trained": (0.2, 0.1, 0.1),
        "reference": (0.1, 0.1, 0.3),
        "random": (0.1, 0.1, 0.1),
    }
    for name, values in per_image.items():
        folder = tmp_path / "eval" / name / "attention"
        os.makedirs(folder / "pictures")
        rows = [
            {
                "image": f"JPEGImages/{image}.jpg",
                "objects": {"a": {"jaccard": j, "head": 0}, "b": {"jaccard": j}},
            }
            for image, j in zip(("voc", "cup_0000", "box_0151"), values)
        ]
        (folder / "metrics.json").write_text(json.dumps({"per_image": rows}))
        for index, image in enumerate(("voc", "cup_0000", "box_0151")):
            Image.new("RGB", (40, 20), "gray").save(
                folder / "pictures" / f"{index:04d}_{image}.png"
            )
    names = {
        "trained": "trained (DoRA)",
        "reference": "reference (DINO + KoLeo)",
        "random": "random init",
    }
    # DoRA rose most on voc (already shown), the reference on box_0151; cup_0000 is nobody's
    assert demo.attention_sheets(str(tmp_path), names) == [
        "attention_voc.png",
        "attention_box_0151.png",
    ]
    with Image.open(tmp_path / "attention_box_0151.png") as sheet:
        assert sheet.size == (40, 16 + 3 * (20 + 16))  # a caption, then a labelled row per series
    assert (
        demo.attention_sheets(str(tmp_path), {"trained": "trained (DoRA)"}) == []
    )  # no random init: no sheet


def test_the_reference_shares_the_budget_but_not_the_method_overrides():
    from wtpipe.config import load_config
    from wtpipe.demo import run as demo
    from wtpipe.train.config import TrainConfig

    given = ["optim.epochs=2", "model.out_dim=128", "method.koleo=0", "method.name=dora"]
    config = load_config(TrainConfig, demo.REFERENCE[0], demo.reference_overrides(given))
    assert (config.optim.epochs, config.model.out_dim) == (2, 128)
    assert (config.method.name, config.method.koleo) == ("dino", 1.0)


def test_method_name_picks_that_methods_tiny_recipe():
    from wtpipe.demo import run as demo

    assert demo.recipe_for([]).endswith("dora_tiny_cpu.yaml")
    assert demo.recipe_for(["optim.epochs=2", "method.name=swav"]).endswith("swav_tiny_cpu.yaml")
    assert demo.recipe_for(["method.name=dino"]).endswith("tiny_cpu.yaml")
    with pytest.raises(ValueError, match="method.name=byol: the demo trains dino, dora, swav"):
        demo.recipe_for(["method.name=byol"])


@pytest.mark.slow
def test_a_swav_demo_trains_scores_and_reports_swav(tmp_path, eval_data):
    """``wtpipe demo method.name=swav``: SwAV's tiny recipe, its codes in the report and loss.png."""
    out = str(tmp_path / "demo")
    result = run([*demo_cmd(out), "--no-reference", "method.name=swav"])
    assert "trained: SwAV (vit_tiny_patch16_224, 8 steps, batch 8 images)" in result.stdout
    report = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert "| metric | trained (SwAV) | random init |" in report
    assert re.search(
        r"- code entropy 0\.\d\d ln K, prototypes picked by the last batch's codes", report
    )
    assert os.path.exists(os.path.join(out, "run", "loss.png"))
