"""benchmarks/learning.py: its random-init floor is each run's own start, so its paired table is fair."""

from __future__ import annotations

import importlib.util
import os
import sys

from tests.train.runs import run

ROOT = os.path.join(os.path.dirname(__file__), "..")


def learning_script():
    spec = importlib.util.spec_from_file_location(
        "learning", os.path.join(ROOT, "benchmarks", "learning.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_random_init_floor_is_the_trained_runs_starting_backbone(train_shards, tmp_path):
    # in a child process: a Trainer fixes Accelerate's process-wide state (precision) for the rest of the run
    code = """
import sys, torch
from wtpipe.config import load_config
from wtpipe.models.weights import load_backbone
from wtpipe.train.config import TrainConfig
from wtpipe.train.trainer import Trainer
config = load_config(TrainConfig, sys.argv[1], sys.argv[2:])
start = Trainer(config).method.student.backbone.vit.state_dict()
floor = load_backbone("random:vit_tiny_patch16_224:2")[0].vit.state_dict()
other = load_backbone("random:vit_tiny_patch16_224:3")[0].vit.state_dict()
assert start.keys() == floor.keys() and all(torch.equal(start[k], floor[k]) for k in start)
assert not torch.equal(start["pos_embed"], other["pos_embed"])
"""
    for recipe in ("tiny_cpu.yaml", "dora_tiny_cpu.yaml"):
        run(
            [
                sys.executable,
                "-c",
                code,
                os.path.join(ROOT, "configs", recipe),
                f"data.shards={train_shards}",
                f"run.output_dir={tmp_path / recipe}",
                "run.seed=2",
            ]
        )


def test_the_paired_table_counts_seeds_above_level_and_below():
    def scores(knn: float, lost: float) -> dict[str, dict[str, float]]:
        return {
            "knn": {"top1_k20": knn},
            "discover": {"corloc_tokencut": 9.1, "corloc_lost": lost},
            "attention": {"jaccard": 10.0},
            "davis": {"J&F": 60.0},
        }

    results = {
        "random": [scores(95.0, 9.1), scores(90.0, 18.2), scores(92.0, 9.1)],
        "dora": [scores(97.0, 0.0), scores(90.0, 9.1), scores(91.0, 0.0)],
    }
    lines = learning_script().tables(results)
    assert (
        lines[2]
        == "| random init | 92.3 ± 2.5 | 9.1 ± 0.0 | 12.1 ± 5.3 | 10.0 ± 0.0 | 60.0 ± 0.0 |"
    )
    assert lines[3] == "| DoRA | 92.7 ± 3.8 | 9.1 ± 0.0 | 3.0 ± 5.3 | 10.0 ± 0.0 | 60.0 ± 0.0 |"
    paired = lines[-1].split(" | ")
    assert (
        paired[1] == "+0.3 ± 1.5 (1/1/1)"
    )  # +2, 0, -1: the same mean as the rows, a third of the spread
    assert paired[2] == "+0.0 ± 0.0 (0/3/0)" and paired[3] == "-9.1 ± 0.0 (0/0/3)"


def test_the_gpu_budget_trains_dora_with_the_paper_recipes_views_and_head(tmp_path):
    from wtpipe.config import load_config
    from wtpipe.train.config import TrainConfig

    learning = learning_script()
    paper = load_config(TrainConfig, os.path.join(ROOT, "configs", "dora_vits16_wt.yaml"))
    config = load_config(
        TrainConfig,
        learning.RECIPES["dora"],
        learning.overrides("dora", 0, 100, "shards", str(tmp_path), "cuda"),
    )
    for section, keys in (
        (
            "data",
            (
                "clip_precrop",
                "clip_precrop_scale",
                "global_interpolation",
                "global_size",
                "local_size",
                "local_crops",
                "local_flip",
            ),
        ),
        ("model", ("arch", "out_dim", "hidden_dim", "bottleneck_dim", "norm_last_layer")),
        ("method", ("faithful", "num_objects")),
    ):
        for key in keys:
            assert getattr(getattr(config, section), key) == getattr(
                getattr(paper, section), key
            ), (section, key)
    assert config.data.batch_size * config.data.clip_frames == learning.FRAMES_PER_STEP
