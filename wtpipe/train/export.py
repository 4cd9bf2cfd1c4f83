"""Export a checkpoint's backbone as ``backbone.safetensors`` (timm keys, wtpipe metadata): the
teacher's where the method has one (DINO, DoRA), the trained network's otherwise (SwAV)."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from wtpipe.atomic import write_bytes_atomic
from wtpipe.engine import checkpoint, rundir
from wtpipe.models.weights import (
    WeightsError,
    WeightsInfo,
    info_for,
    read_info,
    save_backbone,
)

PREFIX = "backbone.vit."


def backbone_state(network_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm keys (``blocks.0.attn.qkv.weight``...) of a ``BackboneWithHead`` state dict."""
    return {k[len(PREFIX) :]: v for k, v in network_state.items() if k.startswith(PREFIX)}


def exported_network(state: dict) -> dict[str, torch.Tensor]:
    """The state dict of the network a checkpoint's method exports: its teacher, if it has one."""
    return state["teacher"] if "teacher" in state else state["student"]


def weights_info(config: dict, step: int) -> WeightsInfo:
    """What evaluation needs to rebuild the backbone, from a run's saved config."""
    model = config["model"]
    return info_for(model["arch"], model.get("pos_interpolation", "dino"), step)


class ExportError(Exception):
    """Nothing to export, or a target that would be overwritten; the message names the path."""


def export_checkpoint(
    path: str, out: str | None = None, overwrite: bool = False, warn: Callable[[str], None] = print
) -> tuple[str, str]:
    """Export a checkpoint's backbone; returns (the file, what was done, in words).

    From a run directory: its newest intact checkpoint (a damaged one is named through ``warn``
    and the one before it is used, as training resumes), by default into ``RUN/backbone.safetensors``;
    when that file already holds the newest checkpoint's step (the trainer writes it at the end),
    there is nothing to do. From a checkpoint directory: that checkpoint, by default into it.
    An ``out`` that exists is replaced only with ``overwrite``.
    """
    if not os.path.exists(path):
        raise ExportError(f"{path}: no such file or directory")
    if os.path.isdir(os.path.join(path, rundir.CHECKPOINTS)):
        root = os.path.join(path, rundir.CHECKPOINTS)
        names = rundir.completed(root)
        if not names:
            raise ExportError(f"{path}: the run has no finished checkpoint yet")
        target = out or os.path.join(path, rundir.BACKBONE)
        newest = _step(names[-1])
        if out is None and not overwrite and _exported_step(target) >= newest:
            return (
                target,
                f"{target} already holds the newest checkpoint's weights (step {newest}); nothing to do",
            )
        for name in reversed(names):
            ckpt = os.path.join(root, name)
            try:
                checkpoint.check(ckpt, only=(rundir.STATE,))
                state = checkpoint.load_state(ckpt)
            except checkpoint.CorruptCheckpoint as err:
                warn(f"checkpoint {ckpt} is damaged ({err}); trying the one before")
                continue
            return _write(
                ckpt, state, target, out is None or overwrite
            ), f"wrote {target} (step {state['step']})"
        raise ExportError(f"{path}: every checkpoint is damaged (named above); nothing exported")
    if not os.path.exists(os.path.join(path, rundir.STATE)):
        raise ExportError(
            f"{path}: neither a run directory (with {rundir.CHECKPOINTS}/) "
            f"nor a checkpoint directory (with {rundir.STATE})"
        )
    target = out or os.path.join(path, rundir.BACKBONE)
    if out is None and os.path.exists(target) and not overwrite:
        return target, f"{target} already holds this checkpoint's weights; nothing to do"
    try:
        checkpoint.check(path, only=(rundir.STATE,))
        state = checkpoint.load_state(path)
    except checkpoint.CorruptCheckpoint as err:
        raise ExportError(
            f"{path} is damaged ({err}); export the run folder instead to use its newest "
            "intact checkpoint"
        ) from None
    return _write(
        path, state, target, out is None or overwrite
    ), f"wrote {target} (step {state['step']})"


def _write(ckpt: str, state: dict, target: str, replace: bool) -> str:
    """The checkpoint's own backbone file (written by its method, checked against the checksums),
    copied; for checkpoints without one, the backbone taken from the exported network's state."""
    if os.path.exists(target) and not replace:
        raise ExportError(f"{target} exists; pass --overwrite to replace it, or --out another file")
    own = os.path.join(ckpt, rundir.BACKBONE)
    if os.path.exists(own) and os.path.abspath(own) != os.path.abspath(target):
        try:
            checkpoint.check(ckpt, only=(rundir.BACKBONE,))
            with open(own, "rb") as handle:
                write_bytes_atomic(target, handle.read(), mode=0o644)
            return target
        except checkpoint.CorruptCheckpoint:
            pass  # rebuilt from the state below
    return save_backbone(
        backbone_state(exported_network(state)),
        target,
        weights_info(state["config"], int(state["step"])),
    )


def _step(name: str) -> int:
    return int(name.removeprefix("step-"))


def _exported_step(path: str) -> int:
    """The training step a backbone file was exported from (-1: no such file, or unknown)."""
    try:
        return read_info(path).step
    except WeightsError:
        return -1
