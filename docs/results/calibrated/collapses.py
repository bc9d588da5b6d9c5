"""Issue 34's study: members whose training collapsed, from the trainings' histories.

A member collapses at epoch e when its training loss jumps above its running minimum by
more than ``max(2, |minimum|)`` nats (a spike of the objective, not the noise of an epoch).
For each, prints the epoch, the loss before, at and after the jump (at the member's last
epoch: back near the minimum for a spike, far above it for a collapse that early stopping
ended), the epoch it kept, and the largest gradient norm of the regulariser and of the fit measured on the epochs'
last batches (``grad_norm_penalty``, ``grad_norm_bce``).

    python docs/results/calibrated/collapses.py studies/calibrated/models/*/seed1/*/*.history.csv
"""

import sys

import pandas as pd


def collapses(history: pd.DataFrame) -> list[dict]:
    rows = []
    for member, h in history.sort_values("epoch").groupby("member"):
        loss = h.train_loss.to_numpy()
        best = pd.Series(loss).cummin().shift(1).to_numpy()
        jump = loss > best + pd.Series(best).abs().clip(lower=2.0).to_numpy()
        if not jump.any():
            continue
        at = int(jump.argmax())
        rows.append(dict(
            member=member, epoch=int(h.epoch.iloc[at]), before=best[at], after=loss[at],
            last=loss[-1], last_epoch=int(h.epoch.max()),
            kept=int(h.epoch[h.kept].iloc[0]) if h.kept.any() else None,
            grad_norm_penalty=float(h.grad_norm_penalty.max()), grad_norm_bce=float(h.grad_norm_bce.max()),
        ))
    return rows


def main(paths: list[str]) -> None:
    print("| cell | member | epoch | training loss: before → at the jump → last epoch | kept epoch (last) "
          "| max grad norm: regulariser, fit |")
    print("|---|---|---|---|---|---|")
    for path in paths:
        history = pd.read_csv(path)
        cell = "{task} {method} {budget}".format(**history.iloc[0].to_dict())
        for r in collapses(history):
            print(f"| {cell} | {r['member']} | {r['epoch']} | {r['before']:.3f} → {r['after']:.3f} → {r['last']:.3f} | "
                  f"{r['kept']} ({r['last_epoch']}) | "
                  f"{r['grad_norm_penalty']:.3g}, {r['grad_norm_bce']:.3g} |")


if __name__ == "__main__":
    main(sys.argv[1:])
