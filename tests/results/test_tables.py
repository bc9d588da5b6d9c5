"""Markdown tables of a summary."""

import pandas as pd

from bnre.results.tables import metric_table, summary_markdown


def test_metric_table_gives_mean_sd_and_ensemble():
    rows = [
        dict(task="t", method=m, budget=1024, replicate=r, metric="coverage_auc", value=v)
        for m, values in (("nre", {"0": -0.1, "1": -0.2, "ensemble": -0.12}), ("bnre", {"0": 0.1, "1": 0.3, "ensemble": 0.2}))
        for r, v in values.items()
    ]
    table = metric_table(pd.DataFrame(rows), "t", "coverage_auc").splitlines()
    assert table[0] == "| budget | NRE members | NRE ensemble | BNRE members | BNRE ensemble |"
    assert table[2] == "| 2^10 | -0.150 ± 0.071 | -0.120 | +0.200 ± 0.141 | +0.200 |"


def test_several_seeds_pool_their_ensembles():
    rows = [dict(task="t", seed=s, method="nre", budget=1024, replicate=r, metric="coverage_auc", value=v)
            for s, r, v in ((1, "0", 0.1), (1, "ensemble", 0.2), (2, "0", 0.3), (2, "ensemble", 0.4))]
    text = summary_markdown(pd.DataFrame(rows))
    assert "Root seeds 1, 2" in text
    assert "+0.300 ± 0.141" in text and "+0.200 ± 0.141" in text  # ensembles 0.2, 0.4; members 0.1, 0.3
