"""bnre.nets.estimators: the MLP, the ratio estimator's standardisation, θ rescaling and head, against
numpy references and hand-set weights."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from bnre.nets.estimators import ACTIVATIONS, MLP, RatioEstimator

LOWER, UPPER = [0.0, -2.0], [10.0, 4.0]


class Square(nn.Module):
    """A parameter-free preprocess that is not the identity."""

    def forward(self, x):
        return x * x


def estimator(hidden=(), activation="SELU", dim=3, preprocess=None, lower=LOWER, upper=UPPER):
    """Ratio estimator with the identity embedding of ``x`` (dim,)."""
    return RatioEstimator(lower, upper, nn.Identity(), dim, list(hidden), activation, (dim,), preprocess)


def dataset(n: int, seed: int = 0) -> np.ndarray:
    """float32 rows with columns of very different offsets and scales: 1e4 + N(0, 0.01²)
    (float32 resolves 1e-3 there), 1e6 + N(0, 1), N(-3, 2²) and 1e-3 N(0, 1)."""
    g = np.random.default_rng(seed)
    columns = [1e4 + 0.01 * g.standard_normal(n), 1e6 + g.standard_normal(n), -3 + 2 * g.standard_normal(n),
               1e-3 * g.standard_normal(n)]
    return np.stack(columns, axis=1).astype(np.float32)


def check_statistics(model, reference_rows: np.ndarray):
    """x_mean and x_std against numpy's mean and std(ddof=1) in float64, to float32 precision.

    A naive one-pass sum of x and x² (even in float64) is off by 1e-4 relative on the
    offset columns; float32 accumulation loses their standard deviation entirely."""
    rows = reference_rows.astype(np.float64)
    np.testing.assert_allclose(model.x_mean.numpy(), rows.mean(axis=0), rtol=3e-7, atol=1e-12)
    np.testing.assert_allclose(model.x_std.numpy(), rows.std(axis=0, ddof=1), rtol=1e-6)
    assert model.x_mean.dtype == model.x_std.dtype == torch.float32


# ---------------------------------------------------------------------------------------
# set_standardisation


@pytest.mark.parametrize("chunk", [7, 4096, 1_000_000], ids=["chunk=7", "default-chunk", "one-chunk"])
def test_standardisation_of_a_tensor_in_chunks_is_numpy_mean_and_std(chunk):
    x = dataset(10_000)  # 10,000 rows: 3 chunks of the default 4096 (the last one uneven)
    model = estimator(dim=4)
    if chunk == 4096:
        model.set_standardisation(torch.as_tensor(x))
    else:
        model.set_standardisation(torch.as_tensor(x), chunk=chunk)
    check_statistics(model, x)


@pytest.mark.parametrize("container", [list, iter], ids=["list", "generator"])
def test_standardisation_of_uneven_chunks_is_numpy_mean_and_std(container):
    sizes = [1, 5, 3000, 17, 4096, 999]  # a first chunk of one row, more than 4096 rows in all
    x = dataset(sum(sizes), seed=1)
    chunks = list(torch.split(torch.as_tensor(x), sizes))
    model = estimator(dim=4)
    model.set_standardisation(container(chunks))
    check_statistics(model, x)


def test_standardisation_skips_empty_chunks():
    """An empty chunk (first or later) adds no rows; it used to make the centre NaN."""
    sizes = [0, 40, 0, 3000, 0]
    x = dataset(sum(sizes), seed=2)
    model = estimator(dim=4)
    model.set_standardisation(iter(torch.split(torch.as_tensor(x), sizes)))
    check_statistics(model, x)


def test_standardisation_is_of_the_preprocessed_data():
    x = dataset(5_000, seed=2)[:, 2:]  # the N(-3, 4) and 1e-3 N(0, 1) columns
    model = estimator(dim=2, preprocess=Square())
    model.set_standardisation(torch.as_tensor(x), chunk=999)
    check_statistics(model, x.astype(np.float64) ** 2)


def test_constant_feature_gets_the_standard_deviation_floor():
    x = np.tile(np.float32([[2.5, 7.0]]), (100, 1))
    x[:, 1] += np.random.default_rng(3).standard_normal(100).astype(np.float32)
    model = estimator(dim=2)
    model.set_standardisation(torch.as_tensor(x), chunk=30)
    assert model.x_mean[0] == 2.5
    assert model.x_std[0] == pytest.approx(1e-6)
    assert torch.isfinite(model.embed(torch.as_tensor(x))).all()


@pytest.mark.parametrize(
    "data", [torch.zeros(1, 3), [], [torch.zeros(1, 3)]], ids=["one-row", "no-chunk", "one-row-chunk"]
)
def test_standardisation_refuses_fewer_than_two_rows(data):
    model = estimator()
    with pytest.raises(ValueError, match="at least 2"):
        model.set_standardisation(data)


# ---------------------------------------------------------------------------------------
# MLP


def test_mlp_layer_widths_and_activation():
    mlp = MLP(3, 2, [5, 7], "ELU")
    layers = list(mlp)
    assert [type(layer) for layer in layers] == [nn.Linear, nn.ELU, nn.Linear, nn.ELU, nn.Linear]
    assert [(layer.in_features, layer.out_features) for layer in layers[::2]] == [(3, 5), (5, 7), (7, 2)]
    assert mlp(torch.zeros(4, 3)).shape == (4, 2)


def test_mlp_without_hidden_layers_is_one_linear_layer():
    layers = list(MLP(6, 1, [], "ReLU"))
    assert len(layers) == 1 and isinstance(layers[0], nn.Linear)
    assert (layers[0].in_features, layers[0].out_features) == (6, 1)


@pytest.mark.parametrize(
    "name, cls", [("SELU", nn.SELU), ("ReLU", nn.ReLU), ("ELU", nn.ELU), ("SiLU", nn.SiLU), ("GELU", nn.GELU)]
)
def test_mlp_activation_names_are_the_torch_activations(name, cls):
    assert ACTIVATIONS[name] is cls
    activations = [layer for layer in MLP(2, 1, [4, 4], name) if not isinstance(layer, nn.Linear)]
    assert len(activations) == 2 and all(type(a) is cls for a in activations)


def test_mlp_refuses_an_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        MLP(2, 1, [4], "Tanhh")


# ---------------------------------------------------------------------------------------
# head: θ rescaled from the prior box to [-1, 1]


def set_linear(layer: nn.Linear, weight, bias):
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32).reshape(layer.weight.shape))
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32).reshape(layer.bias.shape))


@pytest.mark.parametrize("grad", [True, False], ids=["training", "inference"])
def test_head_sees_theta_rescaled_from_the_prior_box_to_minus_one_one(grad):
    model = estimator(dim=1)  # hidden=[]: the head is one Linear layer on (theta_1, theta_2, e)
    theta = torch.tensor([LOWER, UPPER, [5.0, 1.0], [2.5, 2.5]])
    expected = np.array([[-1, -1], [1, 1], [0, 0], [-0.5, 0.5]], dtype=np.float64)  # (theta - mid) / half-width
    for i in range(2):
        set_linear(model.head[0], np.eye(3)[i], 0.0)  # the head returns the i-th rescaled parameter
        with torch.set_grad_enabled(grad):
            out = model.head_log_ratio(theta, torch.zeros(4, 1))
        np.testing.assert_allclose(out.detach().numpy(), expected[:, i], rtol=0, atol=1e-6)


def numpy_head(theta, e, w1, b1, w2, b2):
    """The [3]-hidden-unit ReLU head by hand, float64."""
    z = np.concatenate([(theta - np.add(LOWER, UPPER) / 2) / (np.subtract(UPPER, LOWER) / 2), e], axis=-1)
    return (np.maximum(z @ w1.T + b1, 0.0) @ w2.T + b2)[..., 0]


@pytest.mark.parametrize("grad", [True, False], ids=["training", "inference"])
def test_head_with_a_hidden_layer_matches_the_hand_computation(grad):
    g = np.random.default_rng(4)
    w1, b1, w2, b2 = g.normal(size=(3, 4)), g.normal(size=3), g.normal(size=(1, 3)), g.normal(size=1)
    model = estimator(hidden=[3], activation="ReLU", dim=2)
    set_linear(model.head[0], w1, b1)
    set_linear(model.head[2], w2, b2)
    theta = np.column_stack([g.uniform(0, 10, 64), g.uniform(-2, 4, 64)])
    e = g.normal(size=(64, 2))
    theta_t, e_t = torch.tensor(theta, dtype=torch.float32), torch.tensor(e, dtype=torch.float32)
    theta_copy, e_copy = theta_t.clone(), e_t.clone()
    with torch.set_grad_enabled(grad):
        out = model.head_log_ratio(theta_t, e_t)
    np.testing.assert_allclose(out.detach().numpy(), numpy_head(theta, e, w1, b1, w2, b2), rtol=1e-5, atol=1e-5)
    # the in-place inference path leaves the inputs and the activation's setting alone
    assert torch.equal(theta_t, theta_copy) and torch.equal(e_t, e_copy)
    assert model.head[1].inplace is False


def test_head_broadcasts_a_grid_of_theta_against_a_batch_of_embeddings():
    g = np.random.default_rng(5)
    w1, b1, w2, b2 = g.normal(size=(3, 4)), g.normal(size=3), g.normal(size=(1, 3)), g.normal(size=1)
    model = estimator(hidden=[3], activation="ReLU", dim=2)
    set_linear(model.head[0], w1, b1)
    set_linear(model.head[2], w2, b2)
    theta = np.column_stack([g.uniform(0, 10, 5), g.uniform(-2, 4, 5)])  # G = 5
    e = g.normal(size=(7, 2))  # N = 7
    with torch.no_grad():
        out = model.head_log_ratio(torch.tensor(theta[:, None], dtype=torch.float32),
                                   torch.tensor(e[None], dtype=torch.float32))
    assert out.shape == (5, 7)
    expected = np.array([[numpy_head(theta[i], e[j], w1, b1, w2, b2) for j in range(7)] for i in range(5)])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------
# embed and forward: preprocess, then standardisation, then embedding and head


def test_embed_applies_the_preprocess_then_the_standardisation():
    model = estimator(dim=3, preprocess=Square())
    mean, std = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.25, 4.0])
    model.x_mean.copy_(torch.tensor(mean))
    model.x_std.copy_(torch.tensor(std))
    x = np.random.default_rng(6).normal(size=(16, 3))
    out = model.embed(torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(out.numpy(), (x**2 - mean) / std, rtol=1e-5, atol=1e-5)


def test_forward_is_the_head_on_rescaled_theta_and_standardised_x():
    model = estimator(dim=2, preprocess=Square())
    x = np.random.default_rng(7).normal(size=(40, 2)) * [1.0, 3.0] + [0.5, -1.0]
    model.set_standardisation(torch.tensor(x, dtype=torch.float32))
    w, b = np.array([0.3, -1.2, 0.7, 2.0]), 0.25
    set_linear(model.head[0], w, b)
    theta = np.array([[0.0, 4.0], [10.0, -2.0], [7.5, 0.0]] + [[5.0, 1.0]] * 37)
    out = model(torch.tensor(theta, dtype=torch.float32), torch.tensor(x, dtype=torch.float32))
    assert out.shape == (40,)
    z = (x**2 - (x**2).mean(0)) / (x**2).std(0, ddof=1)
    rescaled = (theta - [5.0, 1.0]) / [5.0, 3.0]
    np.testing.assert_allclose(out.detach().numpy(), np.concatenate([rescaled, z], 1) @ w + b, rtol=1e-5, atol=1e-5)


def test_box_and_standardisation_travel_with_the_state_dict():
    model = estimator(hidden=[4], dim=2, lower=[-1.0, 3.0], upper=[1.0, 9.0])
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(8)) * 3 + 10
    model.set_standardisation(x)
    state = model.state_dict()
    assert {"theta_shift", "theta_scale", "x_mean", "x_std"} <= set(state)
    loaded = estimator(hidden=[4], dim=2)  # a different box and no statistics before loading
    loaded.load_state_dict(state)
    theta = torch.tensor([[0.5, 4.0], [-1.0, 9.0]])
    assert torch.equal(loaded(theta, x[:2]), model(theta, x[:2]))
    assert math.isclose(float(loaded.theta_shift[1]), 6.0) and math.isclose(float(loaded.theta_scale[1]), 3.0)
