"""The adaptive grid's normaliser of a normalising flow against the flow's own mass in the prior box.

    python docs/results/grid/flow_normaliser_check.py MODEL TEST PAIRS DRAWS CELLS [CELLS ...]

A flow's density integrates to 1 over the whole space, so over the prior box its
integral is the probability that a draw of the flow lands in the box, which is
estimated from DRAWS of its own draws (standard error of its log about
sqrt((1 - p) / (p DRAWS))). The grid's normaliser, log Z = log sum_c V_c q(theta_c | x),
should equal it. Prints, for member 0 on the first PAIRS test pairs and each budget of
CELLS density evaluations per pair, the mean and the largest |log Z - log P(inside)|.
"""

import sys

import h5py
import numpy as np
import torch

from bnre.evaluation.adaptive import Refinement, refine
from bnre.evaluation.ensemble import Ensemble
from bnre.evaluation.partition import log_normaliser
from bnre.methods.model_file import load_ensemble


@torch.no_grad()
def main(model: str, test: str, pairs: int, draws: int, budgets: list[int]) -> None:
    task, members, _ = load_ensemble(model)
    flow = members[0]
    with h5py.File(test) as f:
        theta, x = torch.as_tensor(f["theta"][:pairs]), torch.as_tensor(f["x"][:pairs])
    estimators = Ensemble(members[:1], x)
    lower, upper = np.asarray(task.lower, np.float64), np.asarray(task.upper, np.float64)

    def log_density(q, rows):
        return (estimators.log_ratio(q.float(), rows) + task.prior.log_prob(q.float())).double()

    torch.manual_seed(0)
    box = torch.as_tensor(lower).float(), torch.as_tensor(upper).float()
    inside = []
    for i in range(pairs):
        z = flow.flow(estimators.embeddings[0, i]).sample((draws,))
        t = flow.theta_shift + flow.theta_scale * z
        inside.append(((t >= box[0]) & (t <= box[1])).all(-1).double().mean())
    log_inside = torch.stack(inside).log().numpy()
    print(f"{model}: member 0, {pairs} pairs, {draws} own draws each; mean log P(inside) {log_inside.mean():.4f}")
    log_true = log_density(theta[:, None].double(), slice(0, pairs))[..., 0]
    for cells in budgets:
        batch = refine(log_density, slice(0, pairs), lower, upper, Refinement(cells=cells), log_true, theta_true=theta)
        log_z = log_normaliser(batch.log_density, batch.partition, batch.log_mass_correction)[0].numpy()
        error = log_z - log_inside
        print(f"{cells:>8} evaluations: log Z - log P(inside) mean {error.mean():+.4f}, largest |.| {np.abs(error).max():.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), [int(c) for c in sys.argv[5:]])
