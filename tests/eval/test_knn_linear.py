"""k-NN vote and linear probe against independent computations on hand-made features."""

from __future__ import annotations

import math

import torch

from wtpipe.eval.knn import knn_eval, knn_votes, topk_accuracy
from wtpipe.eval.linear import ProbeConfig, probe_eval


def reference_votes(train, train_labels, test, k, classes, temperature=0.07):
    """DINO's eval_knn vote written out per test sample: top-k cosine neighbours, exp(s/T) per class."""
    out = torch.zeros(len(test), classes, dtype=torch.float64)
    for i, query in enumerate(test.double()):
        sims = [
            (float(query @ t / (query.norm() * t.norm())), int(y))
            for t, y in zip(train.double(), train_labels)
        ]
        for sim, label in sorted(sims, key=lambda s: -s[0])[:k]:
            out[i, label] += math.exp(sim / temperature)
    return out


def test_weighted_vote_matches_the_written_out_rule():
    generator = torch.Generator().manual_seed(0)
    train, labels = (
        torch.randn(40, 8, generator=generator),
        torch.randint(0, 4, (40,), generator=generator),
    )
    test = torch.randn(9, 8, generator=generator)
    for k in (1, 5, 20):
        ours = knn_votes(
            train * 3.0, labels, test, k, 4
        )  # scale must not matter: features are normalised
        assert torch.allclose(ours.double(), reference_votes(train, labels, test, k, 4), rtol=1e-4)


def test_hand_made_clusters_and_a_close_call():
    # Two classes on the unit circle; the query sits nearer class 1's single point than class 0's two.
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    query = torch.tensor([[0.3, 1.0]])
    votes = knn_votes(train, labels, query, 3, 2)
    cos = torch.nn.functional.cosine_similarity(query, train)
    expected0 = math.exp(cos[0] / 0.07) + math.exp(cos[1] / 0.07)
    assert math.isclose(votes[0, 0].item(), expected0, rel_tol=1e-4)
    assert votes.argmax().item() == 1  # one close neighbour outvotes two far ones (exp weighting)
    assert knn_votes(train, labels, query, 1, 2).argmax().item() == 1
    metrics = knn_eval(train, labels, query, torch.tensor([1]), 2, ks=(1, 2))
    assert metrics["top1_k1"] == 100.0 and metrics["top1_k2"] == 100.0


def test_topk_accuracy_counts_ties_and_ranks():
    votes = torch.tensor([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [1.0, 0.0, 0.0]])
    labels = torch.tensor([2, 0, 1])
    acc = topk_accuracy(votes, labels, (1, 2))
    # Row 0: label ranked 2nd; row 1: the 0/1 tie ranks class 0 first; row 2: tie 1/2 ranks 1 first.
    assert acc[1] == 0.0 and acc[2] == 100.0
    assert math.isclose(
        topk_accuracy(votes, torch.tensor([2, 1, 2]), (2,))[2], 100 / 3, rel_tol=1e-6
    )


def test_linear_probe_separates_separable_features_and_not_noise():
    generator = torch.Generator().manual_seed(1)
    centres = torch.randn(3, 16, generator=generator) * 4
    labels = torch.arange(3).repeat_interleave(20)
    feats = centres[labels] + torch.randn(60, 16, generator=generator)
    metrics, logits = probe_eval(feats, labels, feats[::3], labels[::3], 3, ProbeConfig(epochs=50))
    assert metrics["top1"] == 100.0 and logits.shape == (20, 3)
    noise = torch.randn(60, 16, generator=generator)
    shuffled, _ = probe_eval(
        noise[:30], labels[:30], noise[30:], labels[30:], 3, ProbeConfig(epochs=50)
    )
    assert shuffled["top1"] < 70.0
