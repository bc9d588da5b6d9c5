"""Estimators whose log-ratio is known exactly, for tests of the evaluation against closed
forms: the Gaussian task's exact ratio (optionally tempered), a ratio off by a constant
per observation, and a conjugate case with a non-uniform prior."""

import math

import numpy as np
import torch
from torch import nn

from bnre.tasks import Gaussian


class ExactRatio(nn.Module):
    """The true log-ratio log p(theta | x) - log p(theta) of the Gaussian task."""

    def __init__(self, task, scale=1.0):
        super().__init__()
        self.task, self.scale = task, scale

    def embed(self, x):
        return x

    def head_log_ratio(self, theta, embedding):
        return self.task.log_posterior(theta, embedding, self.scale) + self.task.prior.log_volume


def metrics_of(table, replicate):
    sub = table[table.replicate == replicate]
    return dict(zip(sub.metric, sub.value))


class NormalPrior(Gaussian):
    """The Gaussian likelihood under a truncated normal prior: a conjugate case whose
    posterior is the normal of precision 1/s0^2 + 1/sigma^2 truncated to the box."""

    name = "normal_prior"

    def __init__(self):
        super().__init__()
        from bnre.tasks import TruncatedNormal

        self.loc, self.scale = np.array([0.4, -0.3]), np.array([0.3, 0.5])
        self.prior = TruncatedNormal(self.loc, self.scale, self.lower, self.upper)

    def analytic_log_posterior(self, theta, x):
        precision = 1 / self.scale**2 + 1 / self.sigma**2
        mean = torch.as_tensor((self.loc / self.scale**2 + x / self.sigma**2) / precision)
        sd = torch.as_tensor(precision**-0.5)
        z = (theta - mean) / sd
        log_normal = -0.5 * z**2 - torch.log(sd) - 0.5 * math.log(2 * math.pi)
        mass = torch.special.ndtr((1 - mean) / sd) - torch.special.ndtr((-1 - mean) / sd)
        return (log_normal - torch.log(mass)).sum(-1)


class LikelihoodRatio(nn.Module):
    """log r = log p(x | theta) + c(x): the exact ratio up to a constant per observation."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def embed(self, x):
        return x

    def head_log_ratio(self, theta, embedding):
        return self.task.log_likelihood(theta, embedding)
