r"""Stage 2, training: an ensemble of members trained together from a pairs file
(:mod:`.train`), by one loop over stacked members (:mod:`.fit`, :mod:`.stacked`,
:mod:`.optim`), fed by streamed or in-memory rows (:mod:`.stream`), checkpointed and
resumable (:mod:`.checkpoint`), with a progress bar (:mod:`.progress`). It writes a model
file (:mod:`bnre.methods.model_file`) and a history CSV.

Imports: bnre (shared modules only), bnre.nets, bnre.tasks, bnre.methods.
"""
