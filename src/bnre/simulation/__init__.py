r"""Stage 1, simulation: pairs :math:`(\theta, x) \sim p(\theta)p(x \mid \theta)` drawn in
seeded blocks (:mod:`.simulate`) and stored as HDF5 pairs files, written, merged and read
(:mod:`.pairs`).

Imports: bnre (shared modules only), bnre.tasks.
"""
