"""On a GPU: views rendered there, and frames decoded there by nvJPEG, against the CPU loader path.
Skipped without CUDA (CI runs on CPU). On CPU the two paths are equal bit for bit; on CUDA the
resize and float kernels round differently, and the uint8 truncations of the colour jitter
(torchvision's arithmetic, kept on both paths) carry a unit's difference on into the next
operation, so a few pixels differ by more. Measured on an H100 for this test's clip and seed:
mean 0.22/255, 0.08 % of values beyond 3/255, at most 11/255. A wrong crop box or a parameter
applied to the wrong view moves whole regions by tens of units."""

from __future__ import annotations

import pytest
import torch

from wtpipe.data.frames import EncodedFrame, on_device
from wtpipe.data.transforms import ClipViews, MultiCropSpec, PlannedClips

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def in_255ths(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a.cpu() - b.cpu()) * STD).abs() * 255  # normalised views back to pixel units


@pytest.mark.parametrize(
    "spec",
    [
        MultiCropSpec(local_crops=4),
        MultiCropSpec(224, 112, 4, local_flip=False, bilinear=True, precrop=300),
    ],
    ids=["default", "paper"],
)
def test_dora_views_rendered_on_the_gpu_match_the_loader(train_shards, spec):
    from wtpipe.data.index import ShardIndex
    from wtpipe.data.loader import decode_frames

    ref = ShardIndex.build(train_shards).samples[0]
    frames = decode_frames(ref, [0, 1, 2, 3])
    views = ClipViews(spec)
    torch.manual_seed(0)
    loader = views(frames)
    torch.manual_seed(0)
    device = PlannedClips.cat([views.plan(frames)]).render("cuda")
    for a, b in zip(loader, device):
        diff = in_255ths(a, b[0])
        assert diff.mean() < 0.5 and (diff > 3.01).float().mean() < 5e-3 and diff.max() <= 32


def test_nvjpeg_decodes_a_batch_like_the_cpu(train_shards):
    from wtpipe.data.index import ShardIndex
    from wtpipe.data.loader import decode_frames

    ref = ShardIndex.build(train_shards).samples[0]
    encoded = decode_frames(ref, [0, 1, 2], encoded=True)
    assert all(isinstance(f, EncodedFrame) for f in encoded)
    gpu, cpu = on_device(encoded, "cuda"), on_device(encoded, "cpu")
    for a, b in zip(gpu, cpu):
        assert a.is_cuda and a.shape == b.shape
        assert (a.cpu().int() - b.int()).abs().float().mean() < 1.0
