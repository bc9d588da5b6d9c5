"""Figures of the tidy result tables (seaborn).

Colours are fixed per method across every figure: NRE orange, BNRE green, NRE-C purple,
BNRE-C magenta, NPE blue, BNPE brown, CalNRE red, CalNPE cyan, the exact posterior of a tractable task black (dashed
where it is a reference line); the methods' variants (``variants:`` in the config) get the next
colours of a qualitative palette (evenly spaced hues where there are more than 12), in the order
of their names, and their names as labels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..io import atomic_path  # noqa: E402
from .labels import label, ordered_methods  # noqa: E402

PALETTE = {"nre": "#d95f02", "bnre": "#1b9e77", "cnre": "#7570b3", "bnre_c": "#e7298a", "npe": "#1f78b4",
           "bnpe": "#a6761d", "calnre": "#e31a1c", "calnpe": "#17becf", "exact": "black"}
#: colours of the variants, after the methods'
VARIANT_COLOURS = ("#66a61e", "#e6ab02", "#666666", "#b2df8a", "#fb9a99", "#cab2d6", "#6a3d9a", "#b15928",
                   "#a6cee3", "#fdbf6f", "#ff7f00", "#8dd3c7")


def methods_of(data: pd.DataFrame) -> list[str]:
    """The methods in ``data``: the methods first, then the variants by name."""
    return ordered_methods(data.method)


def colours(methods: list[str]) -> dict[str, str]:
    """A distinct colour per method: the methods' own, then ``VARIANT_COLOURS`` for the
    variants or, where there are more variants than those, evenly spaced HUSL hues."""
    variants = [m for m in methods if m not in PALETTE]
    if len(variants) <= len(VARIANT_COLOURS):
        others = iter(VARIANT_COLOURS)
    else:
        others = iter(sns.color_palette("husl", len(variants)).as_hex())
    return {m: PALETTE[m] if m in PALETTE else next(others) for m in methods}


def _save(fig: plt.Figure, stem: str | os.PathLike, formats: tuple[str, ...]) -> list[Path]:
    from .. import __version__

    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        # provenance in the file's metadata (PNG text chunks, PDF info, SVG metadata)
        metadata = {"Creator" if fmt == "pdf" else "Software": f"bnre-workflow {__version__}"}
        if fmt == "svg":
            metadata = {"Creator": f"bnre-workflow {__version__}"}
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", dpi=120, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def lines(data: pd.DataFrame, key: str):
    """Yield (``key``'s value, rows) for each line of a figure: one per ``key`` (replicate,
    member) and root seed, where the table has seeds."""
    by = ["seed", key] if "seed" in data.columns else [key]
    for values, rows in data.groupby(by):
        yield values[-1], rows


def coverage_curves(curves: pd.DataFrame, task: str, stem: str | os.PathLike, formats: tuple[str, ...]) -> list[Path]:
    """Expected coverage vs credibility level, one panel per budget, NRE vs BNRE.

    Replicates are thin lines, the ensemble thick, the band is the ensemble's 95%
    Clopper–Pearson interval; with several root seeds, each seed's replicates and ensemble.
    """
    data = curves[curves.task == task]
    budgets = sorted(data.budget.unique())
    palette = colours(methods_of(data))
    fig, axes = plt.subplots(1, len(budgets), figsize=(3.2 * len(budgets), 3.6), squeeze=False, sharey=True, layout="constrained")
    for ax, budget in zip(axes[0], budgets):
        ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="nominal")
        for method, colour in palette.items():
            sub = data[(data.budget == budget) & (data.method == method)]
            for replicate, line in lines(sub, "replicate"):
                if replicate == "ensemble":
                    name = label(method) if method == "exact" else f"{label(method)} ensemble"
                    ax.plot(line.level, line.coverage, color=colour, linewidth=2, label=name,
                            linestyle="--" if method == "exact" else "-")
                    ax.fill_between(line.level, line.lower, line.upper, color=colour, alpha=0.2, linewidth=0)
                else:
                    ax.plot(line.level, line.coverage, color=colour, linewidth=0.8, alpha=0.6)
        ax.set_title(f"{task}, budget $2^{{{int(np.log2(budget))}}}$" if np.log2(budget).is_integer() else f"{task}, budget {budget}")
        ax.set_xlabel("credibility level")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
    axes[0, 0].set_ylabel("expected coverage")
    axes[0, -1].legend(loc="lower right", fontsize=7)
    return _save(fig, stem, formats)


def metric_vs_budget(
    summary: pd.DataFrame, metric: str, ylabel: str, stem: str | os.PathLike, formats: tuple[str, ...], reference: str | None = None
) -> list[Path]:
    """A metric vs simulation budget (log2 axis), one panel per task.

    Points: mean ± std over replicates (of every root seed); crosses: the ensemble of each
    seed, so that their spread is the spread across seeds. ``reference`` names a metric
    drawn as a grey horizontal line (e.g. the prior's log density).
    """
    data = summary[summary.metric == metric]
    tasks = sorted(data.task.unique())
    palette = colours(methods_of(data))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.8 * len(tasks), 3.4), squeeze=False, layout="constrained")
    for ax, task in zip(axes[0], tasks):
        sub = data[data.task == task]
        members = sub[sub.replicate != "ensemble"]
        sns.lineplot(
            members, x="budget", y="value", hue="method", palette=palette, hue_order=list(palette),
            errorbar="sd", marker="o", ax=ax, legend=False,
        )
        ens = sub[sub.replicate == "ensemble"]
        for method, color in palette.items():
            e = ens[ens.method == method].sort_values("budget")
            if method == "exact":  # the same at every budget: a reference line (mean over seeds),
                # drawn across the panel so that a single budget shows it too
                ax.axhline(e.value.mean(), color=color, linestyle="--", linewidth=1.2, zorder=3)
            else:
                ax.scatter(e.budget, e.value, marker="x", color=color, zorder=3)
        if reference is not None:
            ref = summary[(summary.metric == reference) & (summary.task == task)].value
            if len(ref):
                ax.axhline(ref.iloc[0], color="grey", linestyle=":", label="prior")
        if metric == "coverage_auc":
            ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(task)
        ax.set_xlabel("simulation budget")
        ax.set_ylabel(ylabel)
    estimators = {m: c for m, c in palette.items() if m != "exact"}
    handles = [plt.Line2D([], [], color=c, marker="o", label=f"{label(m)} (mean ± sd)") for m, c in estimators.items()]
    handles += [plt.Line2D([], [], color=c, marker="x", linestyle="", label=f"{label(m)} ensemble") for m, c in estimators.items()]
    if "exact" in palette:
        handles.append(plt.Line2D([], [], color="black", linestyle="--", label=label("exact")))
    if reference is not None:
        handles.append(plt.Line2D([], [], color="grey", linestyle=":", label="prior"))
    # beside the panels: with the variants of an ablation it would cover the last one
    fig.legend(handles=handles, fontsize=7, loc="outside right upper")
    return _save(fig, stem, formats)


#: Panel titles of the calibration diagnostics (bnre.evaluation.evaluate.Evaluation.calibration).
DIAGNOSTICS = {"sbc": "SBC ranks", "marginal_hpd": "marginal HPD coverage", "tarp": "TARP coverage"}


def calibration_curves(calibration: pd.DataFrame, task: str, stem: str | os.PathLike, formats: tuple[str, ...]) -> list[Path]:
    r"""Calibration beyond HPD coverage as ECDF differences: one row of panels per
    diagnostic and parameter (SBC ranks and marginal HPD coverage per parameter, TARP
    for the joint), one column per budget.

    Each panel shows :math:`\hat F(\gamma) - \gamma` (0 is calibrated): the ECDF of the
    SBC ranks, the marginal HPD coverage, the TARP coverage. Members thin, ensembles
    thick with their pointwise 95% Clopper–Pearson band, the exact posterior dashed.
    For SBC, a too narrow posterior draws an S above zero below γ = ½ and below zero
    above it, a too wide one the mirror image, a biased one a ∩ or ∪; for HPD coverage,
    below zero is overconfident.
    """
    data = calibration[calibration.task == task]
    budgets = sorted(data.budget.unique())
    panels = [(d, p) for d in DIAGNOSTICS for p in sorted(data[data.diagnostic == d].parameter.unique())]
    palette = colours(methods_of(data))
    fig, axes = plt.subplots(len(panels), len(budgets), figsize=(3.0 * len(budgets), 2.3 * len(panels)), squeeze=False,
                             sharex=True, sharey="row", layout="constrained")
    for row, (diagnostic, parameter) in enumerate(panels):
        for column, budget in enumerate(budgets):
            ax = axes[row, column]
            ax.axhline(0, color="grey", linewidth=0.8)
            sub = data[(data.diagnostic == diagnostic) & (data.parameter == parameter) & (data.budget == budget)]
            for method, colour in palette.items():
                for replicate, line in lines(sub[sub.method == method], "replicate"):
                    if replicate != "ensemble":
                        ax.plot(line.level, line.value - line.level, color=colour, linewidth=0.6, alpha=0.5)
                        continue
                    exact = method == "exact"
                    ax.plot(line.level, line.value - line.level, color=colour, linewidth=1.2 if exact else 1.8,
                            linestyle="--" if exact else "-")
                    if not exact:
                        ax.fill_between(line.level, line.lower - line.level, line.upper - line.level, color=colour,
                                        alpha=0.15, linewidth=0)
            what = DIAGNOSTICS[diagnostic] + ("" if parameter == "joint" else f", {parameter}")
            ax.set_title(f"{what}\n{task}, budget {budget}", fontsize=8)
        axes[row, 0].set_ylabel("ECDF − level")
    for ax in axes[-1]:
        ax.set_xlabel("level")
    handles = [plt.Line2D([], [], color=c, linestyle="--" if m == "exact" else "-", label=label(m)) for m, c in palette.items()]
    fig.legend(handles=handles, fontsize=7, loc="outside right upper")
    return _save(fig, stem, formats)


def training_curves(histories: pd.DataFrame, task: str, stem: str | os.PathLike, formats: tuple[str, ...]) -> list[Path]:
    """Validation loss vs epoch, one panel per budget, one line per member (of every root
    seed), NRE vs BNRE.

    ``histories`` holds the per-epoch CSVs of the training jobs with added ``task``,
    ``method`` and ``budget`` columns.
    """
    data = histories[histories.task == task]
    budgets = sorted(data.budget.unique())
    palette = colours(methods_of(data))
    fig, axes = plt.subplots(1, len(budgets), figsize=(3.2 * len(budgets), 3.2), squeeze=False, layout="constrained")
    for ax, budget in zip(axes[0], budgets):
        for method, color in palette.items():
            sub = data[(data.budget == budget) & (data.method == method)]
            for _, member in lines(sub, "member"):
                ax.plot(member.epoch, member.val_loss, color=color, linewidth=0.9, alpha=0.8)
        ax.set_title(f"{task}, budget {budget}")
        ax.set_xlabel("epoch")
    axes[0, 0].set_ylabel("validation loss")
    handles = [plt.Line2D([], [], color=c, label=label(m)) for m, c in palette.items()]
    fig.legend(handles=handles, fontsize=7, loc="outside right upper")  # beside the panels, never on a curve
    return _save(fig, stem, formats)


def penalty_curves(histories: pd.DataFrame, task: str, stem: str | os.PathLike, formats: tuple[str, ...]) -> list[Path]:
    r"""What slows a penalised method, per epoch, one column per budget (mean over members).

    Top: the two parts of the expected batch penalty, :math:`\lambda \bar v^2` (the
    violation, solid) and :math:`\lambda \mathbb{V}[v_b]` (its batch variance, dashed).
    Bottom: the ratio of the penalty's gradient norm to the cross-entropy's at each epoch's
    last batch. Methods without a penalty are left out.
    """
    data = histories[(histories.task == task) & (histories.lmbda > 0)]
    budgets = sorted(data.budget.unique())
    palette = colours(methods_of(histories[histories.task == task]))
    fig, axes = plt.subplots(2, max(len(budgets), 1), figsize=(3.4 * max(len(budgets), 1), 5.4), squeeze=False,
                             sharex="col", layout="constrained")
    for column, budget in enumerate(budgets):
        top, bottom = axes[0, column], axes[1, column]
        for method in methods_of(data):
            sub = data[(data.budget == budget) & (data.method == method)].groupby("epoch").mean(numeric_only=True)
            colour = palette[method]
            top.plot(sub.index, sub.penalty_violation, color=colour, linewidth=1)
            top.plot(sub.index, sub.penalty_variance, color=colour, linewidth=1, linestyle="--")
            bottom.plot(sub.index, sub.grad_norm_penalty / sub.grad_norm_bce, color=colour, linewidth=1)
        top.set_yscale("log")
        bottom.set_yscale("log")
        top.set_title(f"{task}, budget {budget}")
        bottom.set_xlabel("epoch")
    axes[0, 0].set_ylabel(r"batch penalty parts")
    axes[1, 0].set_ylabel("|grad penalty| / |grad BCE|")
    handles = [plt.Line2D([], [], color=palette[m], label=label(m)) for m in methods_of(data)]
    handles += [plt.Line2D([], [], color="grey", label=r"$\lambda \bar v^2$"),
                plt.Line2D([], [], color="grey", linestyle="--", label=r"$\lambda\, \mathrm{Var}[v_b]$")]
    fig.legend(handles=handles, fontsize=6, loc="outside right upper")
    return _save(fig, stem, formats)


class Drawn(NamedTuple):
    """The files a figure was saved to and the figure itself (closed: its axes, titles and
    limits can still be read)."""

    paths: list[Path]
    figure: plt.Figure


def posterior_example(
    densities: dict[str, np.ndarray],
    lower: np.ndarray,
    upper: np.ndarray,
    theta_true: np.ndarray,
    labels: tuple[str, ...],
    title: str,
    stem: str | os.PathLike,
    formats: tuple[str, ...],
) -> Drawn:
    """The posterior of one observation per method, the true parameter marked, in the
    window ``lower``, ``upper`` (D,) (:func:`bnre.evaluation.infer.posterior_view`).

    ``densities[method]`` is the normalised marginal density of the first min(D, 2)
    parameters at the centres of a regular raster over the window, (points,) * min(D, 2);
    ``exact`` (the exact posterior of a tractable task) is drawn like a method, in black.
    One parameter: density curves; two or more: one panel per method.
    """
    methods = ordered_methods(densities)
    palette = colours(methods)
    if len(lower) == 1:
        fig, ax = plt.subplots(figsize=(4.5, 3.2), layout="constrained")
        for method in methods:
            density = densities[method]
            centres = lower[0] + (np.arange(len(density)) + 0.5) * (upper[0] - lower[0]) / len(density)
            ax.plot(centres, density, color=palette[method], label=label(method),
                    linestyle="--" if method == "exact" else "-")
        ax.axvline(theta_true[0], color="grey", linestyle=":", label=r"$\theta^*$")
        ax.set_xlim(lower[0], upper[0])
        ax.set_xlabel(labels[0])
        ax.set_ylabel("posterior density")
        ax.legend(fontsize=7)
        ax.set_title(title)
        return Drawn(_save(fig, stem, formats), fig)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.4 * len(methods), 3.3), squeeze=False, layout="constrained")
    extent = (lower[0], upper[0], lower[1], upper[1])
    for ax, method in zip(axes[0], methods):
        ax.imshow(densities[method].T, origin="lower", extent=extent, aspect="auto", cmap="viridis")
        ax.scatter([theta_true[0]], [theta_true[1]], marker="*", s=120, color="white", edgecolor="black", label=r"$\theta^*$")
        ax.set_xlim(lower[0], upper[0])
        ax.set_ylim(lower[1], upper[1])
        ax.set_title(label(method))
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
    fig.suptitle(title)
    axes[0, -1].legend(loc="upper right", fontsize=7)
    return Drawn(_save(fig, stem, formats), fig)


def _smooth(hist: np.ndarray) -> np.ndarray:
    """A 2-D histogram smoothed by the separable kernel (1, 2, 1) / 4 along each axis."""
    for axis in (0, 1):
        padded = np.pad(hist, [(1, 1) if a == axis else (0, 0) for a in (0, 1)])
        lo, mid, hi = (np.take(padded, np.arange(k, k + hist.shape[axis]), axis=axis) for k in range(3))
        hist = (lo + 2 * mid + hi) / 4
    return hist


def _mass_levels(hist: np.ndarray, masses: tuple[float, ...]) -> list[float]:
    """Histogram heights whose superlevel sets hold ``masses`` of the total, increasing."""
    flat = np.sort(hist.ravel())[::-1]
    cumulative = np.cumsum(flat) / flat.sum()
    levels = sorted({float(flat[min(np.searchsorted(cumulative, m), len(flat) - 1)]) for m in masses})
    return levels if len(levels) > 1 or levels[0] > 0 else [levels[0] + 1e-12]


def corner(
    samples: dict[str, np.ndarray],
    lower: np.ndarray,
    upper: np.ndarray,
    labels: tuple[str, ...],
    title: str,
    stem: str | os.PathLike,
    formats: tuple[str, ...],
    bins: int = 30,
) -> Drawn:
    """Corner plot of posterior draws (S, D) per method, overlaid: 1-D marginal densities on
    the diagonal, the 50% and 90% highest-density regions of each 2-D marginal below, the
    exact posterior of a tractable task (``exact``) in dashed black. The axes span the
    window ``lower``, ``upper`` (D,) (:func:`bnre.evaluation.infer.plot_window` of the methods'
    spans), ``bins`` histogram bins across it; draws outside it are left out."""
    methods = ordered_methods(samples)
    palette = colours(methods)
    dim = len(lower)
    fig, axes = plt.subplots(dim, dim, figsize=(2.2 * dim + 1, 2.2 * dim + 0.6), squeeze=False, layout="constrained")
    edges = [np.linspace(lower[d], upper[d], bins + 1) for d in range(dim)]
    for i in range(dim):
        for j in range(dim):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            for method in methods:
                draws = samples[method]
                style = "--" if method == "exact" else "-"
                if i == j:
                    ax.hist(draws[:, i], bins=edges[i], density=True, histtype="step", color=palette[method],
                            linestyle=style, label=label(method))
                else:
                    hist, _, _ = np.histogram2d(draws[:, j], draws[:, i], bins=[edges[j], edges[i]])
                    hist = _smooth(hist)
                    centres = [(e[1:] + e[:-1]) / 2 for e in (edges[j], edges[i])]
                    ax.contour(*centres, hist.T, levels=_mass_levels(hist, (0.9, 0.5)), colors=palette[method], linewidths=1,
                               linestyles=style)
            ax.set_xlim(lower[j], upper[j])
            if i != j:
                ax.set_ylim(lower[i], upper[i])
            else:
                ax.set_yticks([])
            ax.set_xlabel(labels[j] if i == dim - 1 else "")
            ax.set_ylabel(labels[i] if j == 0 and i > 0 else "")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title)
    return Drawn(_save(fig, stem, formats), fig)
