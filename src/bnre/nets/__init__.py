r"""The networks: conditional estimators :math:`h(\theta, e(x))` (:mod:`.estimators`),
embeddings of structured :math:`x` (:mod:`.embeddings`), normalising flows
:math:`q(\theta \mid x)` (:mod:`.flows`), and the logits they give an objective
(:mod:`.logits`). They know nothing of tasks, methods or training.

Imports: bnre (shared modules only).
"""
