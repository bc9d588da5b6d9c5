r"""Balanced Neural Ratio Estimation (BNRE) as a reproducible workflow.

The package is usable without Snakemake. Its sub-packages are the workflow's stages, each
importing only those above it in this list (each package's docstring names what it may
import, and a test holds the code to it):

* :mod:`bnre.registry`: the methods, their options and the built-in tasks, by name
  (standard library only);
* :mod:`bnre.nets`: the networks, estimators, embeddings and flows;
* :mod:`bnre.tasks`: the simulators, their priors and exact posteriors;
* :mod:`bnre.simulation`: stage 1, pairs simulated in blocks into HDF5 files;
* :mod:`bnre.methods`: NRE, BNRE and the other methods (estimator and loss each), the
  training options (:mod:`bnre.methods.config`) and the model file
  (:mod:`bnre.methods.model_file`);
* :mod:`bnre.training`: stage 2, an ensemble trained from a pairs file;
* :mod:`bnre.evaluation`: stage 3, coverage and the other diagnostics, and inference on
  observed data;
* :mod:`bnre.results`: stages 4 and 5, tidy tables and figures;
* :mod:`bnre.workflow`: what the Snakemake workflow computes in Python (config checks,
  job options, code hashes); it imports only the registry.

Shared by all: :mod:`bnre.io` (atomic writes), :mod:`bnre.options` (options from JSON),
:mod:`bnre.provenance`, :mod:`bnre.devices` and :mod:`bnre.sampling` (the study's seeds
and random orders).
:mod:`bnre.cli` is the command line the rules call.
"""

__version__ = "0.1.0"
