"""DoRA as a method plug-in: discover objects in the teacher's [CLS] attention on frame 0, track
them through the clip, distil the object-masked views; the loss is ``wtpipe.losses.dora.DoRALoss``
(its docstring has the formula and the official code's quirks)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from wtpipe.data.loader import ClipDataset, stack_shared
from wtpipe.data.transforms import ClipViews, PlannedClips
from wtpipe.losses.dora import DoRALoss
from wtpipe.methods.base import RunSections
from wtpipe.methods.dino import DINOMethod, distillation_settings
from wtpipe.ops import objects


class Discovery(NamedTuple):
    logits: torch.Tensor  # teacher outputs (T, B, K)
    masks: torch.Tensor  # (B, T, k, S, S) bool
    heads: torch.Tensor  # the k heads used (empty when all heads are clustered)
    attention: torch.Tensor  # frame 0's [CLS] attention of every head (B, H, h, w)
    tracks: objects.Tracks  # prototypes, refined prototypes, tracked maps, patch masks


class DoRAMethod(DINOMethod):
    """DoRA: discover objects on frame 0, track them through the clip, distil masked views.

    The networks, device placement, export and checkpointed state are DINO's; the views, the
    teacher's object masks and the loss are DoRA's.
    """

    display_name = "DoRA"
    scalar_names = (*DINOMethod.scalar_names, "mask_fraction")

    def __init__(self, config: RunSections) -> None:
        super().__init__(config)
        model, method = config.model, config.method
        self.criterion = DoRALoss(
            model.out_dim, **distillation_settings(method), faithful=method.faithful
        )
        self.objects = method.num_objects
        self.head_choice = method.head_choice
        self.epsilon, self.iterations = method.sinkhorn_epsilon, method.sinkhorn_iterations
        if self.objects > self.teacher.backbone.num_heads:
            raise ValueError(
                f"method.num_objects={self.objects} exceeds the {self.teacher.backbone.num_heads} "
                f"heads of {model.arch}"
            )

    def views(self, planned: bool = False) -> ClipViews:
        return ClipViews(self.spec, planned)

    def collate(
        self, items: list[tuple[torch.Tensor, torch.Tensor]] | list[PlannedClips]
    ) -> tuple[torch.Tensor, torch.Tensor] | PlannedClips:
        if isinstance(items[0], PlannedClips):
            return PlannedClips.cat(items)
        return stack_shared([g for g, _ in items]), stack_shared([loc for _, loc in items])

    def write_pictures(self, dataset: ClipDataset, directory: str, step: int) -> list[str]:
        from wtpipe.methods.dora_viz import write_mask_pngs

        return write_mask_pngs(self, dataset, directory, clips=2, prefix=f"step{step:08d}")

    @torch.no_grad()
    def masks(self, globals_: torch.Tensor, heads: torch.Tensor | None = None) -> Discovery:
        """Teacher pass over every frame: its outputs, the tracked object masks, the attention used.

        ``heads`` forces the heads (parity tests); by default they are drawn as ``head_choice`` says.
        """
        batch, frames = globals_.shape[:2]
        backbone = self.teacher.backbone
        cls, patches, last = backbone.forward_with_attention(globals_.flatten(0, 1))
        logits = self.teacher.head(cls).reshape(batch, frames, -1).transpose(0, 1)
        size = globals_.shape[-2:]
        grid = (size[0] // backbone.patch_size, size[1] // backbone.patch_size)
        attn = last.cls_attn.reshape(batch, frames, *last.cls_attn.shape[1:])[
            :, 0
        ]  # frame 0: (B, H, P)
        if (
            heads is None and self.head_choice == "random"
        ):  # as the official code: one draw per batch
            heads = torch.randperm(backbone.num_heads)[: self.objects]
        if heads is not None:
            maps = attn[:, heads.to(attn.device)]
        else:
            heads = torch.empty(0, dtype=torch.long)  # every head, grouped: none is singled out
            maps = objects.cluster_heads(attn, self.objects)

        def per_frame(
            x: torch.Tensor,
        ) -> torch.Tensor:  # (B*T, H, P, d) -> (B, T, P, H*d): heads concatenated
            return x.transpose(1, 2).flatten(2).reshape(batch, frames, grid[0] * grid[1], -1)

        features = patches.reshape(batch, frames, *patches.shape[1:])[:, 0]
        tracks = objects.track_objects(
            maps,
            per_frame(last.q)[:, 0],
            features,
            per_frame(last.k),
            self.epsilon,
            self.iterations,
            batch_wide=self.criterion.faithful,
        )
        pixels = objects.to_pixels(tracks.masks, grid, tuple(size))
        return Discovery(logits, pixels, heads, attn.reshape(batch, -1, *grid), tracks)

    def loss(
        self, student: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], epoch: int
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        globals_, locals_ = batch
        b, t, n_local = locals_.shape[:3]
        found = self.masks(globals_)
        # The object-major masked views in one multiplication: (k, B, T, 3, S, S), no float mask copy.
        masked = globals_.unsqueeze(0) * found.masks.permute(2, 0, 1, 3, 4).unsqueeze(3)
        out_masked, out_local = student(
            [masked.flatten(0, 2), locals_.flatten(0, 2)]
        )  # one head pass
        student_masked = out_masked.reshape(self.objects, b, t, -1).transpose(1, 2)
        student_local = out_local.reshape(b, t, n_local, -1).permute(1, 2, 0, 3)
        # Monitors pair each frame's teacher output with the student's view of its first object.
        scalars = self.monitors(found.logits.flatten(0, 1), student_masked[0].flatten(0, 1), epoch)
        loss = self.criterion(student_masked, student_local, found.logits, epoch)
        # KoLeo per frame over its masked views (every object of every clip: different content),
        # averaged over the clip's frames; a frame's object is never pushed away from itself in another frame.
        per_frame = (
            self.student.features.reshape(self.objects, b, t, -1).transpose(0, 2).flatten(1, 2)
        )
        return self.add_koleo(
            loss,
            {**scalars, "mask_fraction": found.masks.float().mean()},
            per_frame.unbind(0),
            torch.mean,
        )
