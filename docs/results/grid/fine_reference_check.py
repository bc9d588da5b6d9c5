"""One member's ranks on the adaptive grid against a brute-force reference far finer than 8×.

    python docs/results/grid/fine_reference_check.py MODEL TEST PAIRS REFERENCE_BINS [BINS ...]

For member 0 of MODEL on the first PAIRS pairs of TEST: the ranks on the uniform grid of
REFERENCE_BINS per dimension (the reference) and of each of BINS, and on the adaptive grid
(default settings, and at 2,048 evaluations) read with midpoint and with second-order
masses; prints the largest and mean |rank - reference| of each. With BINS holding 90 and
a quarter of REFERENCE_BINS, it shows the uniform grid's error and the 8×-finer
benchmark reference's own (``benchmarks/evaluation.py``). 2880² on 32 SLCP pairs takes
about 5 minutes on one core.
"""

import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, "benchmarks")
from evaluation import reference_ranks  # noqa: E402

from bnre.evaluation.adaptive import Refinement, refine  # noqa: E402
from bnre.evaluation.ensemble import Ensemble  # noqa: E402
from bnre.evaluation.evaluate import log_posterior_on  # noqa: E402
from bnre.evaluation.partition import hpd_ranks, log_masses  # noqa: E402
from bnre.methods.model_file import load_ensemble  # noqa: E402


@torch.no_grad()
def main(model: str, test: str, pairs: int, reference_bins: int, bins: list[int]) -> None:
    task, members, _ = load_ensemble(model)
    with h5py.File(test) as f:
        theta, x = torch.as_tensor(f["theta"][:pairs]), torch.as_tensor(f["x"][:pairs])
    log_density = log_posterior_on(Ensemble(members[:1], x), task)
    log_true = log_density(theta[:, None], slice(0, pairs))[..., 0]
    reference = reference_ranks(log_density, log_true, theta, task, reference_bins, "cpu")[0][0].numpy()
    print(f"{model}: member 0, {pairs} pairs; reference {reference_bins}^{task.theta_dim}")

    def report(label, ranks):
        error = np.abs(ranks - reference)
        print(f"  {label:40s} |rank error| max {error.max():.2e} mean {error.mean():.2e}")

    for b in bins:
        report(f"uniform {b}^{task.theta_dim}", reference_ranks(log_density, log_true, theta, task, b, "cpu")[0][0].numpy())

    def density(q, rows):
        return log_density(q.float(), rows).double()

    for settings in (Refinement(), Refinement(cells=2048)):
        batch = refine(density, slice(0, pairs), task.lower, task.upper, settings, log_true.double(), theta_true=theta)
        for reading, correction in (("midpoint", None), ("second-order", batch.log_mass_correction)):
            mass = log_masses(batch.log_density, batch.partition, correction).exp()
            ranks = hpd_ranks(batch.log_density, log_true.double(), mass)[0].numpy()
            report(f"adaptive, {batch.evaluations} evaluations, {reading} masses", ranks)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), [int(b) for b in sys.argv[5:]])
