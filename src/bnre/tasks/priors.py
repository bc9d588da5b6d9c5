r"""Priors :math:`p(\theta)` on a finite box :math:`[l, u] = \prod_i [l_i, u_i]`.

Every prior is a density on :math:`\mathbb{R}^D` that is zero outside the box (the box is
also the evaluation grid's domain). All of them are products of independent 1-D factors:

* :class:`BoxUniform`: :math:`\theta_i \sim \mathcal{U}(l_i, u_i)`;
* :class:`LogUniform`: :math:`\log \theta_i \sim \mathcal{U}(\log l_i, \log u_i)`;
* :class:`TruncatedNormal`: :math:`\theta_i \sim \mathcal{N}(\mu_i, \sigma_i^2)` truncated
  to :math:`[l_i, u_i]`;
* :class:`TruncatedLogNormal`: :math:`\log \theta_i \sim \mathcal{N}(\mu_i, \sigma_i^2)`
  truncated to :math:`[\log l_i, \log u_i]`.

:meth:`Prior.log_prob` takes numpy or torch ``(..., D)`` and returns ``(...)``: float64 for
numpy, the input's dtype and device for torch, :math:`-\infty` outside the (closed) box.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np
import torch
from scipy.special import log_ndtr, ndtri_exp

ArrayLike = Sequence[float] | np.ndarray
Scalars = float | Sequence[float] | np.ndarray
Array = np.ndarray | torch.Tensor


class Prior(ABC):
    r"""A density :math:`p(\theta)` on :math:`\mathbb{R}^D` supported by the box :math:`[l, u]`.

    Subclasses implement :meth:`sample` and the log density inside the box for numpy
    (:meth:`_log_prob_numpy`) and torch (:meth:`_log_prob_torch`); :meth:`log_prob`
    dispatches, checks the shape and sets :math:`-\infty` outside the box.
    """

    def __init__(self, lower: ArrayLike, upper: ArrayLike):
        self.lower = np.array(lower, dtype=np.float64)
        self.upper = np.array(upper, dtype=np.float64)
        if self.lower.ndim != 1 or self.lower.shape != self.upper.shape or self.lower.size == 0:
            raise self._error(
                "lower and upper must be 1-D, non-empty and of equal length, "
                f"got shapes {self.lower.shape} and {self.upper.shape}"
            )
        bad = [
            f"{name}[{i}]={v}"
            for name, bound in (("lower", self.lower), ("upper", self.upper))
            for i, v in enumerate(bound)
            if not np.isfinite(v)
        ]
        if bad:
            raise self._error(f"the support must be a finite box; non-finite bounds: {', '.join(bad)}")
        if not np.all(self.upper > self.lower):
            raise self._error(f"empty box, need upper > lower: lower={self.lower}, upper={self.upper}")

    @property
    def dim(self) -> int:
        return self.lower.size

    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` parameters, shape ``(n, D)``, float64, inside the box."""

    def log_prob(self, theta: Array, clamp: bool = False) -> Array:
        """Log density of ``theta`` with shape ``(..., D)``; :math:`-\\infty` outside the box,
        or with ``clamp`` the density at ``theta`` clamped onto the box (finite everywhere)."""
        if isinstance(theta, torch.Tensor):
            if not theta.is_floating_point():
                theta = theta.to(torch.get_default_dtype())
            self._check_shape(theta.shape)
            lower, upper = self._tensor(self.lower, theta), self._tensor(self.upper, theta)
            # clamped, so that no NaN (nor its gradient) comes from outside the box
            value = self._log_prob_torch(torch.clamp(theta, lower, upper))
            if clamp:
                return value
            inside = ((theta >= lower) & (theta <= upper)).all(dim=-1)
            return torch.where(inside, value, torch.full_like(value, -math.inf))
        theta = np.asarray(theta, dtype=np.float64)
        self._check_shape(theta.shape)
        value = self._log_prob_numpy(np.clip(theta, self.lower, self.upper))
        if clamp:
            return value
        inside = np.all((theta >= self.lower) & (theta <= self.upper), axis=-1)
        return np.where(inside, value, -np.inf)

    @abstractmethod
    def _log_prob_numpy(self, theta: np.ndarray) -> np.ndarray:
        """Log density of float64 ``theta`` (..., D), all inside the box."""

    @abstractmethod
    def _log_prob_torch(self, theta: torch.Tensor) -> torch.Tensor:
        """Log density of floating ``theta`` (..., D), all inside the box, in its dtype."""

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) == 0 or shape[-1] != self.dim:
            raise self._error(f"theta must have shape (..., {self.dim}), got {tuple(shape)}")

    def _per_dim(self, name: str, value: Scalars) -> np.ndarray:
        """``value`` as a float64 array of length D (a scalar is broadcast), finite."""
        array = np.asarray(value, dtype=np.float64)
        if array.ndim == 0:
            array = np.full(self.dim, float(array))
        if array.shape != (self.dim,):
            raise self._error(f"{name} must be a scalar or have length {self.dim}, got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise self._error(f"{name} must be finite, got {name}={array}")
        return array

    def _require_positive_lower(self) -> None:
        if not np.all(self.lower > 0):
            raise self._error(f"lower must be positive (the density is in log theta), got lower={self.lower}")

    def _error(self, message: str) -> ValueError:
        return ValueError(f"{type(self).__name__}: {message}")

    @staticmethod
    def _tensor(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(array, dtype=like.dtype, device=like.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lower={self.lower.tolist()}, upper={self.upper.tolist()})"


class BoxUniform(Prior):
    r"""Uniform prior on the box :math:`\prod_i [l_i, u_i]`.

    :math:`\log p(\theta) = -\sum_i \log(u_i - l_i)` inside the box, :math:`-\infty`
    outside.
    """

    def __init__(self, lower: ArrayLike, upper: ArrayLike):
        super().__init__(lower, upper)
        self.log_volume = float(np.sum(np.log(self.upper - self.lower)))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` parameters, shape ``(n, D)``, float64."""
        return rng.uniform(self.lower, self.upper, size=(n, self.dim))

    def _log_prob_numpy(self, theta: np.ndarray) -> np.ndarray:
        return np.full(theta.shape[:-1], -self.log_volume)

    def _log_prob_torch(self, theta: torch.Tensor) -> torch.Tensor:
        return theta.new_full(theta.shape[:-1], -self.log_volume)


class LogUniform(Prior):
    r"""Independent :math:`\log \theta_i \sim \mathcal{U}(\log l_i, \log u_i)`, with :math:`l > 0`.

    :math:`\log p(\theta) = -\sum_i \left[\log \theta_i + \log(\log u_i - \log l_i)\right]`
    inside the box.
    """

    def __init__(self, lower: ArrayLike, upper: ArrayLike):
        super().__init__(lower, upper)
        self._require_positive_lower()
        self._log_lower, self._log_upper = np.log(self.lower), np.log(self.upper)
        self._log_norm = float(np.sum(np.log(self._log_upper - self._log_lower)))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """:math:`\\theta_i = \\exp(\\log l_i + U (\\log u_i - \\log l_i))`, :math:`U \\sim \\mathcal{U}(0, 1)`."""
        log_theta = rng.uniform(self._log_lower, self._log_upper, size=(n, self.dim))
        return np.clip(np.exp(log_theta), self.lower, self.upper)

    def _log_prob_numpy(self, theta: np.ndarray) -> np.ndarray:
        return -np.log(theta).sum(-1) - self._log_norm

    def _log_prob_torch(self, theta: torch.Tensor) -> torch.Tensor:
        return -torch.log(theta).sum(-1) - self._log_norm


class _TruncatedStandardNormal:
    r"""Per dimension, :math:`z \sim \mathcal{N}(0, 1)` truncated to :math:`[a, b]`.

    Where the interval lies above zero it is mirrored (:math:`z \to -z`), so that the CDF
    values used, :math:`\Phi(a) \le \Phi(b)`, sit in the accurate lower tail, and they are
    kept in log space: the log mass :math:`\log(\Phi(b) - \Phi(a))` and the inverse CDF
    :math:`z = \Phi^{-1}(\Phi(a) + U (\Phi(b) - \Phi(a)))` stay accurate however far in a
    tail the interval is.
    """

    def __init__(self, a: np.ndarray, b: np.ndarray):
        self.flip = a + b > 0
        self.a, self.b = np.where(self.flip, -b, a), np.where(self.flip, -a, b)
        self.log_cdf_a = log_ndtr(self.a)
        self.log_mass = _log_diff_exp(log_ndtr(self.b), self.log_cdf_a)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        u = 1.0 - rng.random((n, self.a.size))  # in (0, 1]
        z = ndtri_exp(np.logaddexp(self.log_cdf_a, np.log(u) + self.log_mass))
        z = np.clip(z, self.a, self.b)
        return np.where(self.flip, -z, z)


def _log_diff_exp(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r""":math:`\log(e^x - e^y)` for :math:`x > y`, without cancellation."""
    d = y - x
    return x + np.where(d > -math.log(2), np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


class _TruncatedGaussian(Prior):
    r"""Shared maths: :math:`y_i = g(\theta_i) \sim \mathcal{N}(\mu_i, \sigma_i^2)` truncated to
    :math:`[g(l_i), g(u_i)]`, for an increasing :math:`g` (identity or log).

    The quadratic form is written around the point :math:`e_i` of the interval nearest to
    :math:`\mu_i`: :math:`(y - \mu)^2 = (y - e)(y + e - 2\mu) + (e - \mu)^2`, with the
    constant folded into the normalisation, so that a box far in a tail does not cancel
    two large numbers (which matters in float32).
    """

    def __init__(self, loc: Scalars, scale: Scalars, lower: ArrayLike, upper: ArrayLike):
        super().__init__(lower, upper)
        self.loc = self._per_dim("loc", loc)
        self.scale = self._per_dim("scale", scale)
        if not np.all(self.scale > 0):
            raise self._error(f"scale must be positive, got scale={self.scale}")

    def _setup(self, y_lower: np.ndarray, y_upper: np.ndarray) -> None:
        self._y_lower, self._y_upper = y_lower, y_upper
        self._std = _TruncatedStandardNormal((y_lower - self.loc) / self.scale, (y_upper - self.loc) / self.scale)
        self._edge = np.clip(self.loc, y_lower, y_upper)
        self._log_norm = float(
            np.sum(
                0.5 * math.log(2 * math.pi)
                + np.log(self.scale)
                + self._std.log_mass
                + 0.5 * ((self._edge - self.loc) / self.scale) ** 2
            )
        )

    def _sample_y(self, n: int, rng: np.random.Generator) -> np.ndarray:
        y = self.loc + self.scale * self._std.sample(n, rng)
        return np.clip(y, self._y_lower, self._y_upper)

    def _log_gauss(self, y: Array, loc: Array, edge: Array, scale: Array) -> Array:
        """Truncated Gaussian log density of ``y`` (numpy or torch, the constants alike)."""
        return -((y - edge) * (y + edge - 2 * loc) / (2 * scale**2)).sum(-1) - self._log_norm


class TruncatedNormal(_TruncatedGaussian):
    r"""Independent :math:`\theta_i \sim \mathcal{N}(\mu_i, \sigma_i^2)` truncated to :math:`[l_i, u_i]`.

    :math:`\log p(\theta) = \sum_i \left[-\frac{(\theta_i - \mu_i)^2}{2\sigma_i^2}
    - \log(\sqrt{2\pi}\,\sigma_i) - \log(\Phi(b_i) - \Phi(a_i))\right]` inside the box,
    with :math:`a_i = (l_i - \mu_i)/\sigma_i`, :math:`b_i = (u_i - \mu_i)/\sigma_i`. Sampled by
    the inverse CDF. ``loc`` and ``scale`` are scalars or have length D.
    """

    def __init__(self, loc: Scalars, scale: Scalars, lower: ArrayLike, upper: ArrayLike):
        super().__init__(loc, scale, lower, upper)
        self._setup(self.lower, self.upper)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` parameters, shape ``(n, D)``, float64, by the inverse CDF."""
        return self._sample_y(n, rng)

    def _log_prob_numpy(self, theta: np.ndarray) -> np.ndarray:
        return self._log_gauss(theta, self.loc, self._edge, self.scale)

    def _log_prob_torch(self, theta: torch.Tensor) -> torch.Tensor:
        loc, edge, scale = (self._tensor(a, theta) for a in (self.loc, self._edge, self.scale))
        return self._log_gauss(theta, loc, edge, scale)


class TruncatedLogNormal(_TruncatedGaussian):
    r"""Independent :math:`\log \theta_i \sim \mathcal{N}(\mu_i, \sigma_i^2)` truncated to
    :math:`[\log l_i, \log u_i]`, with :math:`l > 0`.

    :math:`\log p(\theta) = \sum_i \left[-\frac{(\log \theta_i - \mu_i)^2}{2\sigma_i^2}
    - \log \theta_i - \log(\sqrt{2\pi}\,\sigma_i) - \log(\Phi(b_i) - \Phi(a_i))\right]`
    inside the box (the :math:`1/\theta_i` is the Jacobian), with
    :math:`a_i = (\log l_i - \mu_i)/\sigma_i`, :math:`b_i = (\log u_i - \mu_i)/\sigma_i`.
    ``loc`` and ``scale`` (of :math:`\log\theta`) are scalars or have length D.
    """

    def __init__(self, loc: Scalars, scale: Scalars, lower: ArrayLike, upper: ArrayLike):
        super().__init__(loc, scale, lower, upper)
        self._require_positive_lower()
        self._setup(np.log(self.lower), np.log(self.upper))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` parameters, shape ``(n, D)``, float64, by the inverse CDF of :math:`\\log\\theta`."""
        return np.clip(np.exp(self._sample_y(n, rng)), self.lower, self.upper)

    def _log_prob_numpy(self, theta: np.ndarray) -> np.ndarray:
        y = np.log(theta)
        return self._log_gauss(y, self.loc, self._edge, self.scale) - y.sum(-1)

    def _log_prob_torch(self, theta: torch.Tensor) -> torch.Tensor:
        y = torch.log(theta)
        loc, edge, scale = (self._tensor(a, theta) for a in (self.loc, self._edge, self.scale))
        return self._log_gauss(y, loc, edge, scale) - y.sum(-1)


class Independent(Prior):
    r"""The product :math:`p(\theta) = \prod_j p_j(\theta_{(j)})` of priors on consecutive
    blocks :math:`\theta_{(j)}` of the parameters, each of its own family; its box is the
    product of theirs. Sampling draws each factor in turn from the same stream."""

    def __init__(self, *factors: Prior):
        if not factors or not all(isinstance(f, Prior) for f in factors):
            raise ValueError(f"Independent: the factors must be priors (bnre.tasks.priors), got {factors!r}")
        self.factors = tuple(factors)
        super().__init__(np.concatenate([f.lower for f in factors]), np.concatenate([f.upper for f in factors]))
        ends = np.cumsum([f.dim for f in factors])
        self._blocks = [slice(int(end - f.dim), int(end)) for f, end in zip(factors, ends)]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([f.sample(n, rng) for f in self.factors], axis=-1)

    def _log_prob_numpy(self, theta: np.ndarray) -> np.ndarray:
        return sum(f._log_prob_numpy(theta[..., s]) for f, s in zip(self.factors, self._blocks))

    def _log_prob_torch(self, theta: torch.Tensor) -> torch.Tensor:
        return sum(f._log_prob_torch(theta[..., s]) for f, s in zip(self.factors, self._blocks))

    def __repr__(self) -> str:
        return f"Independent({', '.join(map(repr, self.factors))})"
