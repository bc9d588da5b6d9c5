r"""Training methods as objects: each owns its estimator, its forward pass and its loss.

A method is built from a :class:`~bnre.methods.config.TrainConfig`. Its :meth:`Method.logits`
runs an estimator (a plain :class:`~bnre.nets.estimators.ConditionalEstimator` or the trainer's stacked
members) on a batch of joint pairs :math:`(\theta_i, x_i)` and on marginal pairs
:math:`(\theta'_i, x_i)`, and :meth:`Method.loss` turns those logits into one objective
value per member. The trainer and the evaluation never branch on a method's name; a new
method is one module here and a line in :data:`bnre.registry.methods.METHODS`, which also names
the method-specific options it uses (``docs/methods.md``).

* :mod:`.nre`: :class:`NRE`, :class:`BNRE`, a classifier of joint against marginal pairs;
* :mod:`.contrastive`: :class:`CNRE`, :class:`BCNRE`, contrastive NRE (Miller et al.
  2022) on sets of :math:`K` parameters with odds :math:`\gamma`, and its balanced form
  (arXiv:2304.10978);
* :mod:`.npe`: :class:`NPE`, :class:`BNPE`, a normalising flow :math:`q(\theta \mid x)`
  trained by likelihood, and its balanced form, whose penalty is that of the implied
  classifier :math:`d = \sigma(\log q - \log p)`;
* :mod:`.dcp`: :class:`CalNRE`, :class:`CalNPE`, NRE and NPE with the differentiable
  coverage-probability regulariser of Falkiewicz et al. (2023), conservative or calibrated;
  :mod:`.soft_sort` is the differentiable sort it uses;
* :mod:`.base`: the :class:`Method` interface and the :class:`Balanced` penalty;
* :mod:`.losses`: the NRE objective and the balancing penalties;
* :mod:`.config`: :class:`TrainConfig`, the training options and their defaults;
* :mod:`.model_file`: a trained ensemble saved and loaded.

Imports: bnre (shared modules only), bnre.registry, bnre.nets, bnre.tasks.
"""

from __future__ import annotations

from ..registry import methods as registry, resolve
from ..tasks import Task
from .base import Balanced, Forward, Method, build_estimator
from .config import TrainConfig
from .contrastive import BCNRE, CNRE
from .dcp import CalNPE, CalNRE
from .npe import BNPE, NPE, build_posterior_estimator
from .nre import BNRE, NRE

#: The methods by name, as :data:`bnre.registry.METHODS` names them.
METHODS: dict[str, type[Method]] = {name: resolve(entry.target) for name, entry in registry.METHODS.items()}


def get_method(config: TrainConfig, task: Task | None = None) -> Method:
    """The method ``config.method``, configured by ``config``, for training on ``task``
    (which the methods that draw from the prior need)."""
    try:
        method = METHODS[config.method]
    except KeyError:
        raise ValueError(f"unknown method {config.method!r}; expected one of {tuple(METHODS)}") from None
    return method(config, task)


__all__ = [
    "BCNRE", "BNPE", "BNRE", "CNRE", "CalNPE", "CalNRE", "METHODS", "NPE", "NRE", "Balanced", "Forward", "Method",
    "build_estimator", "build_posterior_estimator", "get_method",
]
