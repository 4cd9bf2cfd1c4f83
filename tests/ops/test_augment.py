"""Views rendered on the training device from planned parameters equal the loader's torchvision
views: each batched kernel against torchvision's on real frames, then whole DINO and DoRA views
for the same seeds (bit-identical on CPU)."""

from __future__ import annotations

import av
import pytest
import torch
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as TF

from wtpipe.data.transforms import (
    ClipViews,
    MultiCrop,
    MultiCropSpec,
    PlannedClips,
    PlannedCrops,
    plan,
)
from wtpipe.ops import augment

ASSET = "wtpipe/assets/vtest.mp4"


@pytest.fixture(scope="module")
def frames() -> list[torch.Tensor]:
    """Eight real frames of the bundled clip (640 x 480), a second apart."""
    out = []
    with av.open(ASSET) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 10 == 0:
                out.append(
                    torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).contiguous()
                )
            if len(out) == 8:
                return out
    return out


def crops_of(frames: list[torch.Tensor]) -> torch.Tensor:
    """Six 96-px crops with people, road and grass: saturated and grey pixels for the colour kernels."""
    return torch.stack(
        [
            TF.resized_crop(f, 150 + 20 * i, 40 * i, 200, 260, [96, 96], antialias=True)
            for i, f in enumerate(frames[:6])
        ]
    )


@pytest.mark.parametrize("name", ["brightness", "contrast", "saturation", "hue"])
def test_each_jitter_kernel_equals_torchvision_per_view(frames, name):
    x = crops_of(frames)
    factors = torch.tensor(
        [-0.1, -0.05, 0.0, 0.03, 0.07, 0.1]
        if name == "hue"
        else [0.6, 0.8, 0.98556703, 1.0, 1.2558242, 1.4],
        dtype=torch.float64,
    )
    ours = getattr(augment, name)(x, factors)
    reference = getattr(TF, f"adjust_{name}")
    theirs = torch.stack(
        [reference(x[i], **{f"{name}_factor": float(f)}) for i, f in enumerate(factors)]
    )
    assert ours.dtype == torch.uint8 and torch.equal(ours, theirs)


def test_grayscale_and_blur_equal_torchvision(frames):
    x = crops_of(frames)
    assert torch.equal(augment.grayscale(x), torch.stack([TF.rgb_to_grayscale(v, 3) for v in x]))
    sigmas = torch.tensor([0.1, 0.4, 0.9, 1.3, 1.7, 2.0], dtype=torch.float64)
    theirs = torch.stack([TF.gaussian_blur(v, [23, 23], [float(s)] * 2) for v, s in zip(x, sigmas)])
    assert torch.equal(augment.blur(x, sigmas, 23), theirs)


PAPER_DORA = MultiCropSpec(
    224, 112, 6, local_flip=False, bilinear=True, precrop=300
)  # configs/dora_vits16_wt.yaml


@pytest.mark.parametrize(
    "spec",
    [
        MultiCropSpec(local_crops=6),
        MultiCropSpec(local_crops=6, local_flip=False, bilinear=True),
        MultiCropSpec(local_crops=6, global_scale=(0.14, 1.0), photometric="swav"),
    ],
    ids=["dino", "bilinear-unflipped-locals", "swav"],
)
def test_dino_views_from_the_device_equal_the_loaders(frames, spec):
    crops = MultiCrop(spec)
    rendered, planned = [], []
    for seed in range(6):
        torch.manual_seed(seed)
        rendered.append(crops(frames[seed]))
        torch.manual_seed(seed)
        planned.append(crops.plan(frames[seed]))
    loader = [torch.stack(view) for view in zip(*rendered)]
    device = PlannedCrops.cat(planned).render("cpu")
    assert len(device) == 8 and [tuple(v.shape) for v in device] == [tuple(v.shape) for v in loader]
    for a, b in zip(loader, device):
        assert torch.equal(a, b)
    params = PlannedCrops.cat(planned).params  # the seeds drew every branch somewhere
    swav = spec.photometric == "swav"
    for field in ("flip", "jitter", "gray", "blur", *(() if swav else ("solarize",))):
        assert 0 < (params[..., augment.F[field]] > 0).sum() < params.shape[0] * params.shape[1], (
            field
        )
    if swav:  # never solarised; jitter up to 0.8 (DINO's brightness stays within 0.6-1.4)
        assert not params[..., augment.F["solarize"]].any()
        brightness = params[..., augment.F["brightness"]][params[..., augment.F["jitter"]] > 0]
        assert (brightness - 1).abs().max() > 0.4
    assert (params[:, :2, augment.F["bilinear"]] == spec.bilinear).all() and not params[
        :, 2:, augment.F["bilinear"]
    ].any()
    assert params[:, 2:, augment.F["flip"]].any() == spec.local_flip


@pytest.mark.parametrize(
    "spec", [MultiCropSpec(local_crops=6), PAPER_DORA], ids=["default", "paper"]
)
def test_dora_clip_views_from_the_device_equal_the_loaders(frames, spec):
    views = ClipViews(spec)
    rendered, planned = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        rendered.append(views(frames[seed : seed + 4]))
        torch.manual_seed(seed)
        planned.append(ClipViews(spec, planned=True)(frames[seed : seed + 4]))
    globals_, locals_ = PlannedClips.cat(planned).render("cpu")
    assert globals_.shape == (3, 4, 3, 224, 224) and locals_.shape == (
        3,
        4,
        6,
        3,
        spec.local_size,
        spec.local_size,
    )
    assert torch.equal(globals_, torch.stack([g for g, _ in rendered]))
    assert torch.equal(locals_, torch.stack([loc for _, loc in rendered]))
    batch = PlannedClips.cat(planned)
    rows = batch.globals_
    assert (rows[:, :, :6] == rows[:, :1, :6]).all()  # one crop and flip per clip, colour per frame
    assert not (rows[:, :, 11:15] == rows[:, :1, 11:15]).all()
    assert (batch.precrops[:, augment.F["size"]] == spec.precrop).all()
    if (
        spec.precrop
    ):  # every global and local box lies inside the 300-px pre-crop, not the 640 x 480 frame
        for boxes in (rows, batch.locals_):
            bottom = boxes[..., augment.F["top"]] + boxes[..., augment.F["height"]]
            right = boxes[..., augment.F["left"]] + boxes[..., augment.F["width"]]
            assert bottom.max() <= spec.precrop and right.max() <= spec.precrop
    assert batch.locals_[..., augment.F["flip"]].any() == spec.local_flip


def test_a_pre_crop_is_refused_for_single_frame_views():
    with pytest.raises(ValueError, match="clip_precrop"):
        MultiCrop(PAPER_DORA)


def test_a_transform_that_cannot_be_planned_is_named():
    with pytest.raises(TypeError, match="cannot plan RandomRotation"):
        plan(T.Compose([T.RandomRotation(10)]), 100, 100)
