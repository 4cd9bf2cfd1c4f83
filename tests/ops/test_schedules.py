"""Schedules equal the official DINO arrays, computed here with numpy as dino.utils does."""

from __future__ import annotations

import numpy as np
import pytest

from wtpipe.ops.schedules import cosine, linear_warmup_then_constant


def dino_cosine_array(base, final, epochs, niter_per_ep, warmup_epochs=0, start_warmup_value=0.0):
    warmup_iters = warmup_epochs * niter_per_ep
    warmup = (
        np.linspace(start_warmup_value, base, warmup_iters) if warmup_epochs > 0 else np.array([])
    )
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    main = final + 0.5 * (base - final) * (1 + np.cos(np.pi * iters / len(iters)))
    return np.concatenate((warmup, main))


@pytest.mark.parametrize("base, final, warmup", [(5e-4, 1e-6, 10), (0.04, 0.4, 0), (0.996, 1.0, 0)])
def test_cosine_equals_the_dino_array(base, final, warmup):
    epochs, per_epoch = 100, 7
    expected = dino_cosine_array(base, final, epochs, per_epoch, warmup)
    got = [
        cosine(step, epochs * per_epoch, base, final, warmup * per_epoch)
        for step in range(epochs * per_epoch)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("warmup_epochs, per_epoch", [(1, 1), (1, 2), (2, 1)])
def test_short_warmups_equal_the_dino_array(warmup_epochs, per_epoch):
    """A warm-up of one step is np.linspace(0, base, 1) = [0]: the first step trains at lr 0."""
    epochs = 5
    expected = dino_cosine_array(5e-4, 1e-6, epochs, per_epoch, warmup_epochs)
    got = [
        cosine(s, epochs * per_epoch, 5e-4, 1e-6, warmup_epochs * per_epoch)
        for s in range(epochs * per_epoch)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert got[0] == 0.0


def test_steps_past_the_end_stay_final():
    assert cosine(10_000, 100, 1.0, 0.25) == 0.25


def test_teacher_temperature_warm_up_equals_linspace():
    expected = np.concatenate((np.linspace(0.04, 0.07, 30), np.full(70, 0.07)))
    got = [linear_warmup_then_constant(e, 0.04, 0.07, 30) for e in range(100)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
