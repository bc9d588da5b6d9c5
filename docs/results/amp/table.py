"""Paired amp vs float32 table from a config/amp.yaml study directory."""
import sys, pandas as pd, numpy as np, glob
d = sys.argv[1]
rows = []
for method in ["nre", "nre_amp", "bnre", "bnre_amp"]:
    f = f"{d}/models/slcp/{method}/4096.history.csv" if "/models" in d or __import__("os").path.isdir(f"{d}/models") else f"{d}/history_{method}.csv"
    try: h = pd.read_csv(f)
    except FileNotFoundError: continue
    kept = h[h.kept.astype(str) == "True"]
    # seconds per epoch while all 5 members are active (stacked K = 5)
    per_epoch = h.groupby("epoch").agg(seconds=("seconds", "first"), active=("member", "nunique"))
    full = per_epoch[per_epoch.active == h.member.nunique()].seconds
    rows.append(dict(method=method, val_loss=kept.val_loss.mean(), val_sd=kept.val_loss.std(),
                     kept_epoch=kept.epoch.mean(), s_per_epoch_k5=full.iloc[1:].median(), epochs=h.epoch.max()))
t = pd.DataFrame(rows)
try:
    s = pd.read_csv(f"{d}/results/summary.csv" if __import__("os").path.isdir(f"{d}/results") else f"{d}/summary.csv")
    auc = s[s.metric == "coverage_auc"]
    mem = auc[auc.replicate != "ensemble"].groupby("method").value.agg(["mean", "std"])
    ens = auc[auc.replicate == "ensemble"].set_index("method").value
    lp = s[(s.metric == "log_posterior")]
    lpm = lp[lp.replicate != "ensemble"].groupby("method").value.agg(["mean", "std"])
    t["auc_members"] = t.method.map(lambda m: f"{mem.loc[m,'mean']:+.3f} ± {mem.loc[m,'std']:.3f}")
    t["auc_ensemble"] = t.method.map(ens).map("{:+.3f}".format)
    t["logpost_members"] = t.method.map(lambda m: f"{lpm.loc[m,'mean']:.3f} ± {lpm.loc[m,'std']:.3f}")
    t["logpost_ensemble"] = t.method.map(lp[lp.replicate == "ensemble"].set_index("method").value).map("{:.3f}".format)
except FileNotFoundError:
    pass
print(t.to_markdown(index=False, floatfmt=".3f"))
