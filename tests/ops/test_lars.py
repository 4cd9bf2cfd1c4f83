"""LARS against apex's LARC (clip off) around torch.optim.SGD, re-derived step by step."""

from __future__ import annotations

import torch

from wtpipe.ops.lars import LARS


def test_three_steps_equal_larc_around_sgd():
    torch.manual_seed(0)
    weights = [torch.randn(8, 4), torch.randn(8), torch.zeros(3)]  # a zero tensor: no adaptation
    ours = [w.clone().requires_grad_() for w in weights]
    theirs = [w.clone().requires_grad_() for w in weights]
    optimizer = LARS(
        [{"params": ours[:2], "weight_decay": 0.1}, {"params": ours[2:], "weight_decay": 0.0}]
    )
    sgd = torch.optim.SGD(theirs, lr=0.5, momentum=0.9, weight_decay=0.0)
    for group in optimizer.param_groups:
        group["lr"] = 0.5
    for step in range(3):
        grads = [torch.randn_like(w) for w in weights]
        for p, g in zip(ours, grads):
            p.grad = g.clone()
        optimizer.step()
        with torch.no_grad():
            for p, g, wd in zip(theirs, grads, (0.1, 0.1, 0.0)):
                p.grad = g.clone()
                p_norm, g_norm = torch.norm(p), torch.norm(g)
                if p_norm != 0 and g_norm != 0:
                    p.grad += wd * p
                    p.grad *= 0.001 * p_norm / (g_norm + p_norm * wd + 1e-8)
        sgd.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-7, msg=f"step {step}")
    moved = [float((a.detach() - w).norm()) for a, w in zip(ours, weights)]
    # The trust ratio bounds the adapted steps to about lr x 0.001 x |w| each; the zero tensor
    # takes plain SGD steps of lr x |g|.
    assert 0 < moved[0] < 3 * 0.5 * 0.001 * 3 * float(weights[0].norm()) < moved[2]
