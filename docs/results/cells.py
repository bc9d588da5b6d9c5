"""The cells of a study's summary.csv, for the tables of docs/results.md.

Each (task, budget) cell gives its rows, the ensembles' metrics (method × metric), the
members' mean and sd (method, metric), the number of test pairs, and the prior's and the
exact posterior's expected log posterior (NaN without an exact posterior).
"""

import math
from typing import Iterator, NamedTuple

import pandas as pd


class Cell(NamedTuple):
    task: str
    budget: int
    rows: pd.DataFrame
    ensemble: pd.DataFrame
    members: pd.DataFrame
    pairs: float
    prior: float
    exact: float

    @property
    def band(self) -> float:
        """Half-width of the 95% band of a calibrated posterior's AUC on the test pairs."""
        return 1.96 / math.sqrt(12 * self.pairs)


def cells(path: str) -> Iterator[Cell]:
    s = pd.read_csv(path, dtype={"replicate": str})
    for task in sorted(s.task.unique()):
        t = s[s.task == task]
        for budget in sorted(t.budget.unique()):
            b = t[t.budget == budget]
            ens = b[b.replicate == "ensemble"].pivot_table(index="method", columns="metric", values="value")
            mem = b[b.replicate != "ensemble"].groupby(["method", "metric"]).value.agg(["mean", "std"])
            yield Cell(task, budget, b, ens, mem, ens.test_pairs.iloc[0], ens.log_prior.iloc[0],
                       ens.log_posterior.get("exact", float("nan")))
