r"""Balanced Neural Ratio Estimation (BNRE) as a reproducible workflow.

The package is usable without Snakemake: :mod:`bnre.tasks` defines the simulators,
:mod:`bnre.losses` the NRE/BNRE objectives, :mod:`bnre.train` the trainer,
:mod:`bnre.coverage` and :mod:`bnre.evaluate` the diagnostics.
"""

__version__ = "0.1.0"
