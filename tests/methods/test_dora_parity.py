"""DoRA's discovery -> refinement -> tracking -> masks against the official computation.

The reference below re-derives, independently and in float64 numpy, what DoRA_ICLR24's
``utils.MOT`` (with its ``sinkhorn_knopp.py`` and ViT returning the last block's full attention,
queries and keys) computes. The last block's attention, queries and keys come from a textbook
pass (the full N x N softmax, in float64), not from wtpipe's qkv hook. Inputs: two clips of four
real frames (the bundled campus footage) at 224 px, a ViT-S/16 with fixed (seeded) weights, and
the same three heads forced on both sides. Every intermediate is compared.
"""

from __future__ import annotations

import copy
import os

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wtpipe.config import load_config
from wtpipe.data.transforms import MEAN, STD
from wtpipe.methods.dora import DoRAMethod
from wtpipe.train.config import TrainConfig

from ..ops.test_sinkhorn import probability_domain

CLIP = os.path.join(os.path.dirname(__file__), "..", "..", "wtpipe", "assets", "vtest.mp4")
HEADS = [0, 2, 5]
SIZE, PATCH = 224, 16


def real_clips() -> torch.Tensor:
    """(2, 4, 3, 224, 224): frames 100-112 and 500-512 (every 4th) of the campus clip, centre
    square, normalised as the training views are."""
    wanted = {
        100: (0, 0),
        104: (0, 1),
        108: (0, 2),
        112: (0, 3),
        500: (1, 0),
        504: (1, 1),
        508: (1, 2),
        512: (1, 3),
    }
    clips = torch.zeros(2, 4, 3, SIZE, SIZE)
    with av.open(CLIP) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                rgb = (
                    torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).float()
                    / 255
                )
                side = min(rgb.shape[1:])
                top, left = (rgb.shape[1] - side) // 2, (rgb.shape[2] - side) // 2
                square = rgb[:, top : top + side, left : left + side][None]
                view = F.interpolate(square, size=(SIZE, SIZE), mode="bilinear", antialias=True)[0]
                clips[wanted[i]] = (view - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[
                    :, None, None
                ]
            if i >= max(wanted):
                break
    return clips


def textbook_last_block(vit: torch.nn.Module, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Float64: the last block's full attention (F, H, N, N), queries and keys (F, H, N, d), and
    the patch outputs after the final norm (F, N, D), with the whole matrix materialised."""
    vit = copy.deepcopy(vit).double().eval()
    captured = {}
    handle = vit.blocks[-1].norm1.register_forward_hook(lambda m, i, o: captured.setdefault("h", o))
    with torch.no_grad():
        tokens = vit.forward_features(images.double())
    handle.remove()
    attn_module = vit.blocks[-1].attn
    h = captured["h"].numpy()
    frames, count, dim = h.shape
    heads = attn_module.num_heads
    qkv = h @ attn_module.qkv.weight.double().numpy().T + attn_module.qkv.bias.double().numpy()
    qkv = qkv.reshape(frames, count, 3, heads, dim // heads).transpose(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    logits = q @ k.transpose(0, 1, 3, 2) * (dim // heads) ** -0.5
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    return {"attn": attn, "q": q, "k": k, "patches": tokens.numpy()[:, 1:]}


def official_mot(
    last: dict[str, np.ndarray], clips: int, frames: int, heads: list[int], batch_wide: bool
) -> dict[str, np.ndarray]:
    """The official MOT equations on the textbook tensors (frames ordered clip-major)."""

    def per_frame(x: np.ndarray) -> np.ndarray:
        return x.reshape(clips, frames, *x.shape[1:])

    attn, q, k, patches = (per_frame(last[name]) for name in ("attn", "q", "k", "patches"))
    # frame 0: [CLS] -> patch attention of the chosen heads, patch queries with heads concatenated
    cls_attn = attn[:, 0, :, 0, 1:]  # (B, H, n)
    queries = q[:, 0, :, 1:].transpose(0, 2, 1, 3).reshape(clips, q.shape[3] - 1, -1)  # (B, n, H*d)
    prototypes = np.einsum("bkn,bnd->bkd", cls_attn[:, heads], queries)
    features = patches[:, 0] / np.linalg.norm(patches[:, 0], axis=-1, keepdims=True)
    assignment = probability_domain(features @ prototypes.transpose(0, 2, 1), 0.05, 30)  # (B, n, k)
    refined = assignment.transpose(0, 2, 1) @ features  # (B, k, D)
    keys = (
        k[:, :, :, 1:].transpose(0, 1, 3, 2, 4).reshape(clips, frames, k.shape[3] - 1, -1)
    )  # (B, T, n, D)
    logits = np.einsum("bkd,btnd->btkn", refined, keys) * refined.shape[-1] ** -0.5
    maps = np.exp(logits - logits.max(-1, keepdims=True))
    maps /= maps.sum(-1, keepdims=True)
    normed = maps / np.linalg.norm(maps, axis=-1, keepdims=True)
    threshold = (
        normed.mean(axis=(0, 3), keepdims=True)
        if batch_wide
        else normed.mean(axis=-1, keepdims=True)
    )
    masks = normed > threshold
    grid = SIZE // PATCH
    pixels = (
        masks.reshape(*masks.shape[:3], grid, grid).repeat(PATCH, axis=-2).repeat(PATCH, axis=-1)
    )
    return {
        "cls_attn": cls_attn,
        "prototypes": prototypes,
        "refined": refined,
        "maps": maps,
        "masks": masks,
        "pixels": pixels,
        "normed": normed,
        "threshold": threshold,
    }


@pytest.fixture(scope="module")
def setup():
    config = load_config(
        TrainConfig,
        None,
        [
            "model.arch=vit_small_patch16_224",
            "model.out_dim=256",
            "method.name=dora",
            "data.clip_frames=4",
        ],
    )
    clips = real_clips()
    methods = {}
    for faithful in (False, True):
        config.method.faithful = faithful
        torch.manual_seed(0)  # the same fixed weights for both modes
        methods[faithful] = DoRAMethod(config)
    last = textbook_last_block(methods[False].teacher.backbone.vit, clips.flatten(0, 1))
    return methods, clips, last


@pytest.mark.parametrize("faithful", [False, True])
def test_every_intermediate_matches_the_official_computation(setup, faithful):
    methods, clips, last = setup
    found = methods[faithful].masks(clips, heads=torch.tensor(HEADS))
    ref = official_mot(last, 2, 4, HEADS, batch_wide=faithful)
    tracks = found.tracks
    np.testing.assert_allclose(
        found.attention.flatten(2).numpy(), ref["cls_attn"], rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(tracks.prototypes.numpy(), ref["prototypes"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tracks.refined.numpy(), ref["refined"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tracks.maps.numpy(), ref["maps"], rtol=1e-5, atol=1e-7)
    # Masks: equal except where the reference itself sits within float32 noise of its threshold.
    margin = np.abs(ref["normed"] - ref["threshold"]) > 1e-5
    assert (tracks.masks.numpy() == ref["masks"])[margin].all()
    assert (tracks.masks.numpy() != ref["masks"]).sum() <= (~margin).sum()
    pixels = found.masks.numpy()
    assert pixels.shape == (2, 4, 3, SIZE, SIZE)
    assert (pixels == ref["pixels"]).mean() > 0.999


def test_the_modes_differ_only_in_the_threshold(setup):
    methods, clips, _ = setup
    default, faithful = (methods[f].masks(clips, heads=torch.tensor(HEADS)) for f in (False, True))
    assert torch.equal(default.tracks.maps, faithful.tracks.maps)
    assert not torch.equal(
        default.tracks.masks, faithful.tracks.masks
    )  # the batch mean mixes the clips


def test_prototype_scales_are_the_official_ones(setup):
    """Refined prototypes are sums over patches (norm of order P / k), not means or unit vectors."""
    methods, clips, _ = setup
    tracks = methods[False].masks(clips, heads=torch.tensor(HEADS)).tracks
    patches = (SIZE // PATCH) ** 2
    norms = tracks.refined.norm(dim=-1)
    assert (norms > 0.25 * patches / len(HEADS)).all() and (norms <= patches).all()


def test_tracked_maps_are_peaked_not_flat(setup):
    """On real frames the tracked maps concentrate on part of the frame: the largest patch weight
    is several times the uniform 1/P. The old refinement (normalised prototypes, a plan-weighted
    mean), recomputed here, gives nearly flat maps: the test tells the two apart."""
    methods, clips, last = setup
    maps = methods[False].masks(clips, heads=torch.tensor(HEADS)).tracks.maps
    uniform = 1 / maps.shape[-1]
    peak = maps.max(dim=-1).values / uniform  # (B, T, k)
    assert peak.median() > 2.0 and peak.min() > 1.3

    ref = official_mot(last, 2, 4, HEADS, batch_wide=False)
    features = torch.from_numpy(last["patches"].reshape(2, 4, -1, last["patches"].shape[-1])[:, 0])
    features = F.normalize(features, dim=-1)
    unit = F.normalize(torch.from_numpy(ref["prototypes"]), dim=-1)
    plan = torch.from_numpy(probability_domain((features @ unit.transpose(1, 2)).numpy(), 0.05, 30))
    old = (plan / plan.sum(dim=1, keepdim=True)).transpose(1, 2) @ features  # weighted means
    keys = (
        torch.from_numpy(last["k"][:, :, 1:])
        .transpose(1, 2)
        .flatten(2)
        .reshape(2, 4, maps.shape[-1], -1)
    )
    old_maps = (torch.einsum("bkd,btnd->btkn", old, keys) * old.shape[-1] ** -0.5).softmax(-1)
    assert (old_maps.max(dim=-1).values / uniform).max() < 1.2
