"""From database to decision: the studies a meta-analysis pools, its text, plots, CSV, demo.

Studies come from the `meta_input` view (extractor/views.py); the pooling maths is in
meta.py, the forest plot in plot.py, evidence tables in table.py and filters/labels in
selection.py. This module is also the one import point of the report API (`__all__`).
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import sqlite_utils

from .meta import METHOD_NAMES, MetaResult, format_p, pool
from .selection import (KIND_ABBR, KIND_NAME, Filters, ReportError, article_texts, fmt_num, normalise_kind,
                        registration_ids, select_view, trial_acronym, trial_label, truncate)
from .store import query
from .table import FORMATS, evidence_rows, render_table

# --- meta-analysis -----------------------------------------------------------------------

@dataclass(frozen=True)
class Study:
    """One ratio chosen for pooling, with what it came from."""

    label: str
    pmid: str
    trial: str  # first registry id, else the PMID: two articles of one trial share it
    population: str | None
    kind: str
    endpoint: str
    value: float
    ci_low: float | None
    ci_high: float | None
    yi: float | None
    sei: float | None
    flags: tuple[str, ...]
    evidence: str
    year: int | None
    registration: tuple[str, ...] = ()


@dataclass
class MetaGroup:
    population: str | None
    studies: list[Study]
    result: MetaResult


@dataclass
class MetaReport:
    endpoint: str
    kind: str
    method: str
    groups: list[MetaGroup] = field(default_factory=list)
    skipped: list[tuple[Study, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _studies(db: sqlite_utils.Database, filters: Filters) -> list[Study]:
    rows = select_view(db, "meta_input", filters)
    arts = article_texts(db, (r["pmid"] for r in rows))
    out = []
    for r in rows:
        title, abstract = arts.get(r["pmid"], (r["title"] or "", ""))
        reg = registration_ids(r["registration"])
        base = trial_label(r["pmid"], title, abstract, r["journal"], r["year"])
        label = f"{base} ({r['pmid']})" + (f": {r['population']}" if r["population"] else "")
        out.append(Study(label=label, pmid=r["pmid"], trial=reg[0] if reg else r["pmid"],
                         population=r["population"], kind=r["kind"], endpoint=r["endpoint"],
                         value=r["value"], ci_low=r["ci_low"], ci_high=r["ci_high"], yi=r["yi"], sei=r["sei"],
                         flags=tuple(json.loads(r["flags"] or "[]")), evidence=r["evidence"], year=r["year"],
                         registration=tuple(reg)))
    return out


def _pop_key(p: str | None) -> str:
    return " ".join((p or "").lower().split())


def select_studies(studies: Sequence[Study], by_population: bool = False,
                   include_flagged: bool = False) -> tuple[dict[str | None, list[Study]], list[tuple[Study, str]]]:
    """Group poolable studies (by population if asked); everything left out comes back with a reason.

    Per (endpoint, kind): no SE -> skipped; flagged -> skipped unless include_flagged; two
    articles of one trial (same registry id) -> the most recent kept; without by_population a
    trial with an overall result contributes only that, else each of its cohorts.
    """
    skipped: list[tuple[Study, str]] = []
    usable = []
    for s in studies:
        if s.yi is None or s.sei is None or s.sei <= 0:
            skipped.append((s, "no usable CI to derive a standard error"))
        elif s.flags and not include_flagged:
            skipped.append((s, f"flagged: {', '.join(s.flags)} (use --include-flagged)"))
        else:
            usable.append(s)
    latest: dict[tuple, Study] = {}
    for s in sorted(usable, key=lambda s: (s.year or 0, s.pmid), reverse=True):
        key = (s.endpoint, s.kind, s.trial, _pop_key(s.population))
        if key in latest:
            skipped.append((s, f"same trial as PMID {latest[key].pmid} (the more recent report is used)"))
        else:
            latest[key] = s
    kept = sorted(latest.values(), key=lambda s: (s.year or 0, s.pmid, _pop_key(s.population)))
    groups: dict[str | None, list[Study]] = defaultdict(list)
    if by_population:
        names: dict[str, str | None] = {}
        for s in kept:
            names.setdefault(_pop_key(s.population), s.population)
            groups[names[_pop_key(s.population)]].append(s)
    else:
        overall = {(s.endpoint, s.kind, s.trial) for s in kept if s.population is None}
        for s in kept:
            if s.population is not None and (s.endpoint, s.kind, s.trial) in overall:
                skipped.append((s, "subgroup of a trial whose overall result is pooled (use --by population)"))
            else:
                groups[None].append(s)
    return dict(groups), skipped


def run_meta(db: sqlite_utils.Database, endpoint: str, filters: Filters = Filters(), by_population: bool = False,
             method: str = "dl", include_flagged: bool = False) -> MetaReport:
    """Pool one ratio kind for `endpoint` across the selected trials (one result per population if asked)."""
    if not endpoint:
        raise ReportError("meta needs an endpoint, e.g. --endpoint PFS")
    f = Filters(endpoint=endpoint, kind=filters.kind, pmids=filters.pmids, search=filters.search, where=filters.where)
    studies = _studies(db, f)
    if not studies:
        raise ReportError(f"no hazard, odds or risk ratios for endpoint {endpoint!r} in the selection")
    kinds = Counter(s.kind for s in studies)
    kind = normalise_kind(filters.kind) or max(kinds, key=lambda k: (kinds[k], k == "hazard_ratio"))
    report = MetaReport(endpoint=studies[0].endpoint, kind=kind, method=method)
    others = {k: n for k, n in kinds.items() if k != kind}
    if others:
        report.notes.append("not pooled with these: " + ", ".join(f"{n} {KIND_NAME[k]}(s)" for k, n in others.items())
                            + " (choose with --kind)")
    groups, report.skipped = select_studies([s for s in studies if s.kind == kind], by_population, include_flagged)
    for pop, members in sorted(groups.items(), key=lambda kv: (kv[0] is not None, _pop_key(kv[0]))):
        res = pool([s.yi for s in members], [s.sei for s in members], method)  # type: ignore[misc]
        report.groups.append(MetaGroup(population=pop, studies=members, result=res))
    return report


def _p_is(p: float | None) -> str:
    text = format_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def render_meta(report: MetaReport) -> str:
    """The pooled results as plain text: per-study rows, fixed and random effects, heterogeneity, skips."""
    abbr = KIND_ABBR[report.kind]
    out = []
    for g in report.groups:
        r = g.result
        title = f"{KIND_NAME[report.kind].capitalize()}s for {report.endpoint}"
        if g.population is not None or len(report.groups) > 1:
            title += f", population: {g.population or 'overall / not stated'}"
        out.append(f"{title} ({r.k} {'study' if r.k == 1 else 'studies'})")
        w = max([len("Study")] + [len(truncate(s.label, 60)) for s in g.studies] + [len("Random effects (PM)")])
        out.append(f"  {'Study'.ljust(w)}  {abbr:>6}  {'95% CI':<13}  {'W(FE)':>6}  {'W(RE)':>6}")
        for s, wf, wr in zip(g.studies, r.fixed.weights, r.random.weights):
            lo, hi = (s.ci_low, s.ci_high) if s.ci_low is not None else (None, None)
            ci = f"{fmt_num(lo)}-{fmt_num(hi)}" if lo is not None else ""
            out.append(f"  {truncate(s.label, 60).ljust(w)}  {s.value:>6.3g}  {ci:<13}  {wf:5.1f}%  {wr:5.1f}%")
        for name, p in (("Fixed effect (IV)", r.fixed), (f"Random effects ({r.method.upper()})", r.random)):
            est, lo, hi = p.ratio
            out.append(f"  {name.ljust(w)}  {est:>6.3f}  {f'{lo:.3f}-{hi:.3f}':<13}  z = {p.z:.2f}, {_p_is(p.p)}")
        out.append(f"  Heterogeneity: {r.heterogeneity()}")
        if not r.converged:
            out.append("  warning: the tau\u00b2 iteration did not converge")
        out.append("")
    if not report.groups:
        out.append(f"Nothing to pool for {report.endpoint}: every record was skipped.")
    if report.skipped:
        out.append(f"Skipped ({len(report.skipped)}):")
        out += [f"  - {s.label} {KIND_ABBR[s.kind]} {s.value:g}: {why}" for s, why in report.skipped]
    out += [f"Note: {n}" for n in report.notes]
    return "\n".join(out).rstrip() + "\n"


def write_forest_plots(report: MetaReport, path: str | Path) -> list[Path]:
    """One forest plot per pooled group: `path` itself for one group, `<stem>-<population><suffix>` for several."""
    from .plot import forest_plot  # matplotlib only when a plot is drawn

    path = Path(path)
    written = []
    for g in report.groups:
        target = path
        title = f"{report.endpoint}: {KIND_NAME[report.kind]}s"
        if len(report.groups) > 1:
            slug = re.sub(r"[^a-z0-9]+", "-", (g.population or "overall").lower()).strip("-")[:40] or "population"
            target = path.with_name(f"{path.stem}-{slug}{path.suffix}")
            title += f" ({g.population or 'overall / not stated'})"
        written.append(forest_plot(g, report.kind, target, title=title))
    return written


# --- export --format meta ----------------------------------------------------------------

META_CSV_COLUMNS = ("study", "measure", "endpoint", "population", "yi", "sei", "vi", "value", "ci_low", "ci_high",
                    "pmid", "registration", "flags")


def write_meta_csv(db: sqlite_utils.Database, out: str | Path | IO[str], *, endpoint: str | None = None,
                   kind: str | None = None, pmids: Sequence[str] = (), search: str | None = None,
                   where: str | None = None, by_population: bool = False, include_flagged: bool = False) -> int:
    """CSV of the studies `meta` would pool (yi = log ratio, sei, vi), ready for metafor/meta/statsmodels.

    One row per (trial, population, endpoint, measure); subset by endpoint and measure before pooling.
    Returns the number of rows written.
    """
    f = Filters(endpoint=endpoint, kind=kind, pmids=tuple(pmids), search=search, where=where)
    studies = _studies(db, f)
    groups, _ = select_studies(studies, by_population=by_population, include_flagged=include_flagged)
    chosen = sorted((s for g in groups.values() for s in g), key=lambda s: (s.endpoint, s.kind, s.year or 0, s.pmid))
    own = not hasattr(out, "write")
    fh: IO[str] = open(out, "w", newline="", encoding="utf-8") if own else out  # type: ignore[arg-type]
    try:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(META_CSV_COLUMNS)
        for s in chosen:
            w.writerow([s.label, KIND_ABBR[s.kind], s.endpoint, s.population or "", repr(s.yi), repr(s.sei),
                        repr(s.sei * s.sei), s.value, fmt_num(s.ci_low), fmt_num(s.ci_high), s.pmid,
                        "; ".join(s.registration), "; ".join(s.flags)])
    finally:
        if own:
            fh.close()
    return len(chosen)


# --- demo --------------------------------------------------------------------------------

def demo_summary(db: sqlite_utils.Database, out_dir: str | Path) -> str:
    """Evidence table, pooled ratio for PFS (or the endpoint with most ratios) and forest.png in out_dir."""
    parts = [render_table(evidence_rows(db), "markdown")]
    _, rows = query(db, "SELECT endpoint, count(*) FROM meta_input WHERE sei IS NOT NULL AND NOT flagged"
                        " GROUP BY endpoint ORDER BY count(*) DESC, endpoint")
    counts = dict(rows)
    if not counts:
        return "\n".join(parts) + "\nNo ratio with a confidence interval to pool.\n"
    endpoint = "PFS" if counts.get("PFS") else rows[0][0]
    report = run_meta(db, endpoint)
    parts.append(render_meta(report))
    if report.groups:
        path = write_forest_plots(report, Path(out_dir) / "forest.png")[0]
        parts.append(f"Forest plot: {path}\n")
    return "\n".join(parts)


__all__ = ["FORMATS", "Filters", "METHOD_NAMES", "MetaGroup", "MetaReport", "ReportError", "Study", "demo_summary",
           "evidence_rows", "render_meta", "render_table", "run_meta", "select_studies", "trial_acronym",
           "trial_label", "write_forest_plots", "write_meta_csv"]
