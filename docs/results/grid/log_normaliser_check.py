"""The exact posterior's normaliser on the adaptive grid and on the 90-bin grid, against a fine uniform grid.

    python docs/results/grid/log_normaliser_check.py TASK PAIRS REFERENCE_BINS   # e.g. slcp 48 1440

On the first PAIRS test pairs of the laptop study's seed, log Z = log sum_c exp(l_c) V_c of
the exact posterior on the uniform grid of REFERENCE_BINS per dimension (in chunks of
cells), on the 90-bin grid and on the adaptive grid (``Refinement()``'s defaults, refined
at the truth). Prints the mean log posterior l* - log Z of each, and the largest and mean
|log Z - log Z_reference|. Output of ``slcp 48 1440``: log_normaliser_check.txt.
"""
import sys

import numpy as np
import torch

from bnre.evaluation.adaptive import Refinement, adaptive_pass
from bnre.evaluation.diagnostics import exact_log_posterior
from bnre.evaluation.partition import log_normaliser, regular_partition
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task
torch.set_num_threads(1)
name, N, ref_bins = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
task = get_task(name)
theta, x = simulate_range(task, "test", 1, 0, N)
theta = torch.as_tensor(theta).double(); x = torch.as_tensor(x)
ld = exact_log_posterior(task, x)
lt = ld(theta[:, None], slice(0, N))[..., 0][0]
def uniform_logz(bins, chunk=2**21):
    part = regular_partition(task.lower, task.upper, bins); cells = part.centre[0]; lv = float(part.log_volume[0, 0])
    out = []
    for i in range(N):
        tot = torch.tensor(-np.inf, dtype=torch.float64)
        for c in range(0, len(cells), chunk):
            tot = torch.logaddexp(tot, ld(cells[None, c:c+chunk], slice(i, i+1))[0, 0].logsumexp(0))
        out.append(tot + lv)
    return torch.stack(out)
ref = uniform_logz(ref_bins); uni = uniform_logz(90)
ada = torch.cat([log_normaliser(b.log_density, b.partition, b.log_mass_correction)[0] for b in adaptive_pass(ld, N, task.lower, task.upper, Refinement(), lt[None], theta_true=theta)])
for k, v in (("uniform 90", uni), ("adaptive", ada)):
    print(f"{name} {k}: mean log posterior {float((lt - v).mean()):.4f} (reference {ref_bins}: {float((lt - ref).mean()):.4f}); |log Z - ref| max {float((v - ref).abs().max()):.3f} mean {float((v - ref).abs().mean()):.4f}")
