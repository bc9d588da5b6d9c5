"""Gravitational waves: the simulator against lalsimulation's own reference values and the
properties of its definition (PSD, whitening, detector geometry)."""

import copy

import numpy as np
import pytest
import torch
from scipy import signal, stats
from torch.func import functional_call, stack_module_state, vmap

lal = pytest.importorskip("lal")
lalsimulation = pytest.importorskip("lalsimulation")

from bnre.tasks.gravitational_waves import (
    DETECTORS,
    MERGER_TIME,
    SAMPLING_RATE,
    GravitationalWaves,
    Nuisances,
    phasors,
)


@pytest.fixture(scope="module")
def task():
    return GravitationalWaves()


def nuisances(n: int, **fixed: float) -> Nuisances:
    """``n`` prior draws of the nuisances with some of them fixed."""
    draw = Nuisances.sample(n, np.random.default_rng(123))
    for name, value in fixed.items():
        getattr(draw, name)[:] = value
    return draw


def envelope(w: np.ndarray) -> np.ndarray:
    return np.abs(signal.hilbert(w, axis=-1))


def lal_series(values: np.ndarray, delta_f: float, unit, real: bool = False):
    create = lal.CreateREAL8FrequencySeries if real else lal.CreateCOMPLEX16FrequencySeries
    series = create("series", 0, 0.0, delta_f, unit, len(values))
    series.data.data[:] = values
    return series


def test_shapes_dtype_and_scale(task):
    theta = task.prior.sample(32, np.random.default_rng(0))
    x = task.simulate(theta, np.random.default_rng(1))
    assert task.x_shape == (2, 8192) and task.labels == ("m_1", "m_2")
    assert x.shape == (32, 2, 8192) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert 0.9 < x.std() < 1.5  # mostly noise of variance ~0.98: O(1) values
    assert np.abs(x).max() < 1e3


def test_determinism(task):
    theta = task.prior.sample(8, np.random.default_rng(2))
    a = task.simulate(theta, np.random.default_rng(3))
    b = task.simulate(theta, np.random.default_rng(3))
    c = task.simulate(theta, np.random.default_rng(4))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_nuisance_prior():
    n = 20_000
    draw = Nuisances.sample(n, np.random.default_rng(5))
    lo, hi = 10.0, 1000.0
    cdfs = {  # each nuisance mapped through its prior CDF must be U(0, 1)
        "distance": (draw.distance**3 - lo**3) / (hi**3 - lo**3),
        "spin1z": (draw.spin1z + 0.9) / 1.8,
        "spin2z": (draw.spin2z + 0.9) / 1.8,
        "phase": draw.phase / (2 * np.pi),
        "polarisation": draw.polarisation / np.pi,
        "inclination": (1 - np.cos(draw.inclination)) / 2,
        "ra": draw.ra / (2 * np.pi),
        "dec": (1 + np.sin(draw.dec)) / 2,
    }
    for name, u in cdfs.items():
        assert np.all((u >= 0) & (u <= 1)), name
        assert stats.kstest(u, "uniform").pvalue > 1e-3, name


def test_peak_frequency_matches_lalsimulation(task):
    # f_peak of PhenomD (Khan et al. 2016, eq. 20) is the maximum of |h(f)| f^(7/6)
    masses = [(10.0, 10.0), (25.0, 15.0), (40.0, 40.0), (80.0, 10.0), (70.0, 60.0)]
    spins = [(0.0, 0.0), (0.5, -0.3), (0.0, 0.0), (0.9, 0.9), (-0.9, 0.2)]
    theta = np.array(masses)
    draw = nuisances(len(theta), inclination=0.0)
    draw.spin1z[:], draw.spin2z[:] = np.array(spins).T
    plus, _ = task.polarisations(theta, draw)
    peak = task.frequencies[np.argmax(np.abs(plus) * task.frequencies ** (7 / 6), axis=-1)]
    reference = [lalsimulation.IMRPhenomDGetPeakFreq(*m, *s) for m, s in zip(masses, spins)]
    assert np.allclose(peak, reference, atol=2 * task.delta_f)
    # at fixed mass ratio and spins the peak scales as 1 / M
    total = np.array([20.0, 40.0, 80.0, 160.0])
    draw = nuisances(4, inclination=0.0, spin1z=0.0, spin2z=0.0)
    plus, _ = task.polarisations(np.stack([total / 2, total / 2], 1), draw)
    peak = task.frequencies[np.argmax(np.abs(plus) * task.frequencies ** (7 / 6), axis=-1)]
    assert np.all(np.diff(peak) < 0)
    assert np.allclose(peak * total, peak[0] * total[0], rtol=2e-3)


def test_masses_are_unordered(task):
    draw = nuisances(1, spin1z=0.8, spin2z=-0.5)
    swapped = copy.deepcopy(draw)
    swapped.spin1z[:], swapped.spin2z[:] = draw.spin2z, draw.spin1z
    a = task.whitened_signal(np.array([[30.0, 20.0]]), draw)
    b = task.whitened_signal(np.array([[20.0, 30.0]]), swapped)
    assert np.allclose(a, b, rtol=0, atol=1e-9 * np.abs(a).max())


def test_merger_at_3_5_s_in_h1(task):
    theta = np.array([[12.0, 10.0], [30.0, 30.0], [50.0, 25.0], [80.0, 75.0]])
    w = task.whitened_signal(theta, nuisances(len(theta), distance=100.0))
    peak = np.argmax(envelope(w[:, 0]), axis=-1) / SAMPLING_RATE
    # PhenomD's t = 0 is the peak of the 2,2 amplitude; whitening moves it by a few ms
    assert np.all(np.abs(peak - MERGER_TIME) < 0.02)


def test_detector_delays_within_light_travel_time(task):
    draw = Nuisances.sample(4000, np.random.default_rng(6))
    fplus, fcross, delay = task.antenna(draw)
    h1, l1 = (lalsimulation.DetectorPrefixToLALDetector(p).location for p in DETECTORS)
    bound = np.linalg.norm(np.array(h1) - np.array(l1)) / lal.C_SI
    assert 0.0099 < bound < 0.0101  # H1-L1 baseline: about 3000 km, 10.0 ms
    lag = np.abs(delay[:, 0] - delay[:, 1])
    assert lag.max() <= bound + 1e-12
    assert lag.max() > 0.98 * bound  # the sky sampling reaches near the baseline
    assert np.all(np.abs(delay) <= 6.4e6 / lal.C_SI)  # within an Earth radius of the geocentre
    # antenna patterns of an L-shaped interferometer: F+^2 + Fx^2 <= 1
    assert np.all(fplus**2 + fcross**2 <= 1 + 1e-6)
    # polarisation only rotates (F+, Fx): F+^2 + Fx^2 does not depend on it
    rotated = copy.deepcopy(draw)
    rotated.polarisation = (draw.polarisation + 0.7) % np.pi
    fp2, fc2, delay2 = task.antenna(rotated)
    assert np.allclose(fplus**2 + fcross**2, fp2**2 + fc2**2, atol=1e-6)
    assert np.array_equal(delay, delay2)


def test_l1_signal_lags_by_the_detector_delay(task):
    # face-on: h_x = -i h_+ up to sign, so each detector sees h_+ times a constant and the
    # envelopes differ only by the arrival times
    draw = nuisances(16, inclination=0.0, distance=100.0)
    theta = np.tile([[40.0, 35.0]], (16, 1))
    w = task.whitened_signal(theta, draw)
    peaks = np.argmax(envelope(w), axis=-1) / SAMPLING_RATE
    _, _, delay = task.antenna(draw)
    assert np.allclose(peaks[:, 1] - peaks[:, 0], delay[:, 1] - delay[:, 0], atol=1.5 / SAMPLING_RATE)


def test_phasors():
    times = np.random.default_rng(7).uniform(3.49, 3.51, (3, 2))
    exact = np.exp(-2j * np.pi * np.arange(8193) / 8 * times[..., None])
    assert np.allclose(phasors(times, 1 / 8, 8193), exact, rtol=0, atol=1e-10)


def test_no_power_below_20_hz(task):
    theta = np.array([[15.0, 12.0], [60.0, 55.0]])
    draw = nuisances(2, distance=100.0)
    # with the window as the whole DFT segment the high-pass is exact ...
    whole = GravitationalWaves(buffer=4.0).whitened_signal(theta, draw)
    power = np.abs(np.fft.rfft(whole, axis=-1)) ** 2
    f = np.fft.rfftfreq(whole.shape[-1], 1 / SAMPLING_RATE)
    assert np.all(power[..., f < 20].sum(-1) <= 1e-20 * power.sum(-1))
    # ... and cropping a signal that fits in the window leaks little below 20 Hz
    w = task.whitened_signal(theta[1:], draw[1:])
    power = np.abs(np.fft.rfft(w * signal.windows.tukey(w.shape[-1], 0.1), axis=-1)) ** 2
    assert np.all(power[..., f < 20].sum(-1) < 1e-6 * power.sum(-1))


def test_whitened_noise_is_white_with_unit_variance(task):
    w = task.whiten(task.noise(256, np.random.default_rng(8)))
    assert w.shape == (256, 2, 8192)
    expected = 2 * np.sum(task.highpass**2) / task.samples  # 1 without the high-pass
    assert 0.975 < expected < 0.985
    assert abs(w.var() - expected) < 3e-3
    assert abs(w.mean()) < 3e-3
    assert np.allclose(w.var(axis=(0, 2)), expected, atol=6e-3)  # both detectors alike
    # periodogram in units where white noise of unit variance is flat at 1
    periodogram = (np.abs(np.fft.rfft(w, axis=-1)) ** 2).mean((0, 1)) / w.shape[-1]
    f = np.fft.rfftfreq(w.shape[-1], 1 / SAMPLING_RATE)
    for lo, hi in [(25, 50), (50, 100), (100, 200), (200, 400), (400, 700), (700, 1000)]:
        assert abs(periodogram[(f >= lo) & (f < hi)].mean() - 1) < 0.03, (lo, hi)
    assert periodogram[f < 19].mean() < 0.01


def test_signal_to_noise_ratio(task):
    # sum_t w_h(t)^2 is the optimal SNR^2 (lalsimulation's MeasureSNRFD with the same PSD):
    # between the values from 22 Hz and from 20 Hz, the edges of the high-pass roll-on
    theta = np.array([[60.0, 55.0], [36.0, 29.0]])
    draw = nuisances(2, distance=410.0, inclination=0.0, spin1z=0.0, spin2z=0.0)
    strain = task.strain(theta, draw)
    w = task.whiten(strain)
    n = len(task.frequencies)
    psd = lal_series(np.zeros(n), task.delta_f, lal.StrainUnit**2 * lal.SecondUnit, real=True)
    lalsimulation.SimNoisePSD(psd, 20.0, lalsimulation.SimNoisePSDaLIGOZeroDetHighPowerPtr)
    assert np.allclose(psd.data.data[task.band], task.psd)
    for i in range(2):
        for d in range(2):
            h = lal_series(strain[i, d], task.delta_f, lal.StrainUnit * lal.SecondUnit)
            high = lalsimulation.MeasureSNRFD(h, psd, 20.0, -1) ** 2
            low = lalsimulation.MeasureSNRFD(h, psd, 22.0, -1) ** 2
            assert 0.999 * low <= np.sum(w[i, d] ** 2) <= high
    # the scale: a GW150914-like face-on source at 410 Mpc has a network SNR of order 100 at
    # design sensitivity (24 at O1's, about 3 times worse)
    network = np.sqrt(np.sum(w[1] ** 2))
    assert 40 < network < 300
    # and the PSD and waveform units give lalsimulation's standard-siren horizon
    # (1.4 + 1.4 Msun, optimally oriented, SNR 8) within the waveform-model difference
    plus, _ = task.polarisations(np.array([[1.4, 1.4]]), nuisances(1, distance=1.0, inclination=0.0))
    horizon = np.sqrt(4 * task.delta_f * np.sum(np.abs(plus[0, task.band]) ** 2 / task.psd)) / 8
    reference = lalsimulation.MeasureStandardSirenHorizonDistance(psd, 20.0, -1) / (1e6 * lal.PC_SI)
    assert abs(horizon / reference - 1) < 0.1


def test_loud_signal_is_visible(task):
    theta = np.array([[35.0, 30.0]] * 4)
    draw = nuisances(4, distance=10.0)
    rng = np.random.default_rng(9)
    template = task.whitened_signal(theta, draw)
    x = task.whiten(task.strain(theta, draw) + task.noise(4, rng))
    rho = np.sqrt(np.sum(template**2, axis=(1, 2)))
    assert np.all(rho > 100)
    # matched filter with the exact template: rho + N(0, ~1)
    statistic = np.sum(x * template, axis=(1, 2)) / rho
    assert np.all(np.abs(statistic - rho) < 5)
    # and the merger stands out of the raw whitened data
    assert np.all(np.abs(x).max(-1) > 8)


def test_buffer_is_long_enough(task):
    # the longest signal of the prior (10 + 10 Msun, chi = 0.9: 6.45 s from 20 Hz) gives
    # the same window on the 8 s buffer as on a 32 s one
    theta = np.array([[10.0, 10.0]] * 3)
    draw = nuisances(3, spin1z=0.9, spin2z=0.9, distance=100.0)
    short = task.whitened_signal(theta, draw)
    long = GravitationalWaves(buffer=32.0).whitened_signal(theta, draw)
    assert np.sqrt(np.sum((short - long) ** 2) / np.sum(long**2)) < 2e-3


def test_embedding_shape_backward_and_vmap(task):
    embedding = task.embedding()
    x = torch.randn(2, 3, *task.x_shape)
    out = embedding(x)
    assert out.shape == (2, 3, task.embedding_features())
    out.square().mean().backward()
    grads = [p.grad for p in embedding.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # ensemble members through torch.func.vmap, as in bnre.training.stacked
    members = [task.embedding() for _ in range(2)]
    params, buffers = stack_module_state(members)
    base = copy.deepcopy(members[0]).to("meta")
    xs = torch.randn(2, 4, *task.x_shape)
    batched = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)))(params, buffers, xs)
    expected = torch.stack([m(x) for m, x in zip(members, xs)])
    assert torch.allclose(batched, expected, atol=1e-5)
