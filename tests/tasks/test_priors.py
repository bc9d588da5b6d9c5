"""bnre.tasks.priors against independent references.

The references are scipy.stats distributions (uniform, loguniform, truncnorm) and, for the
truncated log-normal, the change of variables :math:`y = \\log\\theta` applied by hand to
scipy's truncnorm. Normalisation is checked by numerical quadrature of the density itself,
gradients against their closed forms.
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from bnre.tasks import BoxUniform, LogUniform, Prior, TruncatedLogNormal, TruncatedNormal, get_task
from bnre.tasks import base


class LogOf:
    """The law of :math:`\\theta = e^y` for a 1-D scipy law of :math:`y`."""

    def __init__(self, y_law):
        self.y_law = y_law

    def cdf(self, theta):
        return self.y_law.cdf(np.log(theta))

    def logpdf(self, theta):
        return self.y_law.logpdf(np.log(theta)) - np.log(theta)


def truncnorm(loc, scale, lower, upper):
    return stats.truncnorm((lower - loc) / scale, (upper - loc) / scale, loc=loc, scale=scale)


# name: (prior, 1-D reference law per dimension)
CASES = {
    "box": (BoxUniform([-1.0, 0.25], [2.0, 3.0]), [stats.uniform(-1.0, 3.0), stats.uniform(0.25, 2.75)]),
    "log_uniform": (LogUniform([1e-3, 0.5], [10.0, 2.0]), [stats.loguniform(1e-3, 10.0), stats.loguniform(0.5, 2.0)]),
    "normal": (
        TruncatedNormal([0.5, -2.0], [1.0, 0.3], [-1.0, -3.0], [2.0, 1.0]),
        [truncnorm(0.5, 1.0, -1.0, 2.0), truncnorm(-2.0, 0.3, -3.0, 1.0)],
    ),
    # mass 2.9e-7: rejection from N(0, 1) would need ~3.5 million draws per sample
    "normal_tail": (TruncatedNormal(0.0, 1.0, [5.0], [6.0]), [truncnorm(0.0, 1.0, 5.0, 6.0)]),
    # Phi(40) == 1 in float64: the naive inverse CDF and log(Phi(b) - Phi(a)) break down
    "normal_far_tail": (TruncatedNormal(0.0, 1.0, [40.0], [41.0]), [truncnorm(0.0, 1.0, 40.0, 41.0)]),
    "normal_lower_tail": (TruncatedNormal(2.0, 0.1, [-2.0], [0.0]), [truncnorm(2.0, 0.1, -2.0, 0.0)]),
    "log_normal": (
        TruncatedLogNormal([0.0, 1.0], [0.5, 2.0], [0.2, 0.01], [3.0, 100.0]),
        [
            LogOf(truncnorm(0.0, 0.5, math.log(0.2), math.log(3.0))),
            LogOf(truncnorm(1.0, 2.0, math.log(0.01), math.log(100.0))),
        ],
    ),
    "log_normal_tail": (
        TruncatedLogNormal(0.0, 0.1, [2.0], [3.0]),
        [LogOf(truncnorm(0.0, 0.1, math.log(2.0), math.log(3.0)))],
    ),
}
NAMES = list(CASES)


def points(prior: Prior, shape: tuple[int, ...], rng: np.random.Generator, margin: float = 0.0) -> np.ndarray:
    """Uniform points in the box widened by ``margin`` of its width on each side."""
    width = prior.upper - prior.lower
    return rng.uniform(prior.lower - margin * width, prior.upper + margin * width, size=(*shape, prior.dim))


@pytest.mark.parametrize("name", NAMES)
def test_density_integrates_to_one(name):
    prior, _ = CASES[name]
    lo, hi = prior.lower, prior.upper
    if prior.dim == 1:
        mass, _ = integrate.quad(lambda t: math.exp(prior.log_prob(np.array([t]))), lo[0], hi[0], limit=200)
    else:
        f = lambda y, x: math.exp(prior.log_prob(np.array([x, y])))  # noqa: E731
        mass, _ = integrate.dblquad(f, lo[0], hi[0], lo[1], hi[1], epsabs=1e-10, epsrel=1e-8)
    assert mass == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_log_prob_matches_reference(name):
    prior, laws = CASES[name]
    theta = points(prior, (200,), np.random.default_rng(1))
    expected = sum(law.logpdf(theta[:, i]) for i, law in enumerate(laws))
    np.testing.assert_allclose(prior.log_prob(theta), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed, name", list(enumerate(NAMES)))
def test_samples_match_cdf(seed, name):
    prior, laws = CASES[name]
    theta = prior.sample(20_000, np.random.default_rng(seed))
    assert theta.shape == (20_000, prior.dim) and theta.dtype == np.float64
    assert np.all((theta >= prior.lower) & (theta <= prior.upper))
    for i, law in enumerate(laws):
        assert stats.kstest(theta[:, i], law.cdf).pvalue > 1e-3, (name, i)


def test_sample_empty():
    for prior, _ in CASES.values():
        assert prior.sample(0, np.random.default_rng(0)).shape == (0, prior.dim)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_and_torch_agree(name):
    prior, _ = CASES[name]
    theta = points(prior, (3, 4), np.random.default_rng(2), margin=0.2)  # some outside the box
    expected = prior.log_prob(theta)
    assert expected.shape == (3, 4) and expected.dtype == np.float64
    assert np.isinf(expected).any() and np.isfinite(expected).any()
    got = prior.log_prob(torch.from_numpy(theta))
    assert got.dtype == torch.float64 and got.shape == (3, 4)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)  # -inf == -inf
    got32 = prior.log_prob(torch.from_numpy(theta).float())
    assert got32.dtype == torch.float32 and got32.shape == (3, 4)
    inside = np.isfinite(expected)
    # float32 rounds theta itself (|d log p / d theta| reaches ~1e3 here)
    np.testing.assert_allclose(got32.numpy()[inside], expected[inside], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_outside_box_and_shapes(name):
    prior, _ = CASES[name]
    mid = (prior.lower + prior.upper) / 2
    below, above = mid.copy(), mid.copy()
    below[-1] = prior.lower[-1] - 1e-9 * (prior.upper[-1] - prior.lower[-1])
    above[0] = np.nextafter(prior.upper[0], np.inf)
    nan = mid.copy()
    nan[0] = np.nan
    theta = np.stack([mid, below, above, prior.lower, prior.upper, nan])
    for value in (prior.log_prob(theta), prior.log_prob(torch.from_numpy(theta)).numpy()):
        assert np.isfinite(value[[0, 3, 4]]).all()  # the box is closed
        assert np.all(value[[1, 2, 5]] == -np.inf)
    assert prior.log_prob(mid).shape == ()
    assert prior.log_prob(torch.from_numpy(mid)).shape == ()
    assert prior.log_prob(np.zeros((0, prior.dim))).shape == (0,)
    with pytest.raises(ValueError, match=rf"{type(prior).__name__}: theta must have shape \(\.\.\., {prior.dim}\)"):
        prior.log_prob(np.zeros((5, prior.dim + 1)))
    with pytest.raises(ValueError, match="theta must have shape"):
        prior.log_prob(torch.zeros(5, prior.dim + 1))


@pytest.mark.parametrize("name", NAMES)
def test_clamped_log_prob_is_the_density_at_the_nearest_point_of_the_box(name):
    prior, _ = CASES[name]
    width = prior.upper - prior.lower
    theta = np.stack([prior.lower - width, (prior.lower + prior.upper) / 2, prior.upper + 3 * width])
    nearest = np.clip(theta, prior.lower, prior.upper)
    for values, reference in ((prior.log_prob(theta, clamp=True), prior.log_prob(nearest)),
                              (prior.log_prob(torch.from_numpy(theta), clamp=True).numpy(),
                               prior.log_prob(torch.from_numpy(nearest)).numpy())):
        assert np.isfinite(values).all()
        np.testing.assert_allclose(values, reference, rtol=1e-12)


def test_gradients():
    theta = torch.tensor([[0.3, 0.7], [1.5, -2.5]], dtype=torch.float64, requires_grad=True)
    loc, scale = np.array([0.5, -2.0]), np.array([1.0, 0.3])
    CASES["normal"][0].log_prob(theta).sum().backward()
    expected = -(theta.detach().numpy() - loc) / scale**2
    np.testing.assert_allclose(theta.grad.numpy(), expected, rtol=1e-12)

    theta = torch.tensor([[0.3, 0.7], [2.5, 50.0]], dtype=torch.float64, requires_grad=True)
    loc, scale = np.array([0.0, 1.0]), np.array([0.5, 2.0])
    CASES["log_normal"][0].log_prob(theta).sum().backward()
    t = theta.detach().numpy()
    np.testing.assert_allclose(theta.grad.numpy(), -(np.log(t) - loc) / (scale**2 * t) - 1 / t, rtol=1e-12)

    theta = torch.tensor([[0.3, 0.7]], dtype=torch.float64, requires_grad=True)
    CASES["log_uniform"][0].log_prob(theta).sum().backward()
    np.testing.assert_allclose(theta.grad.numpy(), -1 / theta.detach().numpy(), rtol=1e-12)

    # outside the box: -inf with a zero (not NaN) gradient
    theta = torch.tensor([[-1.0, 0.7]], dtype=torch.float64, requires_grad=True)
    value = CASES["log_normal"][0].log_prob(theta)
    value.sum().backward()
    assert value.item() == -math.inf and torch.all(theta.grad == 0)


def test_box_uniform_as_before():
    assert base.BoxUniform is BoxUniform and issubclass(BoxUniform, Prior)
    prior = BoxUniform([0.0, 0.0, 0.0], [10.0, 10.0, 1.0 / 3.0])
    assert prior.dim == 3
    assert prior.lower.dtype == prior.upper.dtype == np.float64
    assert prior.log_volume == pytest.approx(math.log(10 * 10 / 3), rel=1e-15)
    theta = points(prior, (7,), np.random.default_rng(3))
    np.testing.assert_array_equal(prior.log_prob(theta), np.full(7, -prior.log_volume))
    np.testing.assert_array_equal(prior.log_prob(torch.from_numpy(theta)).numpy(), np.full(7, -prior.log_volume))
    assert prior.log_prob(torch.from_numpy(theta).float()).dtype == torch.float32
    assert prior.log_prob(torch.zeros(2, 3, dtype=torch.long)).dtype == torch.get_default_dtype()
    # the same random stream as before (datasets simulated earlier stay reproducible)
    expected = np.random.default_rng(4).uniform(prior.lower, prior.upper, size=(50, 3))
    np.testing.assert_array_equal(prior.sample(50, np.random.default_rng(4)), expected)
    assert isinstance(get_task("slcp").prior, BoxUniform)


def test_scalar_parameters_broadcast():
    prior = TruncatedNormal(0.5, 2.0, [-1.0, -2.0, -3.0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(prior.loc, [0.5] * 3)
    np.testing.assert_array_equal(prior.scale, [2.0] * 3)
    theta = np.array([0.2, -1.0, 2.5])
    expected = sum(truncnorm(0.5, 2.0, -d, d).logpdf(t) for d, t in zip([1.0, 2.0, 3.0], theta))
    assert prior.log_prob(theta) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: BoxUniform([0.0, -np.inf], [1.0, 1.0]), r"BoxUniform: .*finite box.*lower\[1\]=-inf"),
        (lambda: LogUniform([1.0], [np.nan]), r"LogUniform: .*finite box.*upper\[0\]=nan"),
        (lambda: TruncatedNormal(0.0, 1.0, [0.0], [np.inf]), r"TruncatedNormal: .*finite box.*upper\[0\]=inf"),
        (lambda: BoxUniform([0.0, 1.0], [1.0, 1.0]), r"BoxUniform: empty box, need upper > lower"),
        (lambda: TruncatedNormal(0.0, 1.0, [2.0], [1.0]), r"TruncatedNormal: empty box, need upper > lower"),
        (lambda: BoxUniform([0.0, 0.0], [1.0]), r"BoxUniform: lower and upper must be 1-D"),
        (lambda: BoxUniform([[0.0]], [[1.0]]), r"BoxUniform: lower and upper must be 1-D"),
        (lambda: BoxUniform([], []), r"BoxUniform: lower and upper must be 1-D, non-empty"),
        (lambda: LogUniform([0.0, 1.0], [1.0, 2.0]), r"LogUniform: lower must be positive"),
        (lambda: TruncatedLogNormal(0.0, 1.0, [-1.0], [1.0]), r"TruncatedLogNormal: lower must be positive"),
        (lambda: TruncatedNormal(0.0, 0.0, [0.0], [1.0]), r"TruncatedNormal: scale must be positive"),
        (lambda: TruncatedLogNormal(0.0, [1, -1], [1, 2], [2, 3]), r"TruncatedLogNormal: scale must be pos"),
        (lambda: TruncatedNormal([0, 1, 2], 1.0, [0, 0], [1, 1]), r"TruncatedNormal: loc must .* length 2"),
        (lambda: TruncatedLogNormal(0.0, [[1.0]], [1.0], [2.0]), r"TruncatedLogNormal: scale must be .* length 1"),
        (lambda: TruncatedNormal(np.nan, 1.0, [0.0], [1.0]), r"TruncatedNormal: loc must be finite"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_prior_is_abstract():
    with pytest.raises(TypeError):
        Prior([0.0], [1.0])
