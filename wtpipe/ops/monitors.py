"""Learning and collapse monitors: is the teacher (DINO, DoRA) or the code (SwAV) saying anything?

DINO's two failure modes show in the teacher's centred, sharpened output P_t over K dims:
*uniform* collapse (every P_t near 1/K: entropy -> ln K, nothing to distil) and *one-hot*
collapse (every sample on the same dim: per-sample entropy -> 0, and the batch uses one dim).
Centring pushes towards the first, sharpening towards the second; the monitors tell which.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


@torch.no_grad()
def distillation_monitors(
    teacher_logits: torch.Tensor,
    center: torch.Tensor,
    teacher_temp: float,
    student_logits: torch.Tensor,
    student_temp: float,
    features: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Scalars (0-d tensors, so nothing waits on the device) for N paired rows.

    ``teacher_logits``/``student_logits``: (N, K), row i of both from the same image (student on
    another view of it); ``center``: (1, K); ``features``: (M, D) student backbone features.
    - ``teacher_entropy``: mean per-sample entropy of P_t, as a fraction of ln K (1: uniform);
    - ``dims_used``: exp(entropy of the batch-mean P_t) / K, the share of dims the batch spreads
      over (1/K: one-hot collapse);
    - ``kl``: mean KL(P_t || P_s), what the student has left to learn (0 with either collapse);
    - ``center_norm``: the L2 norm of the centre;
    - ``feature_std``: mean over dims of the per-dim std of L2-normalised features, times sqrt(D)
      (about 1 for spread-out features, 0 when they all coincide);
    - ``feature_rank``: effective rank (exp of the entropy of the normalised singular values) of
      the centred features, as a fraction of min(M, D).
    """
    k = teacher_logits.shape[-1]
    probs = F.softmax((teacher_logits.float() - center) / teacher_temp, dim=-1)
    log_probs = torch.log(probs.clamp_min(1e-12))
    entropy = -(probs * log_probs).sum(-1).mean()
    mean_probs = probs.mean(0)
    batch_entropy = -(mean_probs * torch.log(mean_probs.clamp_min(1e-12))).sum()
    student_log_probs = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    out = {
        "teacher_entropy": entropy / math.log(k),
        "dims_used": batch_entropy.exp() / k,
        "kl": (probs * (log_probs - student_log_probs)).sum(-1).mean(),
        "center_norm": center.float().norm(),
    }
    if features is not None:
        out.update(feature_monitors(features))
    return out


@torch.no_grad()
def feature_monitors(features: torch.Tensor) -> dict[str, torch.Tensor]:
    """``feature_std`` and ``feature_rank`` (:func:`distillation_monitors`) of (M, D) features;
    nothing for fewer than two rows."""
    if len(features) < 2:
        return {}
    f = F.normalize(features.float(), dim=-1)
    singular = torch.linalg.svdvals(f - f.mean(0))
    p = singular / singular.sum().clamp_min(1e-12)
    rank = (-(p * torch.log(p.clamp_min(1e-12))).sum()).exp()
    return {
        "feature_std": f.std(0).mean() * math.sqrt(f.shape[1]),
        "feature_rank": rank / min(f.shape),
    }


@torch.no_grad()
def code_monitors(codes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Collapse monitors of (N, K) soft assignments to K prototypes (SwAV's codes):
    - ``code_entropy``: mean per-sample entropy as a fraction of ln K (0: hard codes; 1: uniform,
      nothing to predict);
    - ``prototypes_used``: the share of prototypes that some sample's code picks (its arg max), out
      of min(N, K) (1: every sample its own prototype; 1/min(N, K): one prototype for all).
    """
    n, k = codes.shape
    entropy = -(codes * torch.log(codes.clamp_min(1e-12))).sum(-1).mean() / math.log(k)
    picked = torch.zeros(k, device=codes.device).index_fill_(0, codes.argmax(-1), 1.0)
    return {"code_entropy": entropy, "prototypes_used": picked.sum() / min(n, k)}


def collapse(scalars: dict[str, float], out_dim: int) -> str | None:
    """Which collapse the monitors show ("uniform", "one-hot", "uniform codes"), or None. Thresholds are loose on
    purpose: a warning should mean the run is lost, not merely slow."""
    if scalars.get("teacher_entropy", 0.0) > 0.97:
        return "uniform"
    if scalars.get("code_entropy", 0.0) > 0.97:  # SwAV: equipartition rules out one-hot codes
        return "uniform codes"
    if scalars.get("dims_used", 1.0) * out_dim < 1.5 and scalars.get("teacher_entropy", 1.0) < 0.05:
        return "one-hot"
    return None


REMEDIES = {
    "uniform codes": "SwAV's codes are uniform (the embeddings no longer tell images apart): lower optim.lr, "
    "lower method.epsilon, or use fewer prototypes (model.out_dim)",
    "uniform": "the teacher's output is uniform (nothing to distil): sharpen it (lower method.teacher_temp), "
    "lower optim.lr or lengthen optim.warmup_epochs, or use a smaller model.out_dim",
    "one-hot": "the teacher puts every image on one prototype: centre harder (lower method.center_momentum), "
    "raise method.teacher_temp, lower optim.lr, or use a larger model.out_dim",
}
