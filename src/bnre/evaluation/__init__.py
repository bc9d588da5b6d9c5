r"""Stage 3, evaluation: an ensemble's posterior on a partition of the prior box, adaptive
(:mod:`.adaptive`, :mod:`.partition`) or uniform (:mod:`.coverage`, :mod:`.precision`),
chosen by :mod:`.grids`; the members read together (:mod:`.ensemble`,
:mod:`.low_precision_head`); coverage, log posterior, balancing, SBC, TARP and KL/TV
against the exact posterior (:mod:`.evaluate`, :mod:`.diagnostics`, :mod:`.calibration`,
:mod:`.mcmc`); and the posterior of observed data (:mod:`.infer`). It reads model files
and never imports training.

Imports: bnre (shared modules only), bnre.nets, bnre.tasks, bnre.methods.
"""
