"""The official DoRA training loop, step for step, against wtpipe's Trainer.

The reference below is re-derived from reading DoRA_ICLR24's ``main.py`` (``train_one_epoch``,
``DINOLoss``), ``utils.py`` (``MultiCropWrapper`` with ``return_track``, ``MOT``,
``clip_gradients``, ``cancel_gradients_last_layer``, ``get_params_groups``, ``cosine_scheduler``)
and ``vision_transformer.py`` (blocks that return their attention, queries and keys; DINO's
position-embedding interpolation; the weight-normalised ``DINOHead``). It shares no code with
wtpipe's training path: its own networks, run one frame at a time as the official wrapper does,
its own object masks, loss with the official accumulators, schedules, clipping, last-layer
freeze and EMA, and ``torch.optim.AdamW`` on the official two parameter groups. One process, so
the official centre's all-reduce is the identity.

wtpipe's ``Trainer`` runs the paper recipe (``configs/dora_vits16_wt.yaml``: ``method.faithful``,
the recipe's views, ViT-S/16) scaled down to 6 steps on real shards: 2 clips of 2 frames, 2 local
crops, drop-path 0, 3 epochs of 2 steps, so the steps cross the lr warm-up (4 steps), the teacher
temperature warm-up (2 epochs) and the last-layer freeze (1 epoch). Its code runs unchanged; the
test only records what passes (each step's batch and the heads it drew, the gradients the
optimizer receives, the weights after each step). The reference starts from the same initial
weights, replays the same rendered batches with the same heads, and after every step the loss,
the object masks, the centre, the clipped gradients and every student and teacher tensor must
agree. Both sides compute in float32; the tolerances are float32 noise grown over six steps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wtpipe.config import load_config
from wtpipe.train.config import TrainConfig
from wtpipe.train.trainer import Trainer

from ..ops.test_sinkhorn import probability_domain

pytestmark = pytest.mark.slow

STEPS, PER_EPOCH, CLIPS, FRAMES, LOCALS, OBJECTS, PATCH = 6, 2, 2, 2, 2, 3, 16
OVERRIDES = [
    "model.drop_path_rate=0",
    "model.out_dim=1024",
    f"data.batch_size={CLIPS}",
    f"data.clip_frames={FRAMES}",
    "data.frame_gap=2",
    f"data.local_crops={LOCALS}",
    "data.num_workers=0",
    "data.augment_on=loader",
    f"optim.epochs={STEPS // PER_EPOCH}",
    f"optim.steps_per_epoch={PER_EPOCH}",
    "optim.warmup_epochs=2",
    "optim.lr=0.005",
    "optim.clip_grad=0.3",
    "method.teacher_temp=0.06",
    "method.warmup_teacher_temp_epochs=2",
    "run.mixed_precision=no",
    "run.checkpoint_every=1000",
    "run.log_every=1",
]


# -- the official networks -----------------------------------------------------------------
class Block(nn.Module):
    """A pre-norm block whose attention is computed in full and returned with q and k."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, n, c = x.shape
        q, k, v = (
            self.attn.qkv(self.norm1(x))
            .reshape(b, n, 3, self.heads, c // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        attn = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(dim=-1)
        x = x + self.attn.proj((attn @ v).transpose(1, 2).reshape(b, n, c))
        x = x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))
        return x, attn.detach(), q.detach(), k.detach()


class ViT(nn.Module):
    """ViT-S/16 as the official ``VisionTransformer``: the last block's attention, q and k come out."""

    def __init__(self, dim: int = 384, depth: int = 12, heads: int = 6) -> None:
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, PATCH, PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 197, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def pos_encoding(self, side: int) -> torch.Tensor:
        """``interpolate_pos_encoding``: bicubic with the scale factor (grid + 0.1) / 14."""
        if side == 224:
            return self.pos_embed
        grid = side // PATCH + 0.1
        patches = self.pos_embed[:, 1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
        patches = F.interpolate(patches, scale_factor=(grid / 14, grid / 14), mode="bicubic")
        return torch.cat(
            [self.pos_embed[:, :1], patches.permute(0, 2, 3, 1).reshape(1, -1, patches.shape[1])], 1
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], 1) + self.pos_encoding(
            x.shape[-1]
        )
        for block in self.blocks:
            tokens, attn, q, k = block(tokens)
        tokens = self.norm(tokens)
        return tokens[:, 0], tokens, attn, q, k


class Head(nn.Module):
    """``DINOHead``: 3-layer MLP, L2 normalisation, a weight-normalised last layer (g and v)."""

    def __init__(
        self, out_dim: int, dim: int = 384, hidden: int = 2048, bottleneck: int = 256
    ) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, bottleneck),
        )
        self.last_layer = nn.Module()
        self.last_layer.weight_g = nn.Parameter(torch.ones(out_dim, 1))
        self.last_layer.weight_v = nn.Parameter(torch.zeros(out_dim, bottleneck))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, v = self.last_layer.weight_g, self.last_layer.weight_v
        return F.linear(
            F.normalize(self.mlp(x), dim=-1, p=2), v * (g / v.norm(dim=1, keepdim=True))
        )


class Wrapper(nn.Module):
    """``MultiCropWrapper`` of the official code: every crop is (B, T, 3, S, S); frame by frame,
    the crops of one size concatenated, backbone then head; with ``track`` also the patches,
    attention, queries and keys of every frame (T, ...)."""

    def __init__(self, out_dim: int) -> None:
        super().__init__()
        self.backbone, self.head = ViT(), Head(out_dim)

    def forward(self, crops: list[torch.Tensor], track: bool = False) -> Any:
        outputs, patches, attns, queries, keys = [], [], [], [], []
        for t in range(crops[0].shape[1]):
            cls, tokens, attn, q, k = self.backbone(torch.cat(crops)[:, t])
            outputs.append(self.head(cls))
            patches.append(tokens[:, 1:]), attns.append(attn), queries.append(q), keys.append(k)
        if track:
            return (
                torch.stack(outputs),
                torch.stack(patches),
                torch.stack(attns),
                torch.stack(queries),
                torch.stack(keys),
            )
        return torch.stack(outputs)


def official_names(key: str) -> str:
    """wtpipe's state-dict name of a tensor -> the reference network's."""
    return (
        key.replace("backbone.vit.", "backbone.")
        .replace("last_layer.parametrizations.weight.original0", "last_layer.weight_g")
        .replace("last_layer.parametrizations.weight.original1", "last_layer.weight_v")
    )


# -- the official computations ---------------------------------------------------------------
def mot(
    attn: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor,
    patches: torch.Tensor,
    images: torch.Tensor,
    heads: list[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``utils.MOT`` with the heads given: (masked views (k, B, T, 3, S, S), masks (k, B, T, S, S))."""
    grid = images.shape[-1] // PATCH
    first_query = query[0][:, :, 1:].permute(0, 2, 1, 3).flatten(2)  # b h n d -> b n (h d)
    prototypes = torch.einsum("bkn,bnd->bkd", attn[0][:, heads, 0, 1:], first_query)
    features = patches[0] / patches[0].norm(dim=-1, keepdim=True)
    assignment = features @ prototypes.transpose(-2, -1)
    plan = torch.from_numpy(
        probability_domain(assignment.numpy(), 0.05, 30)
    ).float()  # official: float32
    refined = plan.transpose(-2, -1) @ features
    masked = torch.zeros(len(heads), *images.shape)
    masks = torch.zeros(len(heads), *images.shape[:2], *images.shape[-2:], dtype=torch.bool)
    for t in range(query.shape[0]):
        keys = key[t].permute(0, 2, 1, 3).flatten(2)[:, 1:]
        for i in range(len(heads)):
            tube = (
                (refined[:, i].unsqueeze(1) @ keys.transpose(-2, -1)) * refined.shape[2] ** -0.5
            ).softmax(-1)
            tube = tube.squeeze(1)
            tube = tube / tube.norm(dim=-1, keepdim=True)
            binary = (
                (tube > tube.mean()).float().reshape(-1, 1, grid, grid)
            )  # the mean over the whole batch
            binary = F.interpolate(binary, scale_factor=PATCH, mode="nearest")
            masked[i, :, t] = images[:, t] * binary
            masks[i, :, t] = binary[:, 0] > 0
    return masked, masks


class OfficialLoss:
    """``DINOLoss`` of main.py (one global crop, L local crops), its accumulators as they are."""

    def __init__(self, out_dim: int, temps: np.ndarray, locals_: int) -> None:
        self.center = torch.zeros(1, out_dim)
        self.temps, self.locals_ = temps, locals_

    def __call__(
        self,
        student_local: torch.Tensor,
        student_global: list[torch.Tensor],
        teacher: torch.Tensor,
        epoch: int,
    ) -> torch.Tensor:
        frame_loss, total_loss = 0, 0
        frames = teacher.shape[0]
        for masked_views in student_global:
            for t in range(frames):
                local = (student_local[t] / 0.1).chunk(self.locals_)
                masked = masked_views[t] / 0.1
                q = F.softmax((teacher[t] - self.center) / self.temps[epoch], dim=-1).detach()
                mask_loss = torch.sum(-q * F.log_softmax(masked, dim=-1), dim=-1).mean()
                local_terms = [
                    torch.sum(-q * F.log_softmax(v, dim=-1), dim=-1).mean()
                    for i, v in enumerate(local)
                    if i != 0
                ]  # "v == iq" with iq = 0 skips the first
                frame_loss += (mask_loss + sum(local_terms) / len(local_terms)) * 0.5
            frame_loss /= frames  # not reset between objects
            total_loss += frame_loss
        total_loss /= len(student_global)
        with torch.no_grad():
            flat = teacher.flatten(0, 1)
            self.center = self.center * 0.9 + flat.sum(0, keepdim=True) / len(flat) * 0.1
        return total_loss


def cosine_scheduler(
    base: float, final: float, epochs: int, per_epoch: int, warmup_epochs: int = 0
) -> np.ndarray:
    warmup = np.linspace(0, base, warmup_epochs * per_epoch) if warmup_epochs else np.array([])
    iters = np.arange(epochs * per_epoch - len(warmup))
    return np.concatenate(
        (warmup, final + 0.5 * (base - final) * (1 + np.cos(np.pi * iters / len(iters))))
    )


# -- the run ------------------------------------------------------------------------------
def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def recorded(train_shards, tmp_path_factory):
    """wtpipe's 6 steps, with what passed through them recorded."""
    out = tmp_path_factory.mktemp("parity") / "run"
    config = load_config(
        TrainConfig,
        "configs/dora_vits16_wt.yaml",
        [f"data.shards={train_shards}", f"run.output_dir={out}", *OVERRIDES],
    )
    trainer = Trainer(config)
    method = trainer.method
    steps: list[dict[str, Any]] = []
    record = {
        "student": clone_state(method.student),
        "teacher": clone_state(method.teacher),
        "base_lr": trainer.base_lr,
        "config": config,
        "steps": steps,
    }
    loss_of, masks_of = method.loss, method.masks

    def loss(student, batch, epoch):
        step = {
            "batch": [x.clone() for x in batch],
            "epoch": epoch,
            "teacher_before": clone_state(method.teacher),
        }
        steps.append(step)
        value, scalars = loss_of(student, batch, epoch)
        step.update(loss=value.item(), center=method.criterion.center.clone())
        return value, scalars

    def masks(globals_, heads=None):
        found = masks_of(globals_, heads)
        if "heads" not in steps[-1]:  # the training pass (pictures at the end call it again)
            steps[-1].update(heads=found.heads.tolist(), masks=found.masks.clone())
        return found

    def before_update(optimizer, args, kwargs):
        names = {id(p): n for n, p in method.student.named_parameters()}
        steps[-1]["grads"] = {
            names[id(p)]: None if p.grad is None else p.grad.clone()
            for group in optimizer.param_groups
            for p in group["params"]
        }
        steps[-1]["lr"] = [g["lr"] for g in optimizer.param_groups]
        steps[-1]["wd"] = optimizer.param_groups[0]["weight_decay"]

    method.loss, method.masks = loss, masks
    trainer.optimizer.optimizer.register_step_pre_hook(before_update)
    trainer.optimizer.optimizer.register_step_post_hook(
        lambda *_: steps[-1].update(student=clone_state(method.student))
    )
    result = trainer.run()
    assert result["step"] == STEPS and len(steps) == STEPS
    for step, after in zip(steps, steps[1:]):
        step["teacher"] = after["teacher_before"]
    steps[-1]["teacher"] = clone_state(method.teacher)
    return record


def close(
    ours: torch.Tensor, theirs: torch.Tensor, what: str, rtol: float = 1e-5, atol: float = 1e-6
) -> None:
    scale = float(theirs.abs().max()) if theirs.numel() else 0.0
    torch.testing.assert_close(
        ours, theirs, rtol=rtol, atol=atol * max(scale, 1.0), msg=lambda m: f"{what}: {m}"
    )


def test_every_step_equals_the_official_loop(recorded):
    config = recorded["config"]
    o, m = config.optim, config.method
    torch.manual_seed(0)
    student, teacher = Wrapper(config.model.out_dim), Wrapper(config.model.out_dim)
    student.load_state_dict({official_names(k): v for k, v in recorded["student"].items()})
    teacher.load_state_dict(
        student.state_dict()
    )  # the official teacher starts as a copy of the student
    teacher.requires_grad_(False)
    assert all(
        torch.equal(teacher.state_dict()[official_names(k)], v)
        for k, v in recorded["teacher"].items()
    )
    regularized = [
        p for n, p in student.named_parameters() if not (n.endswith(".bias") or p.ndim == 1)
    ]
    not_regularized = [
        p for n, p in student.named_parameters() if n.endswith(".bias") or p.ndim == 1
    ]
    optimizer = torch.optim.AdamW(
        [{"params": regularized}, {"params": not_regularized, "weight_decay": 0.0}]
    )
    lr = cosine_scheduler(o.lr * CLIPS / 256.0, o.min_lr, o.epochs, PER_EPOCH, o.warmup_epochs)
    wd = cosine_scheduler(o.weight_decay, o.weight_decay_end, o.epochs, PER_EPOCH)
    momentum = cosine_scheduler(o.momentum_teacher, 1, o.epochs, PER_EPOCH)
    temps = np.concatenate(
        (
            np.linspace(m.warmup_teacher_temp, m.teacher_temp, m.warmup_teacher_temp_epochs),
            np.ones(o.epochs - m.warmup_teacher_temp_epochs) * m.teacher_temp,
        )
    )
    criterion = OfficialLoss(config.model.out_dim, temps, LOCALS)
    assert recorded["base_lr"] == pytest.approx(lr[o.warmup_epochs * PER_EPOCH - 1])
    frozen = unfrozen = 0
    for it, step in enumerate(recorded["steps"]):
        epoch = it // PER_EPOCH
        assert step["epoch"] == epoch
        for i, group in enumerate(optimizer.param_groups):
            group["lr"] = lr[it]
            if i == 0:
                group["weight_decay"] = wd[it]
        assert step["lr"] == pytest.approx([lr[it]] * 2, rel=1e-12) and step["wd"] == pytest.approx(
            wd[it], rel=1e-12
        )
        globals_, locals_ = step["batch"]
        images = [globals_, *locals_.unbind(2)]  # [global (B, T, ...), local_1, ..., local_L]
        teacher_out, patches, attn, query, key = teacher(images[:1], track=True)
        masked, masks = mot(attn, query, key, patches, images[0], step["heads"])
        assert torch.equal(step["masks"], masks.permute(1, 2, 0, 3, 4)), f"step {it}: object masks"
        student_masked = [student([masked[i]]) for i in range(len(masked))]
        student_local = student(images[1:])
        loss = criterion(student_local, student_masked, teacher_out, epoch)
        close(torch.tensor(step["loss"]), loss.detach(), f"step {it}: loss")
        close(step["center"], criterion.center, f"step {it}: centre")
        optimizer.zero_grad()
        loss.backward()
        for p in student.parameters():  # utils.clip_gradients
            if p.grad is not None:
                coef = o.clip_grad / (p.grad.norm(2) + 1e-6)
                if coef < 1:
                    p.grad.mul_(coef)
        if epoch < o.freeze_last_layer:  # utils.cancel_gradients_last_layer
            for n, p in student.named_parameters():
                if "last_layer" in n:
                    p.grad = None
        grads = dict(student.named_parameters())
        for name, grad in step["grads"].items():
            theirs = grads[official_names(name)].grad
            assert (grad is None) == (theirs is None), (
                f"step {it}: {name} gradient dropped on one side only"
            )
            if grad is not None:
                close(grad, theirs, f"step {it}: clipped gradient of {name}", atol=1e-5)
        frozen += step["grads"]["head.last_layer.parametrizations.weight.original1"] is None
        unfrozen += step["grads"]["head.last_layer.parametrizations.weight.original1"] is not None
        optimizer.step()
        with torch.no_grad():
            for q, k in zip(student.parameters(), teacher.parameters()):
                k.mul_(momentum[it]).add_((1 - momentum[it]) * q.detach())
        theirs_student, theirs_teacher = student.state_dict(), teacher.state_dict()
        for name, value in step["student"].items():
            close(
                value, theirs_student[official_names(name)], f"step {it}: student {name}", atol=1e-5
            )
        for name, value in step["teacher"].items():
            close(
                value, theirs_teacher[official_names(name)], f"step {it}: teacher {name}", atol=1e-5
            )
    assert frozen == o.freeze_last_layer * PER_EPOCH and unfrozen == STEPS - frozen
    assert (
        len({tuple(s["heads"]) for s in recorded["steps"]}) > 1
    )  # a fresh draw of heads per batch


def test_the_run_crossed_every_warm_up(recorded):
    steps = recorded["steps"]
    lrs = [s["lr"][0] for s in steps]
    assert (
        lrs[0] == 0.0 and lrs[1] < lrs[3] == pytest.approx(recorded["base_lr"]) and lrs[5] < lrs[3]
    )
    assert [s["epoch"] for s in steps] == [0, 0, 1, 1, 2, 2]
    clipped = [
        name for name, g in steps[-1]["grads"].items() if g is not None and g.norm() > 0.3 - 1e-4
    ]
    assert 0 < len(clipped) < len(steps[-1]["grads"])  # clipping reached some parameters, not all
    assert not math.isclose(steps[0]["center"].abs().sum(), 0.0)
