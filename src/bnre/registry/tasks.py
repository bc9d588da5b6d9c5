"""The built-in tasks, and which have a tractable likelihood (see :mod:`bnre.registry`).
Standard library only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskEntry:
    """A built-in task: its class, and whether its likelihood is tractable (its exact
    posterior is then evaluated beside the estimators)."""

    target: str
    tractable: bool
    #: a module its simulator needs that only an extra of the package installs, and that extra
    needs: tuple[str, str] | None = None


#: The built-in tasks by name.
TASKS: dict[str, TaskEntry] = {
    "gaussian": TaskEntry("bnre.tasks.gaussian:Gaussian", tractable=True),
    "slcp": TaskEntry("bnre.tasks.slcp:SLCP", tractable=True),
    "weinberg": TaskEntry("bnre.tasks.weinberg:Weinberg", tractable=True),
    "two_moons": TaskEntry("bnre.tasks.two_moons:TwoMoons", tractable=True),
    "mg1": TaskEntry("bnre.tasks.mg1:MG1", tractable=False),
    "lotka_volterra": TaskEntry("bnre.tasks.lotka_volterra:LotkaVolterra", tractable=False),
    "spatial_sir": TaskEntry("bnre.tasks.spatial_sir:SpatialSIR", tractable=False),
    "gravitational_waves": TaskEntry(
        "bnre.tasks.gravitational_waves:GravitationalWaves", tractable=False, needs=("lalsimulation", "gw")
    ),
}
