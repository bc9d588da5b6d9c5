"""The training methods, the method-specific options each uses, and the options that do not
change a model (see :mod:`bnre.registry`). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodEntry:
    """A training method: its class, and the method-specific training options it uses
    (config keys, out of :data:`METHOD_OPTIONS`)."""

    target: str
    options: frozenset[str]


_BALANCING = frozenset({"lambda", "lambda_warmup", "penalty"})
_CLASSIFIER = frozenset({"hidden", "activation"})
_CONTRASTIVE = frozenset({"gamma", "cardinality"})
_FLOW = frozenset({"flow", "flow_transforms", "flow_hidden", "flow_bins"})
#: the differentiable-coverage-probability regulariser's (Falkiewicz et al. 2023), and their
#: defaults (lampe's; a None weight is the method's own), which the other methods keep
DCP_DEFAULTS: dict[str, object] = {"dcp_lambda": None, "dcp_samples": 16, "dcp_calibration": False,
                                   "dcp_sort_strength": 1.0, "dcp_step": "density"}
DCP_OPTIONS = frozenset(DCP_DEFAULTS)

#: The methods by name.
METHODS: dict[str, MethodEntry] = {
    "nre": MethodEntry("bnre.methods.nre:NRE", _CLASSIFIER | {"bce", "marginals"}),
    "bnre": MethodEntry("bnre.methods.nre:BNRE", _CLASSIFIER | {"bce", "marginals"} | _BALANCING),
    "cnre": MethodEntry("bnre.methods.contrastive:CNRE", _CLASSIFIER | _CONTRASTIVE),
    "bnre_c": MethodEntry("bnre.methods.contrastive:BCNRE", _CLASSIFIER | _CONTRASTIVE | _BALANCING),
    "npe": MethodEntry("bnre.methods.npe:NPE", _FLOW),
    "bnpe": MethodEntry("bnre.methods.npe:BNPE", _FLOW | {"marginals"} | _BALANCING),
    "calnre": MethodEntry("bnre.methods.dcp:CalNRE", _CLASSIFIER | {"bce", "marginals"} | DCP_OPTIONS),
    "calnpe": MethodEntry("bnre.methods.dcp:CalNPE", _FLOW | DCP_OPTIONS),
}

#: The methods with the calibration regulariser (those that use the DCP options).
DCP_METHODS: tuple[str, ...] = tuple(name for name, entry in METHODS.items() if DCP_OPTIONS <= entry.options)

#: The training options that belong to some methods only (the others are shared by all):
#: a variant may set only those of its base method, and a method's training options leave
#: out those it does not use, so that changing one re-runs only the methods that use it.
METHOD_OPTIONS: frozenset[str] = frozenset().union(*(m.options for m in METHODS.values()))

#: Values of options a method does not use that it is trained with all the same (a
#: method without a penalty has weight 0); the other unused options are left out.
NEUTRAL_OPTIONS: dict[str, object] = {"lambda": 0.0, "lambda_warmup": 0, "penalty": "squared"}

#: Config keys whose field of :class:`bnre.methods.config.TrainConfig` is named otherwise
#: (``lambda`` is a Python keyword).
CONFIG_FIELDS: dict[str, str] = {"lambda": "lmbda"}

#: Training options that change how a job runs, never the model (a streamed or resumed
#: training is bit for bit the in-memory, uninterrupted one): not tracked for re-runs.
EXECUTION_OPTIONS: tuple[str, ...] = ("checkpoint_seconds", "memory_limit_mb")

#: Names the results use for something else than a method (the exact posterior's rows).
RESERVED_NAMES: tuple[str, ...] = ("exact",)


def check_options(method: str, options: dict) -> str | None:
    """Why ``method`` cannot train with the training ``options`` (config keys), or None:
    a contrastive batch needs a joint and a marginal set of ``cardinality`` for each
    observation."""
    if "cardinality" in METHODS[method].options and options["batch_size"] < 2 * options["cardinality"]:
        return (
            f"batch_size {options['batch_size']} is below 2 * cardinality ({2 * options['cardinality']}); "
            "a contrastive batch needs a joint and a marginal set for each observation"
        )
    return None


def field(key: str) -> str:
    """The :class:`~bnre.methods.config.TrainConfig` field of config key ``key``."""
    return CONFIG_FIELDS.get(key, key)


def method_uses(method: str) -> frozenset[str]:
    """The method-specific options (TrainConfig fields) that ``method`` uses."""
    return frozenset(field(key) for key in METHODS[method].options)
