"""SwAV as a method plug-in: online clustering by swapped prediction (Caron et al., NeurIPS 2020).

Faithful to facebookresearch/swav (``main_swav.py``, ``src/resnet50.py``), on a ViT:

- the network: backbone [CLS] -> projection MLP (Linear, BatchNorm, ReLU, Linear) -> L2-normalised
  embedding z -> prototypes, a linear layer without bias whose rows are L2-normalised again
  before every step, so the scores are cosine similarities;
- the codes: for each view in ``crops_for_assign`` (the two global views), Sinkhorn-Knopp on the
  detached scores (``wtpipe.ops.sinkhorn``, 3 iterations, epsilon 0.05, without gradient, in
  float64, each prototype's total summed over every rank);
- the loss: every other view (global and local) predicts those codes: the cross-entropy of the
  codes with the softmax of its scores at temperature 0.1, averaged over the other views and then
  over the assigned views;
- the queue: from ``epoch_queue_starts`` on, the embeddings of the assigned views of the last
  ``queue_length`` images (over all ranks) are kept; once full, their scores under the current
  prototypes join the Sinkhorn problem, so that small batches still spread over the prototypes;
- the prototypes get no update during the first ``freeze_prototypes_steps`` steps.

Where the code and the paper differ the code is followed: the queue is filled after it is used
(a batch never sees itself in it), and it enters only once full.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wtpipe.data.transforms import view_spec
from wtpipe.methods.base import BackboneWithHead, MultiCropMethod, RunSections
from wtpipe.models.vit import ViTBackbone
from wtpipe.ops.dist import gather, world
from wtpipe.ops.monitors import code_monitors, feature_monitors
from wtpipe.ops.sinkhorn import sinkhorn


class SwAVHead(nn.Module):
    """Projection MLP, L2 normalisation, prototypes. Returns ``[z | scores]`` side by side (N,
    feat_dim + K), so that :class:`BackboneWithHead` splits both per view."""

    def __init__(
        self, in_dim: int, hidden_dim: int, feat_dim: int, prototypes: int, use_bn: bool = True
    ) -> None:
        super().__init__()
        self.projection = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim) if use_bn else nn.Identity(),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, feat_dim),
        )
        self.prototypes = nn.Linear(feat_dim, prototypes, bias=False)
        self.feat_dim = feat_dim

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.projection(x), dim=1)
        return torch.cat([z, self.prototypes(z)], dim=1)


def swapped_prediction(
    scores: list[torch.Tensor], codes: dict[int, torch.Tensor], temperature: float
) -> torch.Tensor:
    """SwAV's loss: for each assigned view ``i`` (``codes[i]``, (B, K)), the mean over the other
    views ``v`` of the cross-entropy between the codes and softmax(scores[v] / temperature);
    averaged over the assigned views."""
    log_p = [F.log_softmax(s.float() / temperature, dim=1) for s in scores]
    total = 0.0
    for i, q in codes.items():
        others = [v for v in range(len(scores)) if v != i]
        total = total + sum(-(q * log_p[v]).sum(1).mean() for v in others) / len(others)
    return total / len(codes)


class SwAVMethod(MultiCropMethod):
    """One network trained by swapped prediction of its own Sinkhorn codes; it is also the network
    evaluated and exported (no teacher)."""

    display_name = "SwAV"
    scalar_names = ("code_entropy", "prototypes_used", "queue_used", "feature_std", "feature_rank")

    def __init__(self, config: RunSections) -> None:
        model, method, data = config.model, config.method, config.data
        self.settings = method
        backbone = ViTBackbone(
            model.arch,
            drop_path_rate=model.drop_path_rate,
            pos_interpolation=model.pos_interpolation,
        )
        head = SwAVHead(
            backbone.embed_dim,
            model.hidden_dim,
            model.bottleneck_dim,
            model.out_dim,
            model.use_bn_in_head,
        )
        self.student = BackboneWithHead(backbone, head, model.forward_chunk)
        self.student.backbone.vit.set_grad_checkpointing(model.grad_checkpointing)
        self.rank, ranks = world()
        if ranks > 1 and torch.cuda.is_available():  # the official code's SyncBatchNorm (CUDA only)
            self.student = nn.SyncBatchNorm.convert_sync_batchnorm(self.student)
        self.spec = view_spec(data)
        views = 2 + data.local_crops
        if not method.crops_for_assign or not all(0 <= i < views for i in method.crops_for_assign):
            raise ValueError(
                f"method.crops_for_assign: {method.crops_for_assign} must name views "
                f"0..{views - 1} (2 global + {data.local_crops} local)"
            )
        # As the official code: whole batches, so the queue shifts by one batch a step.
        self.queue_rows = (
            method.queue_length - method.queue_length % (data.batch_size * ranks)
        ) // ranks
        self.queue: torch.Tensor | None = None  # (assigned views, queue_rows, feat_dim)
        self.queued = 0  # rows of the queue filled so far (counted here: the device never waits)
        self.views()

    @property
    def head(self) -> SwAVHead:
        return self.student.head

    def loss(
        self, student: nn.Module, batch: list[torch.Tensor], epoch: int
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        s = self.settings
        self.head.normalize_prototypes()
        outputs = student(batch)
        d = self.head.feat_dim
        if self.queue is None and self.queue_rows > 0 and epoch >= s.epoch_queue_starts:
            self.queue = outputs[0].new_zeros(
                len(s.crops_for_assign), self.queue_rows, d, dtype=torch.float32
            )
        embeddings = [out[:, :d].detach() for out in outputs]
        scores = [out[:, d:] for out in outputs]
        codes, used = self.codes(embeddings, scores)
        loss = swapped_prediction(scores, codes, s.temperature)
        return loss, {
            **code_monitors(codes[s.crops_for_assign[0]]),
            "queue_used": float(used),
            **feature_monitors(self.student.features),
        }

    @torch.no_grad()
    def codes(
        self, embeddings: list[torch.Tensor], scores: list[torch.Tensor]
    ) -> tuple[dict[int, torch.Tensor], bool]:
        """The Sinkhorn codes of each assigned view (B, K), and whether the queue took part; the
        queue then takes in this batch's embeddings."""
        s, codes = self.settings, {}
        full = self.queue is not None and self.queued == self.queue_rows
        prototypes = self.head.prototypes.weight.detach().float()
        for slot, i in enumerate(s.crops_for_assign):
            logits = scores[i].detach().float()
            batch = len(logits)
            if full:
                logits = torch.cat([self.queue[slot] @ prototypes.t(), logits])
            codes[i] = sinkhorn(logits, s.epsilon, s.sinkhorn_iterations, distributed=True)[-batch:]
            if self.queue is not None:
                self.queue[slot] = torch.cat([embeddings[i].float(), self.queue[slot, :-batch]])
        if self.queue is not None:
            self.queued = min(self.queued + len(embeddings[0]), self.queue_rows)
        return codes, full

    def after_backward(self, student: nn.Module, epoch: int, step: int) -> None:
        if step < self.settings.freeze_prototypes_steps:
            student.head.prototypes.weight.grad = None

    def backbone(self) -> ViTBackbone:
        return self.student.backbone

    def checkpoint_state(self) -> dict[str, Any]:
        """Every rank's queue (ranks x its shape), gathered: each rank continues with its own."""
        return {"method": {} if self.queue is None else {"queue": gather(self.queue).cpu()}}

    def load_checkpoint_state(self, state: dict[str, Any], device: torch.device) -> None:
        queue = state["method"].get("queue")
        self.queue = None if queue is None else queue[self.rank].to(device)
        if self.queue is not None:  # embeddings are unit vectors: a filled row is never all zeros
            self.queued = int((self.queue[0] != 0).any(dim=1).sum())
