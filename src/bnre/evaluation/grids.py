r"""The posterior grids of the evaluation, as passes over partitions of the prior box.

Two grids discretise each test observation's posterior (:mod:`bnre.evaluation.partition`):

* ``uniform``: the regular grid of ``bins`` cells per dimension of :mod:`bnre.evaluation.coverage`,
  shared by every observation (the paper's and lampe's), with its optional bf16 path
  (:mod:`bnre.evaluation.precision`);
* ``adaptive``: a coarse grid refined per observation where the rank, the mass and the
  density's variation call for it (:mod:`bnre.evaluation.adaptive`), so that a posterior narrower
  than a uniform cell is resolved.

Both yield, per batch of observations, the partition and the log density of every
estimator at its cells, and of the exact posterior when one is given, on the same cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Union

import numpy as np
import torch
from torch import Tensor

from .adaptive import Refinement, adaptive_pass
from .coverage import grid, grid_pass
from .partition import Partition, log_masses, log_normaliser, regular_partition

#: The evaluation grids.
GRIDS = ("adaptive", "uniform")


@dataclass(frozen=True)
class UniformGrid:
    """The regular grid of ``bins`` cells per dimension."""

    bins: int

    def __post_init__(self):
        if self.bins < 2:
            raise ValueError(f"bins must be >= 2, got {self.bins}")


GridSpec = Union[UniformGrid, Refinement]

LogDensity = Callable[[Tensor, slice], Tensor]


@dataclass
class PosteriorBatch:
    """Observations ``rows`` on their ``partition``: the estimators' log density (E, n, G)
    and the exact posterior's (1, n, G) or None, float64; ``evaluations`` per observation;
    the estimators' log-mass correction (E, n, G) on the adaptive grid, None on the uniform
    one (:func:`bnre.evaluation.partition.log_contents`)."""

    rows: slice
    partition: Partition
    log_density: Tensor
    log_exact: Tensor | None
    evaluations: int
    log_mass_correction: Tensor | None = None

    def log_masses(self) -> Tensor:
        """The estimators' normalised log cell masses (E, n, G)."""
        return log_masses(self.log_density, self.partition, self.log_mass_correction)

    def log_normaliser(self) -> Tensor:
        r"""The estimators' :math:`\log Z` (E, n)."""
        return log_normaliser(self.log_density, self.partition, self.log_mass_correction)


def describe(spec: GridSpec, dim: int) -> str:
    """One line for the logs."""
    if isinstance(spec, UniformGrid):
        return f"uniform grid, {spec.bins} bins per dimension ({spec.bins**dim} cells)"
    return (
        f"adaptive grid, {spec.coarse(dim)} coarse bins per dimension refined to at most {spec.budget(dim)} cells "
        f"per pair, depth {spec.depth}, tolerance {spec.tolerance:g}"
    )


def posterior_pass(
    log_density: LogDensity,
    n: int,
    lower: np.ndarray,
    upper: np.ndarray,
    spec: GridSpec,
    rows: int,
    log_true: Tensor | None = None,
    exact: LogDensity | None = None,
    theta_true: Tensor | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Iterator[PosteriorBatch]:
    """The posteriors of ``n`` observations on ``spec``'s grid, batch by batch.

    ``log_density(theta, rows)`` gives the (E, n, G) unnormalised log posterior of
    observations ``rows`` at ``theta`` (1 or n, G, D), which it receives in ``dtype``;
    ``log_true`` (E, n) is its value at the true parameters (for the uniform grid's bf16
    path, and to refine the adaptive grid where ranks are decided, with the true parameters
    ``theta_true`` (n, D)); ``exact``, of the same form in float64, is evaluated on the
    same cells (the adaptive grid is refined for the estimators alone: the exact posterior
    is refined for its own diagnostics by :func:`bnre.evaluation.diagnostics.evaluate_exact`).
    """
    if isinstance(spec, UniformGrid):
        cells, _ = grid(lower, upper, spec.bins)
        cells = cells.to(device)
        partition = regular_partition(lower, upper, spec.bins, device)
        for batch in grid_pass(log_density, n, cells, rows, log_true):
            log_exact = None if exact is None else exact(cells[None], batch.rows).double()
            yield PosteriorBatch(batch.rows, partition, batch.log_density.double(), log_exact, len(cells))
        return

    def estimators(theta: Tensor, batch: slice) -> Tensor:
        return log_density(theta.to(dtype), batch).double()

    for batch in adaptive_pass(estimators, n, lower, upper, spec, log_true, rows, device, theta_true):
        log_exact = None if exact is None else exact(batch.partition.centre, batch.rows).double()
        yield PosteriorBatch(batch.rows, batch.partition, batch.log_density, log_exact, batch.evaluations, batch.log_mass_correction)
