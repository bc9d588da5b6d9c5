r"""Convolutional embeddings :math:`e(x)` for the high-dimensional tasks.

The ratio estimator applies the task's fixed ``preprocess`` and then standardises
:math:`x` per element with training-set statistics before the embedding, so the
embeddings see z-scores and do no scaling of their own (a fixed rescaling such as
:math:`x / 100` would be undone by the standardisation).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


class SeriesCNN(nn.Module):
    r"""1-D CNN for multivariate time series, (..., T, C) -> (..., features).

    Blocks of :math:`\mathrm{Conv1d}(k=5) \to \mathrm{SELU} \to \mathrm{MaxPool}(4)` shorten
    the series by 4 each (1001 -> 250 -> 62 -> 15 by default), then a linear layer maps the
    flattened maps to ``features``.
    """

    def __init__(
        self,
        in_channels: int,
        length: int,
        features: int = 64,
        channels: Sequence[int] = (16, 32, 64),
        kernel: int = 5,
        pool: int = 4,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        for width in channels:
            layers += [nn.Conv1d(in_channels, width, kernel, padding=kernel // 2), nn.SELU(), nn.MaxPool1d(pool)]
            in_channels, length = width, length // pool
        if length < 1:
            raise ValueError("series too short for the pooling")
        self.features = features
        self.convolutions = nn.Sequential(*layers)
        self.linear = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * length, features), nn.SELU())

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[:-2]
        x = x.reshape(-1, *x.shape[-2:]).transpose(-1, -2)  # (N, C, T)
        return self.linear(self.convolutions(x)).reshape(*batch, self.features)


class ResidualBlock(nn.Module):
    r""":math:`\mathrm{ReLU}(F(x) + S(x))` with :math:`F` two 3×3 convolutions (the first
    strided) with group normalisation, and :math:`S` the identity or a strided 1×1
    convolution when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, groups: int = 8):
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.GroupNorm(groups, out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.GroupNorm(groups, out_channels),
        )
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.GroupNorm(groups, out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class LatticeResNet(nn.Module):
    r"""Small ResNet for images, (..., C, H, W) -> (..., features).

    A strided 3×3 stem and one residual block per entry of ``channels``, each halving the
    resolution (50 -> 25 -> 13 -> 7 -> 4 by default), then global average pooling: about
    7 MMAC per 50×50 image, cheap enough for CPU. Group rather than batch normalisation,
    so that an observation's embedding does not depend on its batch. ``features`` is the
    last entry of ``channels``.

    The input first goes through the soft clip :math:`c \tanh(x / c)`: per-element
    standardisation of sparse binary images gives a cell that was (almost) never on in the
    training set a huge z-score (up to :math:`10^6` with the :math:`10^{-6}` floor on the
    standard deviation), which would swamp its image; typical z-scores pass nearly unchanged.
    """

    def __init__(
        self, in_channels: int, channels: Sequence[int] = (32, 64, 64), stem: int = 16, clip: float = 4.0
    ):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, stem, 3, 2, 1, bias=False),
            nn.GroupNorm(8, stem),
            nn.ReLU(),
        ]
        width = stem
        for out in channels:
            layers.append(ResidualBlock(width, out, stride=2))
            width = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.clip = clip
        self.features = width
        self.network = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[:-3]
        x = self.clip * torch.tanh(x.reshape(-1, *x.shape[-3:]) / self.clip)
        return self.network(x).reshape(*batch, self.features)


class DilatedCNN(nn.Module):
    r"""Dilated 1-D CNN for long multichannel series, (..., C, T) -> (..., features).

    A stem :math:`\mathrm{Conv1d}(k = s = 4)` turns every 4 samples of the C channels into
    ``stem`` channels (with ``stem`` >= 4C it can be invertible, so nothing is lost before
    the first nonlinearity: 8192 -> 2048 steps). Then one stage per entry of ``channels``:
    :math:`\mathrm{Conv1d}(k = 3)` layers with dilations :math:`1, 2, \dots, 2^{k}`, each
    followed by SELU, then :math:`\mathrm{MaxPool}(4)` (2048 -> 512 -> 128 -> 32); a stage's
    receptive field is :math:`1 + 2 (2^{k + 1} - 1)` steps, 31 for :math:`k = 3`, as in
    WaveNet (van den Oord et al., 2016) and the dilated networks of gravitational-wave
    detection (e.g. Gebhard et al., PRD 100, 063015, 2019). A linear layer maps the
    flattened maps to ``features``. No normalisation layers: the embedding of an
    observation does not depend on its batch, and ``torch.func.vmap`` applies.
    """

    def __init__(
        self,
        in_channels: int,
        length: int,
        features: int = 128,
        stem: int = 16,
        channels: Sequence[int] = (16, 32, 64),
        dilations: Sequence[int] = (1, 2, 4, 8),
        kernel: int = 3,
        stride: int = 4,
        pool: int = 4,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(in_channels, stem, stride, stride=stride), nn.SELU()]
        width, length = stem, length // stride
        for out in channels:
            for dilation in dilations:
                padding = dilation * (kernel - 1) // 2
                layers += [nn.Conv1d(width, out, kernel, dilation=dilation, padding=padding), nn.SELU()]
                width = out
            layers.append(nn.MaxPool1d(pool))
            length //= pool
        if length < 1:
            raise ValueError("series too short for the strides and pooling")
        self.in_channels = in_channels
        self.features = features
        self.convolutions = nn.Sequential(*layers)
        self.linear = nn.Sequential(nn.Flatten(), nn.Linear(width * length, features), nn.SELU())

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[:-2]
        x = x.reshape(-1, *x.shape[-2:])  # (N, C, T)
        return self.linear(self.convolutions(x)).reshape(*batch, self.features)
