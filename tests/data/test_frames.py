"""Frames handed over encoded or decoded: torchvision's decoder gives Pillow's pixels, and a
training device decodes JPEG bytes a worker left encoded to the same frames."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from wtpipe.data.frames import EncodedFrame, decode, on_device
from wtpipe.data.index import ShardIndex
from wtpipe.data.loader import decode_frames
from wtpipe.shards.read import read_span


def test_frames_left_encoded_decode_to_the_same_pixels_as_pillow(train_shards):
    index = ShardIndex.build(train_shards)
    ref = index.samples[1]
    encoded = decode_frames(ref, [0, 2], encoded=True)
    assert isinstance(encoded[0], EncodedFrame) and encoded[0].shape == (
        3,
        128,
        170,
    )  # from the header
    decoded = on_device(encoded, "cpu")
    for i, frame in zip([0, 2], decoded):
        pil = np.array(Image.open(io.BytesIO(read_span(ref.shard, ref.frames[i]))).convert("RGB"))
        assert torch.equal(frame, torch.from_numpy(pil).permute(2, 0, 1))
    assert all(torch.equal(a, b) for a, b in zip(decoded, decode_frames(ref, [0, 2])))


def test_a_truncated_jpeg_is_an_error_the_dataset_skips(train_shards):
    ref = ShardIndex.build(train_shards).samples[0]
    with pytest.raises(RuntimeError):
        decode(read_span(ref.shard, ref.frames[0])[:500])
