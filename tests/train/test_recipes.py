"""The recipes in configs/ hold what they claim."""

from __future__ import annotations

from wtpipe.config import load_config
from wtpipe.train.config import TrainConfig


def test_the_dora_recipe_holds_the_official_scripts_values():
    """configs/dora_vits16_wt.yaml against DoRA_ICLR24's main.py, WTDataloader.py and
    pretrain.slurm.sh (the README's table of the paper recipe, row by row)."""
    config = load_config(TrainConfig, "configs/dora_vits16_wt.yaml")
    d, m, o, method = config.data, config.model, config.optim, config.method
    assert (d.clip_precrop, d.clip_precrop_scale, d.global_interpolation) == (
        300,
        (0.2, 1.0),
        "bilinear",
    )
    assert (d.global_size, d.global_scale) == (224, (0.4, 1.0))
    assert (d.local_crops, d.local_size, d.local_scale, d.local_flip) == (
        6,
        112,
        (0.05, 0.4),
        False,
    )
    assert (d.batch_size, d.clip_frames, d.frame_gap) == (
        16,
        8,
        4,
    )  # 8 frames 60 source frames apart at 4/60 fps
    assert (method.warmup_teacher_temp, method.teacher_temp, method.warmup_teacher_temp_epochs) == (
        0.04,
        0.04,
        30,
    )
    assert (o.lr, o.min_lr, o.warmup_epochs, o.epochs, o.steps_per_epoch) == (
        5e-4,
        1e-5,
        10,
        100,
        0,
    )
    assert (
        o.weight_decay,
        o.weight_decay_end,
        o.clip_grad,
        o.freeze_last_layer,
        o.momentum_teacher,
    ) == (0.04, 0.4, 3.0, 1, 0.996)
    assert (m.arch, m.out_dim, m.norm_last_layer, m.use_bn_in_head, m.drop_path_rate) == (
        "vit_small_patch16_224",
        65536,
        False,
        False,
        0.1,
    )
    assert (method.faithful, method.num_objects, method.head_choice) == (True, 3, "random")
