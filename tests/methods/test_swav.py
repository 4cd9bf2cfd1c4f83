"""SwAV against the official facebookresearch/swav training step, re-derived here from reading
``main_swav.py`` (its ``train`` loop and ``distributed_sinkhorn`` at world size 1), ``src/resnet50.py``
(``forward_head``) and apex's ``LARC``, sharing no wtpipe code: on real frames with fixed weights,
the head's embeddings and scores, every assigned view's codes, the loss, the queue after each step,
and the weights after each optimizer step (prototype freeze and LARS included). Then real runs:
killed and resumed bit-exactly, alone and as two DDP processes, with the queue in use."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from wtpipe.config import load_config
from wtpipe.data.index import ShardIndex
from wtpipe.data.loader import ClipDataset
from wtpipe.engine import rundir
from wtpipe.methods.swav import SwAVMethod
from wtpipe.ops.grads import decay_groups
from wtpipe.ops.lars import LARS
from wtpipe.train.config import TrainConfig
from wtpipe.train.export import export_checkpoint

from ..train.runs import TINY, assert_bit_identical, ddp_cmd, final_state, kill_at, run, train_cmd

SWAV = [
    "method.name=swav",
    "optim.optimizer=lars",
    "optim.lr=0.6",
    "optim.min_lr=0.0006",
    "optim.weight_decay=1e-6",
    "optim.weight_decay_end=1e-6",
    "optim.clip_grad=0",
    "optim.warmup_epochs=0",
    "model.use_bn_in_head=true",
    "data.local_crops=2",
    "data.photometric=swav",
    "method.queue_length=8",
    "method.epoch_queue_starts=1",
    "method.freeze_prototypes_steps=3",
]


def official_sinkhorn(out: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    """``distributed_sinkhorn`` at world size 1, in float32: Q = exp(out / eps)^T (K x B), total 1,
    then per iteration rows (prototypes) to 1/K and columns (samples) to 1/B; columns to 1."""
    q = torch.exp(out.float() / epsilon).t()
    k, b = q.shape
    q = q / q.sum()
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True) / k
        q = q / q.sum(dim=0, keepdim=True) / b
    return (q * b).t()


def official_step(
    embedding: torch.Tensor,
    output: torch.Tensor,
    bs: int,
    views: int,
    queue: torch.Tensor | None,
    use_the_queue: bool,
    prototypes: torch.Tensor,
) -> tuple[torch.Tensor, dict[int, torch.Tensor], bool]:
    """The loss block of ``train``: ``output``/``embedding`` are the view-major concatenations."""
    loss = 0.0
    codes = {}
    for i, crop_id in enumerate((0, 1)):
        with torch.no_grad():
            out = output[bs * crop_id : bs * (crop_id + 1)].detach()
            if queue is not None:
                if use_the_queue or not torch.all(queue[i, -1, :] == 0):
                    use_the_queue = True
                    out = torch.cat((torch.mm(queue[i], prototypes.t()), out))
                queue[i, bs:] = queue[i, :-bs].clone()
                queue[i, :bs] = embedding[crop_id * bs : (crop_id + 1) * bs]
            q = official_sinkhorn(out, 0.05, 3)[-bs:]
        codes[crop_id] = q
        subloss = 0.0
        for v in np.delete(np.arange(views), crop_id):
            x = output[bs * v : bs * (v + 1)] / 0.1
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (views - 1)
    return loss / 2, codes, use_the_queue


def official_head(
    net: torch.nn.Module, views: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``forward`` + ``forward_head``: backbone per resolution, projection, L2 norm, prototypes."""
    features = torch.cat([net.backbone(torch.cat(views[:2])), net.backbone(torch.cat(views[2:]))])
    x = F.normalize(net.head.projection(features), dim=1, p=2)
    return x, net.head.prototypes(x)


def larc_sgd_step(
    params: list[torch.nn.Parameter], decays: list[float], lr: float, buffers: dict
) -> None:
    """apex LARC (trust 0.001, clip off, eps 1e-8) around SGD(momentum 0.9), per parameter."""
    with torch.no_grad():
        for p, wd in zip(params, decays):
            if p.grad is None:
                continue
            g = p.grad.clone()
            p_norm, g_norm = torch.norm(p.data), torch.norm(g)
            if p_norm != 0 and g_norm != 0:
                adaptive = 0.001 * p_norm / (g_norm + p_norm * wd + 1e-8)
                g = (g + wd * p.data) * adaptive
            buf = buffers.get(id(p))
            buffers[id(p)] = g if buf is None else buf * 0.9 + g
            p.data -= lr * buffers[id(p)]


@pytest.fixture(scope="module")
def batches(train_shards):
    """Three real batches of 4 frames' views (2 global 32 px, 2 local 16 px), and the config."""
    config = load_config(TrainConfig, None, [f"data.shards={train_shards}", *TINY, *SWAV])
    torch.manual_seed(0)
    method = SwAVMethod(config)
    dataset = ClipDataset(ShardIndex.build(train_shards), 1, 1, method.views())
    return config, [
        method.collate([dataset[(k, 0)] for k in range(s, s + 4)]) for s in (0, 5, 10, 15)
    ]


def recording_codes(method: SwAVMethod) -> list:
    """Instrument ``method.codes``: every call's codes, kept in a list as they are returned."""
    calls, codes = [], method.codes

    def record(*args):
        result = codes(*args)
        calls.append(result[0])
        return result

    method.codes = record
    return calls


def test_loss_codes_and_queue_equal_the_official_step(batches):
    """Four steps at fixed weights: no queue (epoch 0), an empty queue, a half-full one, a full one
    that enters the codes; every tensor of the official step to 1e-5."""
    config, data = batches
    torch.manual_seed(1)
    method = SwAVMethod(config)
    method.student.eval()  # fixed weights, batch norm statistics fixed too
    d = method.head.feat_dim
    calls = recording_codes(method)
    reference_queue, use_the_queue = None, False
    for step, (epoch, batch) in enumerate(zip((0, 1, 1, 1), data)):
        if epoch >= 1 and reference_queue is None:
            reference_queue = torch.zeros(2, 8, d)
        loss, scalars = method.loss(method.student, batch, epoch)
        with torch.no_grad():
            embedding, output = official_head(method.student, batch)
            ours = torch.cat(method.student(batch))
            expected, codes, use_the_queue = official_step(
                embedding,
                output,
                4,
                4,
                reference_queue,
                use_the_queue,
                method.head.prototypes.weight,
            )
        torch.testing.assert_close(ours[:, :d], embedding, rtol=0, atol=1e-5)
        torch.testing.assert_close(ours[:, d:], output, rtol=0, atol=1e-5)
        assert loss.item() == pytest.approx(expected.item(), abs=1e-5), step
        assert scalars["queue_used"] == float(step == 3)
        for view in (0, 1):
            torch.testing.assert_close(calls[-1][view], codes[view], rtol=0, atol=1e-5)
            assert torch.allclose(codes[view].sum(1), torch.ones(4), atol=1e-5)
        if reference_queue is None:
            assert method.queue is None
        else:
            torch.testing.assert_close(method.queue, reference_queue, rtol=0, atol=1e-6)
    assert use_the_queue and method.queued == 8


# The bias of the layer before the head's batch norm has a gradient of zero up to rounding (the
# norm removes it); LARS scales that rounding noise to a step of lr x trust x |bias| in both loops,
# in directions that differ. It is left out of the comparison; every other parameter is in.
BEFORE_BATCH_NORM = "head.projection.0.bias"


def test_training_steps_equal_the_official_loop(batches):
    """Three optimizer steps from the same weights: prototypes renormalised before each forward,
    their gradients cancelled for the first two steps, LARS (trust ratio, weight decay on
    matrices: wtpipe's groups, the documented difference) and SGD momentum. Every parameter after
    every step to 1e-5, and the prototypes frozen exactly while they should be."""
    config, data = batches
    config = copy.deepcopy(config)
    config.model.drop_path_rate = 0.0  # stochastic depth would draw differently in the two loops
    config.method.freeze_prototypes_steps = 2
    torch.manual_seed(2)
    method = SwAVMethod(config)
    reference = copy.deepcopy(method.student)
    groups = decay_groups(method.student)
    optimizer = LARS(groups, momentum=0.9)
    lr, wd = 0.05, 1e-2
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.param_groups[0]["weight_decay"] = wd
    names = dict(reference.named_parameters())
    decays = {
        name: (wd if p.ndim > 1 and not name.endswith(".bias") else 0.0)
        for name, p in names.items()
    }
    buffers: dict = {}
    for step, batch in enumerate(data[:3]):
        before = method.head.prototypes.weight.detach().clone()
        loss, _ = method.loss(method.student, batch, 0)
        loss.backward()
        method.after_backward(method.student, 0, step)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        with torch.no_grad():
            w = F.normalize(reference.head.prototypes.weight.data.clone(), dim=1, p=2)
            reference.head.prototypes.weight.copy_(w)
        embedding, output = official_head(reference, batch)
        expected, _, _ = official_step(embedding.detach(), output, 4, 4, None, False, w)
        expected.backward()
        if step < 2:
            reference.head.prototypes.weight.grad = None
        larc_sgd_step(list(names.values()), list(decays.values()), lr, buffers)
        for p in names.values():
            p.grad = None

        assert loss.item() == pytest.approx(expected.item(), abs=1e-5), step
        for name, p in method.student.named_parameters():
            if name == BEFORE_BATCH_NORM:
                continue
            torch.testing.assert_close(
                p, names[name], rtol=0, atol=1e-5, msg=f"step {step}: {name}"
            )
        frozen = torch.equal(method.head.prototypes.weight, F.normalize(before, dim=1))
        assert frozen == (step < 2), step


@pytest.mark.slow
def test_swav_run_killed_and_resumed_is_bit_identical(train_shards, tmp_path):
    """A run whose queue starts at epoch 1 and is in use by the kill, prototypes frozen for 3 steps:
    killed twice, then finished, it ends bit-identical (weights, LARS buffers, queue) to the
    uninterrupted run, although its views are decoded and rendered in the training process and
    the reference's by the loader workers."""
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    run(train_cmd(train_shards, ref, *SWAV))
    state = final_state(ref)
    assert state["method"]["queue"].shape == (1, 2, 8, 32) and (state["method"]["queue"] != 0).all()
    assert "teacher" not in state
    device = [*SWAV, "data.augment_on=device", "data.decode_on=device", "data.num_workers=1"]
    for step in (2, 6):
        kill_at(train_cmd(train_shards, out, *device), out, step)
    run(train_cmd(train_shards, out, *device))
    assert_bit_identical(state, final_state(out))
    # The export is the trained network's backbone, also when rebuilt from the checkpoint's state.
    last = rundir.latest(os.path.join(out, rundir.CHECKPOINTS))
    os.remove(os.path.join(last, rundir.BACKBONE))
    target = str(tmp_path / "rebuilt.safetensors")
    export_checkpoint(last, target, warn=lambda line: None)
    exported = load_file(os.path.join(out, rundir.BACKBONE))
    rebuilt = load_file(target)
    assert exported.keys() == rebuilt.keys() and all(
        torch.equal(exported[k], rebuilt[k]) for k in exported
    )
    assert torch.equal(exported["cls_token"], state["student"]["backbone.vit.cls_token"])


@pytest.mark.slow
def test_two_process_swav_killed_and_resumed_is_bit_identical(train_shards, tmp_path):
    """Two DDP processes: the codes are one Sinkhorn problem over both ranks' rows, each rank keeps
    its own queue (4 rows: 8 over two ranks), and a checkpoint holds both."""
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    extra = [*SWAV, "optim.epochs=2", "data.num_workers=1"]
    run(ddp_cmd(train_shards, ref, *extra))
    queues = final_state(ref)["method"]["queue"]
    assert queues.shape == (2, 2, 4, 32) and not torch.equal(queues[0], queues[1])
    kill_at(ddp_cmd(train_shards, out, *extra), out, 6)
    run(ddp_cmd(train_shards, out, *extra))
    assert_bit_identical(final_state(ref), final_state(out))
