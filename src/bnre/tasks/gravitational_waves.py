r"""Binary black hole mergers seen by LIGO Hanford and Livingston, as in the BNRE paper.

Delaunoy et al., "Towards Reliable Simulation-Based Inference with Balanced Neural Ratio
Estimation", NeurIPS 2022 (the gravitational-wave task); Hermans et al., "A Trust Crisis
in Simulation-Based Inference?", TMLR 2022.

The inferred parameters are the component masses
:math:`\theta = (m_1, m_2) \sim \mathcal{U}([10, 80]^2)` (solar masses, unordered: the
waveform is symmetric under swapping the bodies with their spins). Per simulation the
nuisances are drawn from

* luminosity distance :math:`p(d) \propto d^2` on :math:`[10, 1000]` Mpc;
* aligned spins :math:`\chi_{1z}, \chi_{2z} \sim \mathcal{U}[-0.9, 0.9]`;
* coalescence phase :math:`\phi_c \sim \mathcal{U}[0, 2\pi)`;
* polarisation :math:`\psi \sim \mathcal{U}[0, \pi)` (one period of :math:`F_+, F_\times`);
* inclination :math:`p(\iota) \propto \sin \iota` on :math:`[0, \pi]`;
* sky position uniform on the sphere: :math:`\alpha \sim \mathcal{U}[0, 2\pi)`,
  :math:`\delta = \arcsin u`, :math:`u \sim \mathcal{U}[-1, 1]`.

Signal. The frequency-domain IMRPhenomPv2 polarisations :math:`\tilde h_{+,\times}(f)`
(Hannam et al., PRL 113, 151101, 2014; ``XLALSimInspiralChooseFDWaveform``; reference and
lower frequency 20 Hz) are projected on detector :math:`X \in \{H1, L1\}` as

.. math:: \tilde h_X(f) = \big[F_+^X \tilde h_+(f) + F_\times^X \tilde h_\times(f)\big]
    e^{-2\pi i f t_X}, \qquad t_X = t_c + \Delta t_X - \Delta t_{H1},

with the antenna patterns :math:`F^X(\alpha, \delta, \psi)` (``XLALComputeDetAMResponse``)
and the delays :math:`\Delta t_X` from the geocentre (``XLALTimeDelayFromEarthCenter``),
both at the fixed GPS time :data:`GPS_TIME` (that of GW150914, 1126259462 s): the merger,
the waveform's :math:`t = 0` (PhenomD puts the peak of the 2,2 amplitude there), reaches
H1 at :math:`t_c = 3.5` s into the observed window and L1 at most 10 ms earlier or later.

Noise and whitening. With the one-sided aLIGO zero-detuned high-power design PSD
:math:`S(f)` (LIGO-T0900288; ``XLALSimNoisePSDaLIGOZeroDetHighPower``), stationary Gaussian
noise has independent Fourier coefficients :math:`\tilde n(f_k) = \sqrt{T S(f_k) / 4}
\, (a_k + i b_k)`, :math:`a_k, b_k \sim \mathcal{N}(0, 1)`, on a segment of duration
:math:`T`. The data :math:`\tilde d = \tilde h + \tilde n` are whitened with the same PSD and
high-passed:

.. math:: w(t_j) = \mathcal{F}^{-1}\Big[H(f_k) \sqrt{2 / (f_s S(f_k))} \,
    \tilde d(f_k)\Big](t_j),

with :math:`\mathcal{F}^{-1}` the inverse DFT scaled by the sampling rate :math:`f_s`
(``numpy.fft.irfft`` times :math:`f_s`) and the high-pass :math:`H(f) = 0` below
:math:`f_l = 20` Hz, :math:`\sin^2(\pi (f - f_l) / 4)` on :math:`[20, 22)` Hz and 1 from
22 Hz up to (not including) the Nyquist frequency. The 2 Hz roll-on matters: a brick wall
at 20 Hz, where the whitened signal is largest, gives it :math:`1/t` tails over the whole
segment, which change the window by about 1 % of the signal between an 8 s and a 64 s
segment; with the roll-on the change is below :math:`10^{-3}`.

Normalisation: whitened noise would be white with unit variance per sample without the
high-pass; with it its variance is :math:`(2 / N) \sum_k H(f_k)^2 \approx 1 - 21 / 1024
\approx 0.980` (:math:`N` samples in the segment), flat in frequency above 22 Hz. For the
signal, :math:`\sum_j w_h(t_j)^2 = 4 \int H^2 |\tilde h|^2 / S \, df`, its optimal
matched-filter SNR squared (over the segment, for the band above 20 Hz). Noise below
20 Hz is not simulated: the high-pass removes it.

Wrap-around. The inverse DFT makes the signal periodic in the segment length. A
10 + 10 :math:`M_\odot` inspiral with :math:`\chi = 0.9` lasts 6.45 s from 20 Hz to merger
(``XLALSimIMRPhenomDChirpTime``), longer than the 4 s window, so everything is done on an
8 s buffer (deltaF = 1/8 Hz) whose first 4 s are kept: the inspiral before the window,
at most 6.45 - 3.5 < 3 s long, wraps onto the discarded end :math:`[5.05, 8)` s and never
into :math:`[0, 4)` s. The noise is drawn on the same buffer, so the kept 4 s are a segment
of a (circulant) stationary process. The tests compare the window with that of a 32 s
buffer for this longest signal.

Observation :math:`x \in \mathbb{R}^{2 \times 8192}`: whitened strain in H1 and L1 at
2048 Hz over 4 s, channels first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch import nn

from ..nets.embeddings import DilatedCNN
from .base import BoxUniform, Task

INSTALL_HINT = (
    'the gravitational-wave task needs lalsuite: pip install "bnre-workflow[gw]" '
    "(or use the conda environment envs/simulate_gravitational_waves.yaml)"
)

SAMPLING_RATE = 2048  #: Hz
DURATION = 4.0  #: observed window, s
BUFFER = 8.0  #: segment on which the DFTs are taken, s
F_LOWER = 20.0  #: waveform start, reference frequency and high-pass, Hz
ROLL_ON = 2.0  #: width of the high-pass's sin^2 transition above F_LOWER, Hz
MERGER_TIME = 3.5  #: merger time in H1 from the window start, s
GPS_TIME = 1126259462  #: GPS time of the merger in H1 (sets sidereal time and delays)
DETECTORS = ("H1", "L1")
DISTANCE = (10.0, 1000.0)  #: Mpc
SPIN = 0.9  #: bound on |chi_iz|
#: Samples per block of the FFT pipeline (keeps its complex work arrays at a few MB).
BLOCK = 32


def require_lal():
    """Import ``lal`` and ``lalsimulation``, or fail with the installation hint."""
    try:
        import lal
        import lalsimulation
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from error
    return lal, lalsimulation


def highpass(f: np.ndarray) -> np.ndarray:
    r"""High-pass :math:`H(f)`: 0 below 20 Hz, :math:`\sin^2` roll-on to 1 at 22 Hz."""
    return np.sin(0.5 * math.pi * np.clip((f - F_LOWER) / ROLL_ON, 0.0, 1.0)) ** 2


def phasors(times: np.ndarray, delta_f: float, bins: int, block: int = 64) -> np.ndarray:
    r""":math:`e^{-2\pi i k \Delta f t}` for :math:`k < ` ``bins``, shape (*times.shape, bins).

    With :math:`k = a b_0 + b`, the product of the phasors of :math:`a b_0` and of
    :math:`b < b_0` (``block``): about :math:`\sqrt{4 \cdot \text{bins}}` complex
    exponentials per time instead of ``bins``, and one product per bin.
    """
    times = np.asarray(times, np.float64)[..., None, None]
    coarse = np.arange(-(-bins // block))[:, None] * block
    fine = np.arange(block)
    out = np.exp(-2j * math.pi * delta_f * times * coarse) * np.exp(-2j * math.pi * delta_f * times * fine)
    return out.reshape(*out.shape[:-2], -1)[..., :bins]


@dataclass
class Nuisances:
    """Per-sample nuisance parameters, each of shape (N,); angles in radians, distance in Mpc."""

    distance: np.ndarray
    spin1z: np.ndarray
    spin2z: np.ndarray
    phase: np.ndarray
    polarisation: np.ndarray
    inclination: np.ndarray
    ra: np.ndarray
    dec: np.ndarray

    @classmethod
    def sample(cls, n: int, rng: np.random.Generator) -> Nuisances:
        """Draw from the prior of the module docstring by inverse CDFs of one (N, 8) uniform."""
        u = rng.random((n, 8)).T
        lo, hi = DISTANCE
        return cls(
            distance=np.cbrt(lo**3 + u[0] * (hi**3 - lo**3)),
            spin1z=SPIN * (2 * u[1] - 1),
            spin2z=SPIN * (2 * u[2] - 1),
            phase=2 * math.pi * u[3],
            polarisation=math.pi * u[4],
            inclination=np.arccos(1 - 2 * u[5]),
            ra=2 * math.pi * u[6],
            dec=np.arcsin(2 * u[7] - 1),
        )

    def __len__(self) -> int:
        return len(self.distance)

    def __getitem__(self, index: slice | np.ndarray) -> Nuisances:
        return Nuisances(**{k: np.atleast_1d(v[index]) for k, v in vars(self).items()})


class GravitationalWaves(Task):
    """Masses of a binary black hole from 4 s of whitened H1 and L1 strain."""

    name = "gravitational_waves"

    #: attributes computed with lal on first use (training and evaluation never need them)
    PHYSICS = ("psd", "highpass", "whitening", "noise_scale", "gmst", "responses", "locations")

    def __init__(self, buffer: float = BUFFER) -> None:
        self.prior = BoxUniform([10.0, 10.0], [80.0, 80.0])
        self.labels = ("m_1", "m_2")
        self.length = int(DURATION * SAMPLING_RATE)
        self.x_shape = (len(DETECTORS), self.length)
        self.buffer = float(buffer)
        self.samples = round(self.buffer * SAMPLING_RATE)
        if self.samples < self.length:
            raise ValueError("the buffer must be at least as long as the window")
        self.delta_f = 1.0 / self.buffer
        self.frequencies = np.arange(self.samples // 2 + 1) * self.delta_f
        #: in-band bins [k_low, Nyquist): the only ones with noise and a whitening weight
        self.band = slice(math.ceil(F_LOWER / self.delta_f), self.samples // 2)

    def __getattr__(self, name: str):
        # only called for missing attributes: the lal-dependent ones are set up on demand
        if name not in GravitationalWaves.PHYSICS:
            raise AttributeError(name)
        self.setup_physics()
        return self.__dict__[name]

    def setup_physics(self) -> None:
        """PSD, whitening filter, sidereal time and detectors (needs lalsuite)."""
        lal, lalsimulation = require_lal()
        band = self.frequencies[self.band]
        self.psd = np.array([lalsimulation.SimNoisePSDaLIGOZeroDetHighPower(f) for f in band])
        self.highpass = highpass(band)
        # H sqrt(2 / (f_s S)), times f_s for numpy's irfft
        self.whitening = self.highpass * np.sqrt(2.0 * SAMPLING_RATE / self.psd)
        self.noise_scale = np.sqrt(self.buffer * self.psd / 4.0)
        gps = lal.LIGOTimeGPS(GPS_TIME)
        self.gmst = float(lal.GreenwichMeanSiderealTime(gps)) % (2 * math.pi)
        detectors = [lalsimulation.DetectorPrefixToLALDetector(p) for p in DETECTORS]
        self.responses = [np.array(d.response) for d in detectors]
        self.locations = [np.array(d.location) for d in detectors]

    # ----------------------------------------------------------------- components

    def polarisations(self, theta: np.ndarray, nuisances: Nuisances) -> tuple[np.ndarray, np.ndarray]:
        r"""IMRPhenomPv2 :math:`\tilde h_+, \tilde h_\times` (N, F) on the buffer's frequency
        grid (strain/Hz), one ``SimInspiralChooseFDWaveform`` call per sample."""
        lal, lalsimulation = require_lal()
        n, bins = len(theta), len(self.frequencies)
        plus = np.zeros((n, bins), np.complex128)
        cross = np.zeros((n, bins), np.complex128)
        f_max = self.frequencies[-1]
        columns = zip(
            theta[:, 0], theta[:, 1], nuisances.spin1z, nuisances.spin2z,
            nuisances.distance, nuisances.inclination, nuisances.phase,
        )  # fmt: skip
        for i, (m1, m2, chi1, chi2, distance, inclination, phase) in enumerate(columns):
            try:
                hp, hc = lalsimulation.SimInspiralChooseFDWaveform(
                    m1 * lal.MSUN_SI, m2 * lal.MSUN_SI, 0.0, 0.0, chi1, 0.0, 0.0, chi2,
                    distance * 1e6 * lal.PC_SI, inclination, phase,
                    0.0, 0.0, 0.0,  # longAscNodes, eccentricity, meanPerAno
                    self.delta_f, F_LOWER, f_max, F_LOWER, None, lalsimulation.IMRPhenomPv2,
                )  # fmt: skip
            except RuntimeError as error:
                raise RuntimeError(
                    f"IMRPhenomPv2 failed at m1={m1}, m2={m2}, chi1z={chi1}, chi2z={chi2}, "
                    f"d={distance} Mpc, iota={inclination}, phi={phase}"
                ) from error
            m = min(bins, hp.data.length)
            plus[i, :m] = hp.data.data[:m]
            cross[i, :m] = hc.data.data[:m]
        return plus, cross

    def antenna(self, nuisances: Nuisances) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r""":math:`F_+, F_\times` and delays :math:`\Delta t` from the geocentre (s), each
        (N, 2) for (H1, L1), from lal at :data:`GPS_TIME`."""
        lal, _ = require_lal()
        gps = lal.LIGOTimeGPS(GPS_TIME)
        n = len(nuisances)
        fplus, fcross, delay = np.empty((n, 2)), np.empty((n, 2)), np.empty((n, 2))
        for i, (ra, dec, psi) in enumerate(zip(nuisances.ra, nuisances.dec, nuisances.polarisation)):
            for j, (response, location) in enumerate(zip(self.responses, self.locations)):
                fplus[i, j], fcross[i, j] = lal.ComputeDetAMResponse(response, ra, dec, psi, self.gmst)
                delay[i, j] = lal.TimeDelayFromEarthCenter(location, ra, dec, gps)
        return fplus, fcross, delay

    def strain(self, theta: np.ndarray, nuisances: Nuisances) -> np.ndarray:
        r"""Detector strains :math:`\tilde h_X(f)` (N, 2, F) on the buffer, merger at
        :math:`t_X` (H1 at 3.5 s)."""
        plus, cross = self.polarisations(theta, nuisances)
        fplus, fcross, delay = self.antenna(nuisances)
        arrival = MERGER_TIME + delay - delay[:, :1]  # (N, 2)
        h = fplus[..., None] * plus[:, None]
        h += fcross[..., None] * cross[:, None]
        h *= phasors(arrival, self.delta_f, len(self.frequencies))
        return h

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        r"""Coloured Gaussian noise :math:`\tilde n(f)` (N, 2, F), zero outside the band.

        One ``standard_normal`` draw of shape (N, 2, bins in band, 2): real and imaginary
        parts are adjacent."""
        out = np.zeros((n, len(DETECTORS), len(self.frequencies)), np.complex128)
        z = rng.standard_normal((n, len(DETECTORS), len(self.psd), 2)).view(np.complex128)[..., 0]
        np.multiply(z, self.noise_scale, out=out[..., self.band])
        return out

    def whiten(self, data: np.ndarray) -> np.ndarray:
        r"""Whitened, high-passed and cropped time series (N, 2, 8192) of FD data (N, 2, F)."""
        white = np.zeros_like(data)
        np.multiply(data[..., self.band], self.whitening, out=white[..., self.band])
        return np.fft.irfft(white, n=self.samples, axis=-1)[..., : self.length]

    def whitened_signal(self, theta: np.ndarray, nuisances: Nuisances) -> np.ndarray:
        """Noise-free observation (N, 2, 8192), float64."""
        return self.whiten(self.strain(np.asarray(theta, np.float64), nuisances))

    # ----------------------------------------------------------------- task

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Nuisances (one (N, 8) uniform draw), then noise block by block; float32 output."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
        nuisances = Nuisances.sample(len(theta), rng)
        x = np.empty((len(theta), *self.x_shape), np.float32)
        for start in range(0, len(theta), BLOCK):
            block = slice(start, start + BLOCK)
            signal = self.strain(theta[block], nuisances[block])
            x[block] = self.whiten(signal + self.noise(len(signal), rng))
        return x

    def embedding(self) -> nn.Module:
        """Dilated 1-D CNN over the two channels; see :class:`bnre.nets.embeddings.DilatedCNN`."""
        return DilatedCNN(in_channels=len(DETECTORS), length=self.length, features=self.embedding_features())

    def embedding_features(self) -> int:
        return 128
