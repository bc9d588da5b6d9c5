r"""The task interface shared by every benchmark.

A task is a prior :math:`p(\theta)`, a box :math:`[l, u]` supporting it, a simulator
:math:`x \sim p(x \mid \theta)` and a default embedding network for :math:`x`. Tasks
whose likelihood is tractable also give :math:`\log p(x \mid \theta)` exactly
(:meth:`Task.log_likelihood`, :attr:`Task.tractable`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import nn

from .priors import BoxUniform, Prior

__all__ = ["BoxUniform", "Task", "promote"]  # BoxUniform lives in .priors


def promote(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors in their promoted dtype, or the default float dtype if that is integral."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    return tuple(t.to(dtype) for t in tensors)


class Task(ABC):
    r"""A simulation-based inference benchmark.

    Subclasses set :attr:`name`, :attr:`prior`, :attr:`x_shape`, :attr:`labels` and
    implement :meth:`simulate`, vectorised over a batch of parameters.
    """

    name: str
    prior: Prior
    x_shape: tuple[int, ...]
    labels: tuple[str, ...]

    @property
    def theta_dim(self) -> int:
        return self.prior.dim

    @property
    def lower(self) -> np.ndarray:
        return self.prior.lower

    @property
    def upper(self) -> np.ndarray:
        return self.prior.upper

    @abstractmethod
    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r"""Draw :math:`x_i \sim p(x \mid \theta_i)` for every row of ``theta`` (N×D).

        Returns an array of shape ``(N, *x_shape)``.
        """

    def log_likelihood(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r"""Exact :math:`\log p(x \mid \theta)`, where the task's likelihood is tractable.

        ``theta`` (..., D) broadcasts against ``x`` (..., *x_shape) over the leading
        dimensions, and the result has the broadcast leading shape. Vectorised torch on
        the inputs' device, computed in their (promoted) dtype. For ``theta`` outside the
        prior box the value is finite or :math:`-\infty` (callers add the log prior).
        """
        raise NotImplementedError(f"{self.name}: the likelihood is not tractable")

    @property
    def tractable(self) -> bool:
        """Whether the task gives its exact likelihood (overrides :meth:`log_likelihood`)."""
        return type(self).log_likelihood is not Task.log_likelihood

    def preprocess(self) -> nn.Module:
        """Fixed, parameter-free transform of ``x`` applied before standardisation."""
        return nn.Identity()

    def embedding(self) -> nn.Module:
        """Default embedding network of ``x`` (flattening for low-dimensional tasks)."""
        return nn.Flatten()

    def embedding_features(self) -> int:
        """Size of the embedding of one observation."""
        return int(np.prod(self.x_shape))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(theta_dim={self.theta_dim}, x_shape={self.x_shape})"
