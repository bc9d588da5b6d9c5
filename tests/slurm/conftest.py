"""A real single-node SLURM cluster for the tests in this directory (see slurm_cluster.py).

The tests skip only when SLURM is not installed (CI installs Debian's slurm-wlm and munge
in .ci/run, so there they run)."""

import pytest

from slurm_cluster import Cluster, cannot_run


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = cannot_run()
    if reason:
        pytest.skip(reason)
    cluster = Cluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()
