"""bnre.nets.embeddings and every task's default embedding: shapes, batch independence,
determinism, gradients and the documented invariances (axis order, soft clip, receptive
field, vmap)."""

import pytest
import torch
from torch import nn

from bnre.nets.embeddings import DilatedCNN, LatticeResNet, SeriesCNN
from bnre.tasks import TASKS

CNN_TASKS = ["lotka_volterra", "spatial_sir", "gravitational_waves"]


@pytest.fixture(scope="module", params=sorted(TASKS))
def task_embedding(request):
    torch.manual_seed(0)
    task = TASKS[request.param]()
    return request.param, task, task.embedding()


def observations(shape, n, seed=0):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


def test_default_embedding_maps_each_observation_to_embedding_features(task_embedding):
    name, task, embedding = task_embedding
    out = embedding.eval()(observations(task.x_shape, 3))
    assert out.shape == (3, task.embedding_features()), name
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_embedding_of_an_observation_does_not_depend_on_its_batch(task_embedding, mode):
    # documented for LatticeResNet (group, not batch, normalisation) and DilatedCNN
    name, task, embedding = task_embedding
    embedding.train(mode == "train")
    x = observations(task.x_shape, 4, seed=1)
    with torch.no_grad():
        batch = embedding(x)
        alone = torch.cat([embedding(x[i : i + 1]) for i in range(4)])
        shuffled = embedding(x.flip(0)).flip(0)
    torch.testing.assert_close(alone, batch, rtol=1e-4, atol=1e-5, msg=name)
    torch.testing.assert_close(shuffled, batch, rtol=1e-4, atol=1e-5, msg=name)
    embedding.eval()


def test_embedding_is_deterministic_in_eval_mode(task_embedding):
    _, task, embedding = task_embedding
    embedding.eval()
    x = observations(task.x_shape, 2, seed=2)
    with torch.no_grad():
        assert torch.equal(embedding(x), embedding(x))


def test_gradients_reach_every_parameter_and_the_input(task_embedding):
    name, task, embedding = task_embedding
    embedding.train()
    embedding.zero_grad()
    x = observations(task.x_shape, 3, seed=3).requires_grad_()
    # a random linear read-out: sum() alone is blind to a layer whose output sums to a constant
    readout = torch.randn(task.embedding_features(), generator=torch.Generator().manual_seed(4))
    (embedding(x) @ readout).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0, name
    for pname, p in embedding.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"
    embedding.eval()


@pytest.mark.parametrize("name", CNN_TASKS)
def test_cnn_embeddings_keep_leading_batch_dimensions(name):
    torch.manual_seed(0)
    task = TASKS[name]()
    embedding = task.embedding().eval()
    x = observations(task.x_shape, 6, seed=5)
    with torch.no_grad():
        flat = embedding(x)
        nested = embedding(x.reshape(2, 3, *task.x_shape))
    assert nested.shape == (2, 3, task.embedding_features())
    torch.testing.assert_close(nested.reshape(6, -1), flat, rtol=1e-4, atol=1e-5)


# --- axis order: swapping two input channels is the same as swapping the first layer's
# input-channel weights; this fails if the channel axis is taken from the wrong place
# (e.g. a reshape instead of a transpose of (T, C) to (C, T)).


def first_conv(module: nn.Module) -> nn.Module:
    return next(m for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))


@pytest.mark.parametrize(
    "make, shape, channel_axis",
    [
        (lambda: SeriesCNN(in_channels=2, length=101, features=8, channels=(4, 4), pool=4), (101, 2), -1),
        (lambda: DilatedCNN(in_channels=2, length=256, features=8, stem=8, channels=(8, 8)), (2, 256), -2),
        (lambda: LatticeResNet(in_channels=3, channels=(8, 8), stem=8), (3, 20, 20), -3),
    ],
    ids=["SeriesCNN(T,C)", "DilatedCNN(C,T)", "LatticeResNet(C,H,W)"],
)
def test_channel_axis_is_the_documented_one(make, shape, channel_axis):
    torch.manual_seed(1)
    net = make().eval()
    x = observations(shape, 3, seed=6)
    with torch.no_grad():
        before = net(x)
        conv = first_conv(net)
        conv.weight.copy_(conv.weight.roll(1, dims=1))  # input channels c -> c + 1
        after = net(x.roll(1, dims=channel_axis))
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_lattice_soft_clip_saturates_huge_z_scores():
    # c tanh(x / c) with c = 4: z-scores of 1e6 (a never-seen cell over the 1e-6 floor)
    # and of 200 both clip to 4 in float32, so the image's embedding is the same and finite
    torch.manual_seed(2)
    net = LatticeResNet(in_channels=3, channels=(8, 8), stem=8).eval()
    x = observations((3, 20, 20), 2, seed=7)
    huge, large = x.clone(), x.clone()
    huge[:, 1, 5, 5], large[:, 1, 5, 5] = 1e6, 200.0
    with torch.no_grad():
        out_huge, out_large, out = net(huge), net(large), net(x)
    assert torch.isfinite(out_huge).all()
    assert torch.equal(out_huge, out_large)
    assert not torch.allclose(out_huge, out)  # the cell still counts


@pytest.mark.parametrize("dilations, field", [((1,), 3), ((1, 2), 7), ((1, 2, 4, 8), 31)])
def test_dilated_stage_receptive_field_is_one_plus_twice_two_to_the_k_plus_one_minus_one(dilations, field):
    # a stage with dilations 1, 2, ..., 2^k sees 1 + 2 (2^(k+1) - 1) steps: isolate one
    # stage (pointwise stem: stride 1; no pooling) and find the inputs that one output
    # step depends on (SELU's derivative is never 0, so these are exactly the reachable ones)
    torch.manual_seed(3)
    net = DilatedCNN(in_channels=2, length=128, features=4, stem=8, channels=(8,), dilations=dilations,
                     stride=1, pool=1)
    x = observations((2, 128), 1, seed=8).requires_grad_()
    maps = net.convolutions(x)
    assert maps.shape == (1, 8, 128)  # the dilated convolutions keep the length
    maps[0, :, 64].sum().backward()
    reached = torch.nonzero(x.grad.abs().sum(dim=1)[0]).flatten()
    assert reached.tolist() == list(range(64 - field // 2, 64 + field // 2 + 1))


def test_dilated_cnn_applies_under_vmap():
    torch.manual_seed(4)
    net = DilatedCNN(in_channels=2, length=256, features=8, stem=8, channels=(8, 8)).eval()
    x = observations((2, 256), 5, seed=9)
    with torch.no_grad():
        torch.testing.assert_close(torch.func.vmap(net)(x), net(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [lambda: SeriesCNN(in_channels=2, length=63), lambda: DilatedCNN(in_channels=2, length=255)],
    ids=["SeriesCNN", "DilatedCNN"],
)
def test_series_too_short_for_the_pooling_is_refused(make):
    # 63 // 4 // 4 // 4 = 0 and 255 // 4 // 4 // 4 // 4 = 0 steps left
    with pytest.raises(ValueError, match="too short"):
        make()


@pytest.mark.parametrize(
    "make, length", [(lambda: SeriesCNN(in_channels=2, length=64), (64, 2)),
                     (lambda: DilatedCNN(in_channels=2, length=256), (2, 256))],
    ids=["SeriesCNN", "DilatedCNN"],
)
def test_series_just_long_enough_is_accepted(make, length):
    torch.manual_seed(5)
    assert make().eval()(observations(length, 2)).shape[0] == 2
