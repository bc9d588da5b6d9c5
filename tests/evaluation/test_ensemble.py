"""The ensemble's ratio is the mean of its members' ratios (log-mean-exp of log-ratios)."""

import math

import numpy as np
import torch
from torch import nn

from bnre.evaluation.ensemble import Ensemble, ensemble_log_ratio
from bnre.evaluation.evaluate import evaluate
from bnre.tasks import Gaussian


class AffineRatio(nn.Module):
    """log r(theta, x) = a . theta + b . x + c: a member whose log-ratio is known in closed form."""

    def __init__(self, a, b, c):
        super().__init__()
        self.a, self.b, self.c = torch.tensor(a), torch.tensor(b), c

    def embed(self, x):
        return x

    def head_log_ratio(self, theta, embedding):
        return theta @ self.a + embedding @ self.b + self.c

    def exact(self, theta, x):
        return (theta @ self.a.double() + x @ self.b.double() + self.c).numpy()


def test_two_members_average_their_ratios_pair_by_pair():
    members = [AffineRatio([1.0, -2.0], [0.5, 0.0], 0.3), AffineRatio([-0.5, 1.0], [0.0, 2.0], -1.0)]
    generator = torch.Generator().manual_seed(0)
    theta, x = torch.rand(50, 2, generator=generator) * 2 - 1, torch.randn(50, 2, generator=generator)
    log_r = Ensemble(members, x).log_ratio(theta[:, None], slice(0, 50))[..., 0]  # (3, 50)
    a, b = (m.exact(theta.double(), x.double()) for m in members)
    assert np.allclose(log_r[0].numpy(), a, atol=1e-5) and np.allclose(log_r[1].numpy(), b, atol=1e-5)
    # the mean of the ratios, not of the log-ratios (geometric pooling) nor their maximum
    assert np.allclose(log_r[2].numpy(), np.logaddexp(a, b) - math.log(2), atol=1e-5)
    assert not np.allclose(log_r[2].numpy(), (a + b) / 2, atol=1e-2)
    assert not np.allclose(log_r[2].numpy(), np.maximum(a, b), atol=1e-2)


def test_ensemble_log_ratio_of_three_and_of_one():
    log_r = torch.tensor([[0.0, 1.0], [math.log(2), -3.0], [math.log(3), 2.0]], dtype=torch.float64)
    expected = [math.log((1 + 2 + 3) / 3), math.log((math.e + math.exp(-3) + math.exp(2)) / 3)]
    assert torch.allclose(ensemble_log_ratio(log_r)[0], torch.tensor(expected, dtype=torch.float64))
    assert torch.equal(ensemble_log_ratio(log_r[:1]), log_r[:1])


def test_evaluated_ensemble_posterior_is_the_mixture_of_the_members_posteriors():
    """With members whose normalised posteriors differ, the ensemble's log posterior at the
    truth is log of the average of the members' unnormalised posteriors, normalised."""
    task = Gaussian()
    members = [AffineRatio([2.0, 0.0], [0.0, 0.0], 0.0), AffineRatio([0.0, -3.0], [0.0, 0.0], 0.5)]
    theta = np.array([[0.3, -0.2], [-0.7, 0.9]], dtype=np.float32)
    x = np.zeros((2, 2), dtype=np.float32)
    bins = 200
    _, _, pairs, _ = evaluate(task, members, theta, x, bins=bins)
    ensemble = pairs[pairs.replicate == "ensemble"].log_posterior.to_numpy()
    # by quadrature on a fine grid: p_ens ∝ (r_1 + r_2) / 2 over the uniform prior on [-1, 1]^2
    centres = (np.arange(bins) + 0.5) / bins * 2 - 1
    g = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    mix = lambda q: (np.exp(2 * q[..., 0]) + np.exp(-3 * q[..., 1] + 0.5)) / 2  # noqa: E731
    z = mix(g).mean() * 4  # integral over the box (cell volume 4 / bins^2)
    assert np.allclose(ensemble, np.log(mix(theta.astype(np.float64)) / z), atol=1e-4)
