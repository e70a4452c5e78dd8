"""Forest plots (matplotlib, Agg): one row per study, pooled diamonds, null line at 1, log x-axis.

The figure's height grows with the number of studies so 2 and 40 studies are both legible;
labels, estimates and weights are drawn as text columns beside the axis.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first)
from matplotlib.patches import Polygon  # noqa: E402

from .errors import ExtractorError  # noqa: E402
from .meta import METHOD_NAMES, MetaResult  # noqa: E402

KIND_AXIS = {"hazard_ratio": "Hazard ratio", "odds_ratio": "Odds ratio", "risk_ratio": "Risk ratio"}
ROW_INCHES = 0.3
FORMATS = (".png", ".svg", ".pdf")


class PlotError(ExtractorError):
    """A plot that cannot be written (unknown file type)."""


def forest_plot(group, kind: str, out: str | Path, title: str | None = None) -> Path:
    """Draw `group` (a report.MetaGroup: studies + MetaResult) to `out` (.png, .svg or .pdf)."""
    labels = [s.label for s in group.studies]
    cis = [(s.ci_low, s.ci_high) for s in group.studies]
    return forest(labels, [s.yi for s in group.studies], [s.sei for s in group.studies], group.result, out,
                  kind=kind, title=title, cis=cis)


def forest(labels: list[str], yi: list[float], sei: list[float], result: MetaResult, out: str | Path,
           kind: str = "hazard_ratio", title: str | None = None,
           cis: list[tuple[float | None, float | None]] | None = None) -> Path:
    """Forest plot of log effects `yi` with SEs `sei` and their pooled `result`; returns the path written."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise PlotError(f"plot file must end in {', '.join(FORMATS)}: {out.name}")
    k = len(labels)
    z = 1.959963984540054
    est = [math.exp(y) for y in yi]
    lows = [lo if lo is not None else math.exp(y - z * s) for (lo, _), y, s in zip(cis or [(None, None)] * k, yi, sei)]
    highs = [hi if hi is not None else math.exp(y + z * s) for (_, hi), y, s in zip(cis or [(None, None)] * k, yi, sei)]
    fe, re_ = result.fixed.ratio, result.random.ratio

    # x range: every CI and both diamonds, padded, never narrower than 0.5..2 around the null.
    lo_all = min(lows + [fe[1], re_[1], 0.5])
    hi_all = max(highs + [fe[2], re_[2], 2.0])
    xmin, xmax = max(lo_all / 1.3, 0.01), min(hi_all * 1.3, 100.0)

    rows = k + 3  # studies, a gap, two diamonds
    fig_h = 1.9 + ROW_INCHES * rows
    fig = plt.figure(figsize=(11.5, fig_h), dpi=110)
    # axis in the middle; text columns left (labels) and right (estimate, weights)
    ax = fig.add_axes((0.36, 1.15 / fig_h, 0.36, 1 - 1.75 / fig_h))
    ax.set_xscale("log")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(rows - 0.4, -1.1)
    ax.axvline(1.0, color="0.35", lw=1, zorder=1)
    ax.axvline(re_[0], color="tab:red", lw=0.8, ls=":", zorder=1)
    w_re = result.random.weights
    wmax = max(w_re)
    fontsize = 9 if k <= 25 else 8
    for i, (e, lo, hi, w) in enumerate(zip(est, lows, highs, w_re)):
        clipped_lo, clipped_hi = max(lo, xmin), min(hi, xmax)
        ax.plot([clipped_lo, clipped_hi], [i, i], color="black", lw=1.1, zorder=2, solid_capstyle="butt")
        if lo < xmin:
            ax.annotate("", (xmin, i), (xmin * 1.25, i), arrowprops=dict(arrowstyle="->", lw=1.1))
        if hi > xmax:
            ax.annotate("", (xmax, i), (xmax / 1.25, i), arrowprops=dict(arrowstyle="->", lw=1.1))
        size = max(3.0, 14 * math.sqrt(w / wmax))  # box area proportional to weight (floor: visible)
        if xmin <= e <= xmax:
            ax.plot(e, i, marker="s", ms=size, color="tab:blue", mec="black", mew=0.5, zorder=3)
    ydia = {"fixed": k + 1, "random": k + 2}
    for name, (e, lo, hi) in (("fixed", fe), ("random", re_)):
        y = ydia[name]
        colour = "0.45" if name == "fixed" else "tab:red"
        ax.add_patch(Polygon([(lo, y), (e, y - 0.32), (hi, y), (e, y + 0.32)], closed=True,
                             facecolor=colour, edgecolor="black", lw=0.6, zorder=3))
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=9)
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(_ticks(xmin, xmax)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(f"{KIND_AXIS.get(kind, 'Ratio')} (log scale)", fontsize=10)

    # text columns, in figure x and data y coordinates
    trans = matplotlib.transforms.blended_transform_factory(fig.transFigure, ax.transData)
    label_chars = 58 if k <= 25 else 64
    hdr = dict(fontsize=fontsize + 0.5, fontweight="bold", transform=trans, va="center")
    ax.text(0.015, -0.9, "Study", ha="left", **hdr)
    ax.text(0.745, -0.9, f"{KIND_AXIS.get(kind, 'Ratio').split()[0][0]}R [95% CI]", ha="left", **hdr)
    ax.text(0.905, -0.9, "W(FE)", ha="right", **hdr)
    ax.text(0.985, -0.9, "W(RE)", ha="right", **hdr)
    cell = dict(fontsize=fontsize, transform=trans, va="center")
    for i, (lab, e, lo, hi, wf, wr) in enumerate(zip(labels, est, lows, highs, result.fixed.weights, w_re)):
        ax.text(0.015, i, _short(lab, label_chars), ha="left", **cell)
        ax.text(0.745, i, f"{_fmt(e)} [{_fmt(lo)}, {_fmt(hi)}]", ha="left", family="monospace", **cell)
        ax.text(0.905, i, f"{wf:.1f}%", ha="right", family="monospace", **cell)
        ax.text(0.985, i, f"{wr:.1f}%", ha="right", family="monospace", **cell)
    method = METHOD_NAMES.get(result.method, result.method)
    for name, (e, lo, hi), y in (("Fixed effect (inverse variance)", fe, ydia["fixed"]),
                                 (f"Random effects ({method})", re_, ydia["random"])):
        ax.text(0.015, y, name, ha="left", fontweight="bold", **cell)
        ax.text(0.745, y, f"{_fmt(e)} [{_fmt(lo)}, {_fmt(hi)}]", ha="left", family="monospace", fontweight="bold",
                **cell)
    fig.text(0.015, 0.35 / fig_h, "Heterogeneity: " + result.heterogeneity()
             + ".  Box area \u221d random-effects weight.", fontsize=fontsize, va="center")
    fig.text(0.36, 0.62 / fig_h, "\u2190 favours experimental", fontsize=8, color="0.3", ha="left", va="center")
    fig.text(0.72, 0.62 / fig_h, "favours reference \u2192", fontsize=8, color="0.3", ha="right", va="center")
    if title:
        fig.text(0.015, 1 - 0.3 / fig_h, title, fontsize=12, fontweight="bold", va="center")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _ticks(xmin: float, xmax: float) -> list[float]:
    """Round ratio ticks inside the range: 1-2-5 per decade, finer when the range is narrow."""
    for steps in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8)):
        ticks = [t for e in range(-3, 4) for m in steps if xmin <= (t := float(f"{m}e{e}")) <= xmax]
        if len(ticks) >= 4:
            return ticks
    return ticks


def _fmt(v: float) -> str:
    """Two decimals, or two significant digits for ratios below 0.01."""
    return f"{v:.2f}" if v >= 0.01 else f"{v:.2g}"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"
