"""Per-parameter clipping, last-layer freezing, decay groups and the EMA teacher update."""

from __future__ import annotations

import torch
from torch import nn

from wtpipe.models.heads import DINOHead
from wtpipe.ops.ema import ema_update
from wtpipe.ops.grads import clip_per_parameter, decay_groups, drop_last_layer_grads


def test_each_parameter_is_clipped_on_its_own():
    model = nn.Linear(4, 3)
    model.weight.grad = torch.full((3, 4), 10.0)  # norm 34.6: clipped to 3
    model.bias.grad = torch.tensor([0.1, 0.2, 0.2])  # norm 0.3: untouched
    norms = clip_per_parameter(model, 3.0)
    assert abs(norms[0].item() - 34.641) < 1e-3
    assert abs(model.weight.grad.norm().item() - 3.0) < 1e-4
    assert torch.allclose(model.bias.grad, torch.tensor([0.1, 0.2, 0.2]))
    # A global-norm clip would have shrunk the bias gradient too.
    assert (model.weight.grad / 10.0).std() < 1e-7  # direction kept


def test_last_layer_gets_no_update_while_frozen():
    head = DINOHead(8, out_dim=16, hidden_dim=12, bottleneck_dim=4, norm_last_layer=False)
    head(torch.randn(5, 8)).sum().backward()
    drop_last_layer_grads(head, epoch=0, freeze_epochs=1)
    assert all(p.grad is None for n, p in head.named_parameters() if "last_layer" in n)
    assert all(p.grad is not None for n, p in head.named_parameters() if "mlp" in n)
    head.zero_grad()
    head(torch.randn(5, 8)).sum().backward()
    drop_last_layer_grads(head, epoch=1, freeze_epochs=1)
    assert all(p.grad is not None for n, p in head.named_parameters() if "last_layer" in n)


def test_no_weight_decay_on_biases_and_vectors():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    decay, no_decay = decay_groups(model)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0


def test_ema_update_is_the_convex_combination():
    teacher, student = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in teacher.parameters()]
    ema_update(teacher, student, 0.996)
    for t, b, s in zip(teacher.parameters(), before, student.parameters()):
        assert torch.allclose(t, 0.996 * b + 0.004 * s)
