"""The weights seam: metadata that rebuilds the network, paths a user would pass, clear refusals."""

from __future__ import annotations

import os

import pytest
import torch

from wtpipe.models.vit import ViTBackbone
from wtpipe.models.weights import (
    WeightsError,
    info_for,
    load_backbone,
    read_info,
    resolve,
    save_backbone,
)


def test_round_trip_rebuilds_the_same_network_from_the_file_alone(tmp_path):
    torch.manual_seed(0)
    source = ViTBackbone("vit_tiny_patch16_224", pos_interpolation="timm").eval()
    path = save_backbone(
        source.vit.state_dict(),
        str(tmp_path / "new" / "backbone.safetensors"),
        info_for("vit_tiny_patch16_224", "timm", step=7),
    )
    info = read_info(path)
    assert (info.arch, info.patch_size, info.img_size, info.pos_interpolation, info.step) == (
        "vit_tiny_patch16_224",
        16,
        224,
        "timm",
        7,
    )
    loaded, _ = load_backbone(path)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    again = save_backbone(
        source.vit.state_dict(),
        str(tmp_path / "again.safetensors"),
        info_for("vit_tiny_patch16_224", "timm", step=7),
    )
    assert open(path, "rb").read() == open(again, "rb").read()  # byte-reproducible


def test_paths_a_user_would_pass(tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "step-00000004"
    ckpt.mkdir(parents=True)
    (ckpt / "state.pt").write_bytes(b"")
    (run / "checkpoints" / "latest").write_text("step-00000004")
    state = ViTBackbone("vit_tiny_patch16_224").vit.state_dict()
    in_ckpt = save_backbone(
        state, str(ckpt / "backbone.safetensors"), info_for("vit_tiny_patch16_224", step=4)
    )
    assert (
        resolve(str(run)) == in_ckpt == resolve(str(ckpt)) == resolve(in_ckpt)
    )  # stopped run: latest checkpoint
    final = save_backbone(
        state, str(run / "backbone.safetensors"), info_for("vit_tiny_patch16_224", step=5)
    )
    assert resolve(str(run)) == final


def test_clear_refusals(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        load_backbone(str(tmp_path / "missing"))
    with pytest.raises(WeightsError, match="holds no backbone.safetensors"):
        load_backbone(str(tmp_path))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="junk.safetensors: not a readable safetensors file"):
        load_backbone(str(junk))
    small = save_backbone(
        ViTBackbone("vit_tiny_patch16_224").vit.state_dict(),
        str(tmp_path / "s.safetensors"),
        info_for("vit_small_patch16_224"),
    )  # metadata says small, weights are tiny
    with pytest.raises(WeightsError, match="does not fit vit_small_patch16_224"):
        load_backbone(small)
    with pytest.raises(WeightsError, match="random"):
        load_backbone("random:vit_tiny_patch16_224:x")


def test_random_weights_are_seeded():
    a, info = load_backbone("random:vit_tiny_patch16_224:5")
    b, _ = load_backbone("random:vit_tiny_patch16_224:5")
    c, _ = load_backbone("random:vit_tiny_patch16_224:6")
    assert info.source == "random:vit_tiny_patch16_224:5" and not any(
        p.requires_grad for p in a.parameters()
    )
    assert torch.equal(a.vit.pos_embed, b.vit.pos_embed) and not torch.equal(
        a.vit.pos_embed, c.vit.pos_embed
    )
