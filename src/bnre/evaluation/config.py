"""The options of an evaluation, and their defaults.

:class:`EvaluationConfig` is the package's source of truth for the evaluation options: the
posterior grid (:mod:`.grids`; the adaptive one's :class:`~.adaptive.Refinement`, or the
uniform one of ``bins`` per dimension), the test pairs, how ranks are computed, and the
uniform grid's precision (:class:`~.precision.GridPrecision`). The workflow's JSON schema
(``config/schema.yaml``, ``evaluate``) states the same defaults, and a test keeps the two
equal. Commands take them as one JSON object (``--options``), as training takes
:class:`~bnre.methods.config.TrainConfig`'s.

Standard library only at import, so that the command line can read it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options import from_mapping, parse_json

#: The choices of the options that take one of a few names; the first is the default.
CHOICES: dict[str, tuple[str, ...]] = {
    "grid": ("adaptive", "uniform"),  # refined per observation, or the paper's and lampe's uniform grid
    "coverage_method": ("grid", "mc", "samples"),  # ranks from the grid, MCMC draws, or a flow's own draws
    "precision": ("float32", "auto", "bf16"),  # the uniform grid in float32, or bf16 refined in float32
}

@dataclass(frozen=True)
class EvaluationConfig:
    """How a posterior is evaluated; the defaults are the workflow's."""

    grid: str = "adaptive"
    #: uniform grid: cells per dimension, reduced until ``bins ** dim <= max_cells``
    bins: int = 90
    max_cells: int = 2**15
    #: adaptive grid: coarse cells per dimension, density evaluations per pair (None: as
    #: many as the uniform grid's, 90^2 in 1-D and 2-D, 32^3 above), splits in three of a
    #: coarse cell per axis at most, and the error score that stops a pair's refinement
    coarse_bins: int = 16
    refine_cells: int | None = None
    refine_depth: int = 16
    refine_tolerance: float = 1e-4
    #: the first ``pairs`` test pairs; their ranks from the grid, MCMC or a flow's draws
    pairs: int = 10_000
    coverage_method: str = "grid"
    mc_samples: int = 1000
    #: uniform grid: float32, or bf16 with float32 refinement (bound on the bf16 error in
    #: nats, and on each rank's error)
    precision: str = "float32"
    precision_delta: float = 0.1
    precision_tolerance: float = 1e-4

    def __post_init__(self) -> None:
        for key, choices in CHOICES.items():
            if getattr(self, key) not in choices:
                raise ValueError(f"evaluation option {key} must be one of {choices}, got {getattr(self, key)!r}")
        for key, low in (("bins", 2), ("max_cells", 2), ("pairs", 1), ("mc_samples", 10)):
            if int(getattr(self, key)) < low:
                raise ValueError(f"evaluation option {key} must be >= {low}, got {getattr(self, key)}")
        try:  # the adaptive grid's and the precision's bounds are their own classes'
            self.refinement()
            self.grid_precision()
        except ValueError as error:
            raise ValueError(f"evaluation option {error}") from None

    @classmethod
    def from_dict(cls, values: dict) -> "EvaluationConfig":
        """Build from a mapping, refusing unknown keys by name."""
        return from_mapping(cls, values, "evaluation")

    @classmethod
    def from_json(cls, text: str) -> "EvaluationConfig":
        """Build from a JSON object (a command's ``--options``)."""
        return cls.from_dict(parse_json(text, "evaluation"))

    def grid_spec(self, dim: int):
        """The grid for ``dim`` parameters: a :class:`~.adaptive.Refinement` or a
        :class:`~.grids.UniformGrid`."""
        from .coverage import grid_bins
        from .grids import UniformGrid

        if self.grid == "uniform":
            return UniformGrid(grid_bins(self.bins, dim, self.max_cells))
        return self.refinement()

    def refinement(self):
        """The adaptive grid's :class:`~.adaptive.Refinement`."""
        from .adaptive import Refinement

        return Refinement(self.coarse_bins, self.refine_cells, self.refine_depth, self.refine_tolerance)

    def grid_precision(self):
        """The uniform grid's :class:`~.precision.GridPrecision`."""
        from .precision import GridPrecision

        return GridPrecision(self.precision, self.precision_delta, self.precision_tolerance)
