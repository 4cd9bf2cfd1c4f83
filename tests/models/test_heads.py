"""DINOHead: MLP to an L2-normalised bottleneck, then weight-normalised prototypes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wtpipe.models.heads import DINOHead


def test_shapes_and_layers():
    head = DINOHead(384, out_dim=1000)
    assert head(torch.randn(3, 384)).shape == (3, 1000)
    linears = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (384, 2048),
        (2048, 2048),
        (2048, 256),
    ]


def test_output_is_a_cosine_to_unit_prototypes_when_the_last_layer_is_normalised():
    head = DINOHead(16, out_dim=10, hidden_dim=32, bottleneck_dim=8, norm_last_layer=True)
    x = torch.randn(4, 16)
    bottleneck = F.normalize(head.mlp(x), dim=-1)
    prototypes = F.normalize(head.last_layer.parametrizations.weight.original1, dim=-1)
    assert torch.allclose(head(x), bottleneck @ prototypes.T, atol=1e-6)
    assert not head.last_layer.parametrizations.weight.original0.requires_grad
    assert DINOHead(
        16, out_dim=10, norm_last_layer=False
    ).last_layer.parametrizations.weight.original0.requires_grad
