"""KoLeo against DINOv2's computation, re-derived in numpy: on the [CLS] features of real frames
through a fixed-seed ViT, the nearest neighbours, the distances and the term itself."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from wtpipe.models.vit import ViTBackbone
from wtpipe.ops.koleo import koleo_loss, nearest_other

ASSET = "wtpipe/assets/vtest.mp4"


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    """[CLS] features of twelve real frames (and two exact copies, whose distance is 0)."""
    images = []
    with av.open(ASSET) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 15 == 0:
                image = (
                    torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).float()
                    / 255
                )
                images.append(TF.resize(image, [64, 64], antialias=True))
            if len(images) == 12:
                break
    torch.manual_seed(0)
    vit = ViTBackbone("vit_tiny_patch16_224").eval()
    with torch.no_grad():
        cls = vit(torch.stack(images))
    return torch.cat([cls, cls[:2]])


def reference(features: np.ndarray, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray, float]:
    """DINOv2's KoLeoLoss: L2-normalise (norm clamped at eps), each row's neighbour by the largest
    inner product over the other rows, ``PairwiseDistance(2, eps)`` (eps added to the difference),
    then minus the mean log of distance + eps."""
    x = features.astype(np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
    dots = x @ x.T
    np.fill_diagonal(dots, -np.inf)
    nearest = dots.argmax(axis=1)
    distances = np.linalg.norm(x - x[nearest] + eps, axis=1)
    return nearest, distances, float(-np.log(distances + eps).mean())


def test_koleo_matches_dinov2_item_by_item(features):
    nearest, distances, loss = reference(features.numpy())
    x = torch.nn.functional.normalize(features, dim=-1, eps=1e-8)
    got = nearest_other(x)
    # rows 12, 13 copy rows 0, 1: each copy's neighbour is its twin, at distance ~0 (the log is large)
    assert got[0] == 12 and got[12] == 0 and got[1] == 13
    np.testing.assert_array_equal(got.numpy(), nearest)
    np.testing.assert_allclose(
        (x - x[got] + 1e-8).norm(dim=-1).numpy(), distances, rtol=1e-4, atol=1e-6
    )
    assert koleo_loss(features).item() == pytest.approx(loss, rel=1e-4)


def test_koleo_falls_as_features_spread_and_its_gradient_spreads_them(features):
    distinct = features[:12].clone().requires_grad_(True)
    spread_out = torch.randn(12, features.shape[1], generator=torch.Generator().manual_seed(0))
    assert koleo_loss(spread_out) < koleo_loss(
        distinct
    )  # random directions are further apart than these frames
    koleo_loss(distinct).backward()
    with torch.no_grad():
        stepped = distinct - 0.1 * distinct.grad
    assert koleo_loss(stepped) < koleo_loss(distinct)
    with pytest.raises(ValueError, match="at least 2 rows"):
        koleo_loss(features[:1])
