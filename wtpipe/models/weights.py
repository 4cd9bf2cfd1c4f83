"""The seam between training and evaluation: a backbone in ``backbone.safetensors``.

The file holds timm's key layout (``blocks.0.attn.qkv.weight``...) and, in its metadata, what it
takes to rebuild the network without the trainer: architecture, patch size, the image size the
position embeddings were trained at, and how they are resized for other sizes. Evaluation reads
only this file, so any wtpipe run (or a plain timm ViT saved with :func:`save_backbone`) can be
evaluated, and nothing in ``wtpipe.eval`` depends on the training code.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from wtpipe.atomic import write_bytes_atomic
from wtpipe.engine import rundir
from wtpipe.models.vit import ARCHS, PosInterpolation, ViTBackbone

FORMAT = "timm"


class WeightsError(ValueError):
    """A weights path that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class WeightsInfo:
    arch: str
    patch_size: int
    img_size: int
    pos_interpolation: PosInterpolation = "dino"
    step: int = -1  # the training step the weights come from; -1: unknown or random
    source: str = ""  # what was loaded (a file, or "random:ARCH:SEED")

    def metadata(self) -> dict[str, str]:
        """safetensors metadata: string values, sorted keys (so the file is byte-reproducible)."""
        values = {k: str(v) for k, v in asdict(self).items() if k != "source"}
        return {"format": FORMAT, **dict(sorted(values.items()))}


def info_for(
    arch: str, pos_interpolation: PosInterpolation = "dino", step: int = -1
) -> WeightsInfo:
    """Patch and image size as timm's architecture name gives them (``vit_small_patch16_224``)."""
    found = re.search(r"patch(\d+)_(\d+)$", arch)
    if arch not in ARCHS or found is None:
        raise WeightsError(f"arch {arch!r} is not one of {', '.join(ARCHS)}")
    return WeightsInfo(arch, int(found.group(1)), int(found.group(2)), pos_interpolation, step)


def _canonical(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted: safetensors writes them in
    hash order, which differs between processes; sorted, equal weights give equal bytes."""
    length = int.from_bytes(blob[:8], "little")
    header = json.dumps(
        json.loads(blob[8 : 8 + length]), sort_keys=True, separators=(",", ":")
    ).encode()
    header += b" " * (-len(header) % 8)  # the format aligns the data to 8 bytes with spaces
    return len(header).to_bytes(8, "little") + header + blob[8 + length :]


def save_backbone(state: dict[str, torch.Tensor], path: str, info: WeightsInfo) -> str:
    """Write ``state`` (timm keys) atomically and byte-reproducibly, creating the folder;
    readable by everyone (0644)."""
    blob = save(
        {k: v.detach().contiguous().cpu() for k, v in state.items()}, metadata=info.metadata()
    )
    write_bytes_atomic(path, _canonical(blob), mode=0o644)
    return path


def resolve(path: str) -> str:
    """The ``backbone.safetensors`` meant by ``path``: the file itself, a checkpoint directory's
    copy, or for a run directory its final backbone (else its latest checkpoint's)."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise WeightsError(f"{path}: no such file or directory")
    candidates = [os.path.join(path, rundir.BACKBONE)]
    newest = rundir.latest(os.path.join(path, rundir.CHECKPOINTS))
    if newest is not None:
        candidates.append(os.path.join(newest, rundir.BACKBONE))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise WeightsError(
        f"{path}: holds no {rundir.BACKBONE} (a run directory, a checkpoint directory or the file; "
        "older checkpoints without one need `wtpipe export` first)"
    )


def read_info(path: str) -> WeightsInfo:
    try:
        with safe_open(path, framework="pt") as handle:
            meta = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
    if meta.get("format") != FORMAT or "arch" not in meta:
        raise WeightsError(f"{path}: no wtpipe backbone metadata (format={meta.get('format')!r})")
    if meta["arch"] not in ARCHS:
        raise WeightsError(f"{path}: arch {meta['arch']!r} is not one of {', '.join(ARCHS)}")
    vit_defaults = {
        "patch_size": "16",
        "img_size": "224",
        "pos_interpolation": "dino",
        "step": "-1",
    }
    values = {**vit_defaults, **meta}
    return WeightsInfo(
        arch=values["arch"],
        patch_size=int(values["patch_size"]),
        img_size=int(values["img_size"]),
        pos_interpolation=values["pos_interpolation"],
        step=int(values["step"]),
        source=path,
    )


def load_backbone(
    weights: str, device: str | torch.device = "cpu"
) -> tuple[ViTBackbone, WeightsInfo]:
    """A frozen backbone in eval mode from ``weights``: a path (see :func:`resolve`) or
    ``random:ARCH[:SEED]`` for the random-initialisation floor."""
    if weights.startswith("random"):
        parts = weights.split(":")
        arch = parts[1] if len(parts) > 1 else "vit_small_patch16_224"
        seed = parts[2] if len(parts) > 2 else "0"
        if parts[0] != "random" or len(parts) > 3 or not seed.isdigit():
            raise WeightsError(
                f"{weights}: expected random[:ARCH[:SEED]], e.g. random:vit_small_patch16_224:0"
            )
        info = WeightsInfo(
            **{**asdict(info_for(arch)), "source": f"random:{arch}:{seed}"}
        )  # checks the name
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            backbone = ViTBackbone(arch, pos_interpolation="dino")
    else:
        path = resolve(weights)
        info = read_info(path)
        backbone = ViTBackbone(info.arch, pos_interpolation=info.pos_interpolation)
        try:
            backbone.vit.load_state_dict(load_file(path))
        except (RuntimeError, SafetensorError) as err:
            first = str(err).strip().splitlines()
            raise WeightsError(
                f"{path}: does not fit {info.arch} ({first[1] if len(first) > 1 else first[0]})"
            ) from None
    backbone.requires_grad_(False)
    return backbone.to(device).eval(), info
