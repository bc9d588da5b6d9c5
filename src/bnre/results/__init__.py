r"""Stages 4 and 5, results: the per-cell tables concatenated into tidy ones
(:mod:`.aggregate`), the summary's markdown (:mod:`.tables`), and the figures
(:mod:`.figures`), with the methods' labels and colours (:mod:`.labels`). They read CSV
files only, so they need neither torch nor a model.

Imports: bnre (shared modules only).
"""
