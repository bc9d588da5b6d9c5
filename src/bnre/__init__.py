r"""Balanced Neural Ratio Estimation (BNRE) as a reproducible workflow.

The package is usable without Snakemake: :mod:`bnre.tasks` defines the simulators,
:mod:`bnre.losses` the NRE/BNRE objectives and :mod:`bnre.methods` the methods built on
them, :mod:`bnre.config` the training options, :mod:`bnre.trainer` the training loop
(over :mod:`bnre.stacked` members, :mod:`bnre.optim` and :mod:`bnre.checkpoint`),
:mod:`bnre.train` model files, :mod:`bnre.ensemble`, :mod:`bnre.coverage` and
:mod:`bnre.evaluate` the diagnostics.
"""

__version__ = "0.1.0"
