"""The options of one ensemble's training, and their defaults.

:class:`TrainConfig` is the package's source of truth for the training options; the
workflow's JSON schema (``config/schema.yaml``, ``$defs/train_options``) states the same
defaults and bounds, and a test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..nets.estimators import ACTIVATIONS
from ..options import from_mapping
from ..registry import methods as registry

#: The choices of the training options that take one of a few names; the first is the default.
CHOICES: dict[str, tuple[str, ...]] = {
    "bce": ("mean", "sum"),  # the two cross-entropies averaged (lampe, sbi) or summed (the authors)
    "marginals": ("roll", "permute"),  # marginal partners: theta_{i-1}, or a random permutation per batch
    "keep": ("best", "last"),  # the weights kept: lowest validation loss, or the last epoch's
    "normalise": ("train", "none", "fixed"),  # inputs standardised with training statistics, raw, or the task's fixed statistics
    "validation_loss": ("set", "batches"),  # the objective on the whole validation set, or the mean of its batches'
    "penalty": ("squared", "unbiased"),  # BNRE's penalty: squared batch violation, or the product of the halves'
    "flow": ("nsf", "maf"),  # posterior estimators' flow: zuko's neural spline or masked autoregressive flow
    # calibration-regularised methods: the rank's straight-through step on the difference of
    # densities (lampe's, the paper's) or of log densities (a gradient that the densities' scale cannot blow up)
    "dcp_step": ("density", "log_density"),
}

#: Options that change how training runs, never the model it produces (a streamed or
#: resumed training equals the in-memory, uninterrupted one bit for bit).
EXECUTION_OPTIONS = registry.EXECUTION_OPTIONS


@dataclass
class TrainConfig:
    """Hyper-parameters of one ensemble; the defaults are the paper's."""

    method: str = "bnre"
    lmbda: float = 50.0
    replicates: int = 5
    batch_size: int = 128
    epochs: int = 500
    patience: int = 50
    lr: float = 1e-3
    weight_decay: float = 1e-2
    scheduler_factor: float = 0.5
    scheduler_patience: int = 10
    hidden: list[int] = field(default_factory=lambda: [256] * 6)
    activation: str = "SELU"
    seed: int = 1
    device: str = "auto"
    amp: bool = False
    deterministic: bool = False
    checkpoint_seconds: float = 60.0
    lambda_warmup: int = 0
    shuffle_block: int = 1
    memory_limit_mb: float = 4096.0
    bce: str = "mean"
    marginals: str = "roll"
    early_stopping: bool = True
    keep: str = "best"
    scheduler_min_lr: float = 0.0
    normalise: str = "train"
    validation_loss: str = "set"
    penalty: str = "squared"
    #: contrastive methods: the odds gamma of the joint set, and the sets' cardinality K (lampe's defaults)
    gamma: float = 1.0
    cardinality: int = 2
    #: posterior estimators: the flow, its transforms, its hyper-networks' hidden widths, its spline bins
    flow: str = "nsf"
    flow_transforms: int = 5
    flow_hidden: list[int] = field(default_factory=lambda: [128, 128])
    flow_bins: int = 8
    #: calibration-regularised methods (calnre, calnpe): the regulariser's weight (None: the
    #: method's own default, lampe's: 5 for calnre, 1 for calnpe), the draws per pair that
    #: estimate each rank, the two-sided (calibrated) form instead of the conservative one,
    #: the soft sort's regularisation strength (lampe's and the paper's defaults), and what the
    #: rank's straight-through step compares: densities (lampe's) or log densities
    dcp_lambda: float | None = registry.DCP_DEFAULTS["dcp_lambda"]
    dcp_samples: int = registry.DCP_DEFAULTS["dcp_samples"]
    dcp_calibration: bool = registry.DCP_DEFAULTS["dcp_calibration"]
    dcp_sort_strength: float = registry.DCP_DEFAULTS["dcp_sort_strength"]
    dcp_step: str = registry.DCP_DEFAULTS["dcp_step"]
    #: the name of the method in tables and figures: a variant's name (default: ``method``)
    name: str = ""

    def __post_init__(self) -> None:
        if self.method not in registry.METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of {tuple(registry.METHODS)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {sorted(ACTIVATIONS)}")
        for key, choices in CHOICES.items():
            if getattr(self, key) not in choices:
                raise ValueError(f"{key} must be one of {choices}, got {getattr(self, key)!r}")
        if self.scheduler_min_lr < 0:
            raise ValueError(f"scheduler_min_lr must be >= 0, got {self.scheduler_min_lr}")
        if not self.name:
            self.name = self.method
        if self.lmbda < 0:
            raise ValueError(f"lmbda must be >= 0, got {self.lmbda}")
        if self.lambda_warmup < 0:
            raise ValueError(f"lambda_warmup must be >= 0, got {self.lambda_warmup}")
        if self.memory_limit_mb <= 0:
            raise ValueError(f"memory_limit_mb must be > 0, got {self.memory_limit_mb}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.scheduler_factor < 1:
            raise ValueError(f"scheduler_factor must be in (0, 1), got {self.scheduler_factor}")
        if self.scheduler_patience < 0:
            raise ValueError(f"scheduler_patience must be >= 0, got {self.scheduler_patience}")
        if self.checkpoint_seconds < 0:
            raise ValueError(f"checkpoint_seconds must be >= 0, got {self.checkpoint_seconds}")
        for name in ("hidden", "flow_hidden"):
            widths = getattr(self, name)
            if not widths or min(widths) < 1:
                raise ValueError(f"{name} must be a non-empty list of widths >= 1, got {widths}")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if self.flow_bins < 2:
            raise ValueError(f"flow_bins must be >= 2, got {self.flow_bins}")
        for name in ("replicates", "epochs", "patience", "shuffle_block", "cardinality", "flow_transforms"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dcp_lambda is not None and not self.dcp_lambda >= 0:
            raise ValueError(f"dcp_lambda must be >= 0 (or None for the method's default), got {self.dcp_lambda}")
        if int(self.dcp_samples) < 1:
            raise ValueError(f"dcp_samples must be >= 1 (draws per pair of the rank statistic), got {self.dcp_samples}")
        if not self.dcp_sort_strength > 0:
            raise ValueError(f"dcp_sort_strength must be > 0, got {self.dcp_sort_strength}")
        unused = [f"{key}={getattr(self, key)!r}" for key, default in sorted(registry.DCP_DEFAULTS.items())
                  if self.method not in registry.DCP_METHODS and getattr(self, key) != default]
        if unused:
            raise ValueError(f"method {self.method!r} has no calibration regulariser, but got {', '.join(unused)}; "
                             f"these options belong to {', '.join(registry.DCP_METHODS)}")
        # a batch of one pair is its own marginal partner (roll(theta, 1) == theta)
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (a marginal pair needs another pair), got {self.batch_size}")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a mapping, refusing unknown keys by name."""
        return from_mapping(cls, values, "training")

    def result_options(self) -> dict:
        """The options that define the trained model (all but :data:`EXECUTION_OPTIONS`)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in EXECUTION_OPTIONS}
