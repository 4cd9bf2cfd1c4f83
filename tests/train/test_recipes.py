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


def test_the_swav_recipe_holds_the_official_scripts_values():
    """configs/swav_vits16_wt.yaml against facebookresearch/swav's
    scripts/swav_400ep_bs256_pretrain.sh and main_swav.py (a ViT-S/16 in place of the ResNet-50)."""
    config = load_config(TrainConfig, "configs/swav_vits16_wt.yaml")
    d, m, o, method = config.data, config.model, config.optim, config.method
    assert (d.global_size, d.global_scale, d.local_crops, d.local_size, d.local_scale) == (
        224,
        (0.14, 1.0),
        6,
        96,
        (0.05, 0.14),
    )
    assert (d.photometric, d.local_flip, d.batch_size) == ("swav", True, 64)
    assert (m.out_dim, m.bottleneck_dim, m.hidden_dim, m.use_bn_in_head) == (3000, 128, 2048, True)
    assert (method.name, method.temperature, method.epsilon, method.sinkhorn_iterations) == (
        "swav",
        0.1,
        0.05,
        3,
    )
    assert (method.crops_for_assign, method.queue_length, method.epoch_queue_starts) == (
        (0, 1),
        3840,
        15,
    )
    assert method.freeze_prototypes_steps == 5005
    assert (o.optimizer, o.lr, o.min_lr, o.warmup_epochs, o.epochs) == ("lars", 0.6, 6e-4, 0, 400)
    assert (o.weight_decay, o.weight_decay_end, o.clip_grad) == (1e-6, 1e-6, 0.0)
