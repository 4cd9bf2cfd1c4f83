"""The multi-crop wrapper shared by the methods."""

from __future__ import annotations

import torch

from wtpipe.methods.base import BackboneWithHead
from wtpipe.models.heads import DINOHead
from wtpipe.models.vit import ViTBackbone


def test_a_chunked_forward_gives_the_batched_outputs_in_that_many_calls():
    torch.manual_seed(0)
    backbone = ViTBackbone("vit_tiny_patch16_224")
    head = DINOHead(backbone.embed_dim, 64, 64, 32)
    calls: list[int] = []
    backbone.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    views = [torch.randn(5, 3, 32, 32), torch.randn(5, 3, 32, 32), torch.randn(5, 3, 16, 16)]
    with torch.no_grad():
        whole = BackboneWithHead(backbone, head).eval()(views)
        assert calls == [10, 5]  # the views of a size together
        calls.clear()
        chunked = BackboneWithHead(backbone, head, chunk=3).eval()(views)
    assert calls == [3, 3, 3, 1, 3, 2]
    for a, b in zip(whole, chunked):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
