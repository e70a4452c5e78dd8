"""From database to decision: evidence tables and the studies a meta-analysis pools.

Everything here reads the SQL views `evidence_table` and `meta_input` (extractor/views.py),
so what the CLI shows is what a sqlite3 or pandas user sees. The pooling maths is in
meta.py, the forest plot in plot.py; this module selects, labels and formats.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from .errors import ExtractorError
from .meta import METHOD_NAMES, MetaResult, format_p, pool
from .store import query

FORMATS: tuple[str, ...] = ("markdown", "csv", "json", "html")
KIND_ALIASES = {"hr": "hazard_ratio", "or": "odds_ratio", "rr": "risk_ratio",
                "median": "median", "rate": "rate", "hazard_ratio": "hazard_ratio",
                "odds_ratio": "odds_ratio", "risk_ratio": "risk_ratio"}
KIND_ABBR = {"hazard_ratio": "HR", "odds_ratio": "OR", "risk_ratio": "RR"}
KIND_NAME = {"hazard_ratio": "hazard ratio", "odds_ratio": "odds ratio", "risk_ratio": "risk ratio"}

# Upper-case words of titles that name diseases, genes, regimens or methods, not trials.
NOT_ACRONYMS = frozenset("""
NSCLC SCLC EGFR BRAF KRAS NRAS ROS1 COPD ARDS AIDS COVID MERS SARS HFREF HFPEF STEMI NSTEMI
CABG ECOG RECIST FOLFOX FOLFIRI FOLFIRINOX FOLFOXIRI XELOX XELIRI CAPOX CHOP RCHOP ABVD
BEACOPP MRSA NASH NAFLD GERD ADHD PTSD CRPC MCRPC HNSCC ESCC GIST AJCC TNBC DLBCL PARP
VEGF VEGFR PDGF IMRT SBRT SABR TACE HIPEC MACE HbA1c EORTC NCIC SWOG RTOG NRG GOG JCOG
HER2 ALK1 MGMT BCMA FLT3 IDH1 IDH2 CD20 MMR MSI MSIH PDL1 PD1 CTLA4 UICC TNM FIGO ESMO
ASCO NCCN GRADE CONSORT PRISMA SF36 EQ5D HADS BMI FEV1 NYHA LVEF IQR MRI PET CT DNA RNA
PD-L1 PD-1 CTLA CTLA-4 HIV HIV-1 HPV HPV16 HPV18 FGFR FGFR2 FGFR3 CDK CDK4 CDK6 NTRK PIK3CA BCRABL BCR-ABL
JAK JAK2 MYD88 NPM1 ESR1 AKT1 BRCA BRCA1 BRCA2 HLA HLA-B27 COVID-19 SARS-COV-2 TNF IGF1 EGFR-TKI
""".split())
_ROMAN = re.compile(r"^[IVX]+[ABC]?$")
_ACRO = r"[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*(?: \d{2,6})?"
_REGISTRY_ACRONYM = re.compile(
    rf"(?:^|[;(.]\s*)({_ACRO})\s+(?:ClinicalTrials\.gov|EudraCT|ISRCTN|Current Controlled Trials"
    r"|Australian New Zealand Clinical Trials|ANZCTR|UMIN|ChiCTR|Netherlands Trial Register)")
_TITLE_WORD = re.compile(r"(?<![\w-])([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*(?: \d{3,6})?)(?![\w-])")
_TITLE_CONTEXT = re.compile(r"^\s*{w}\s*:|\(\s*(?:the\s+)?{w}\b|\bthe\s+{w}\b|\b{w}\s+(?:trial|study|randomi[sz]ed)",
                            re.IGNORECASE)


class ReportError(ExtractorError):
    """A report that cannot be made from these inputs (unknown format, nothing selected)."""


@dataclass(frozen=True)
class Filters:
    """Which rows a report covers; `where` is SQL over the view's columns, `search` FTS5 syntax."""

    endpoint: str | None = None
    kind: str | None = None
    pmids: tuple[str, ...] = ()
    search: str | None = None
    where: str | None = None


def normalise_kind(kind: str | None) -> str | None:
    if kind is None:
        return None
    k = KIND_ALIASES.get(kind.strip().lower())
    if k is None:
        raise ReportError(f"unknown kind {kind!r}: use HR, OR, RR, median or rate")
    return k


def _select(db: sqlite_utils.Database, view: str, f: Filters) -> list[dict[str, Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if f.endpoint:
        clauses.append("upper(endpoint) = upper(?)")
        params.append(f.endpoint.strip())
    kind = normalise_kind(f.kind)
    if kind:
        clauses.append("kind = ?" if view == "meta_input" else "(',' || kinds || ',') LIKE ?")
        params.append(kind if view == "meta_input" else f"%,{kind},%")
    if f.pmids:
        clauses.append(f"pmid IN ({', '.join('?' * len(f.pmids))})")
        params.extend(f.pmids)
    if f.search:
        clauses.append("pmid IN (SELECT a.pmid FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid"
                       " WHERE articles_fts MATCH ?)")
        params.append(fts_query(f.search))
    if f.where:
        clauses.append(f"({f.where})")
    sql = f"SELECT * FROM {view}" + (" WHERE " + " AND ".join(clauses) if clauses else "")
    cols, rows = query(db, sql, params)
    return [dict(zip(cols, r)) for r in rows]


_FTS_BARE = re.compile(r'"[^"]*"|[^\s()"]+')


def fts_query(text: str) -> str:
    """FTS5 query with words like `second-line` or `PD-L1` quoted, so they search as phrases, not syntax."""
    def fix(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok.startswith('"') or re.fullmatch(r"[\w*]+|[\w]+:[\w*]+", tok):
            return tok
        return '"' + tok.replace('"', '') + '"'
    return _FTS_BARE.sub(fix, text)


def _articles(db: sqlite_utils.Database, pmids: Iterable[str]) -> dict[str, tuple[str, str]]:
    pmids = sorted(set(pmids))
    out: dict[str, tuple[str, str]] = {}
    for i in range(0, len(pmids), 500):
        chunk = pmids[i:i + 500]
        _, rows = query(db, f"SELECT pmid, title, abstract FROM articles WHERE pmid IN ({', '.join('?' * len(chunk))})",
                        chunk)
        out.update({p: (t or "", a or "") for p, t, a in rows})
    return out


def trial_acronym(title: str, abstract: str = "") -> str | None:
    """The trial's acronym: named before a registry number in the abstract, else an upper-case title word."""
    m = _REGISTRY_ACRONYM.search(abstract)
    if m and _is_acronym(m.group(1), min_upper=2):
        return m.group(1)
    letters = [c for c in title if c.isalpha()]
    if not letters or sum(c.isupper() for c in letters) > 0.6 * len(letters):
        return None  # an all-capitals title has no distinguishable acronym
    words = [w for w in _TITLE_WORD.findall(title) if _is_acronym(w)]
    for w in words:
        pat = _TITLE_CONTEXT.pattern.replace("{w}", re.escape(w))
        if re.search(pat, title, re.IGNORECASE):
            return w
    return words[0] if words else None


def _is_acronym(word: str, min_upper: int = 3) -> bool:
    head = word.split(" ")[0]
    core = re.sub(r"[^A-Za-z]", "", head)
    long_enough = len(core) >= 4 or (len(core) == 3 and any(c.isdigit() for c in head))  # ZEN-1, AURA3
    return (long_enough and sum(c.isupper() for c in core) >= min_upper and not _ROMAN.match(head)
            and core.upper() not in NOT_ACRONYMS and head.upper() not in NOT_ACRONYMS)


def trial_label(pmid: str, title: str, abstract: str, journal: str | None, year: int | None) -> str:
    """Acronym and year when the trial has an acronym, else journal and year (PMID when neither)."""
    acro = trial_acronym(title, abstract)
    name = acro or journal or f"PMID {pmid}"
    return f"{name} {year}" if year else name


def _registration(value: str | None) -> list[str]:
    try:
        ids = json.loads(value or "[]")
    except ValueError:
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:g}"


# --- evidence table ----------------------------------------------------------------------

def evidence_rows(db: sqlite_utils.Database, filters: Filters = Filters()) -> list[dict[str, Any]]:
    """One row per (trial, population, endpoint) from the evidence_table view, labelled, cells parsed."""
    rows = _select(db, "evidence_table", filters)
    arts = _articles(db, (r["pmid"] for r in rows))
    out = []
    for r in rows:
        title, abstract = arts.get(r["pmid"], (r["title"] or "", ""))
        cells = json.loads(r["cells"] or "[]")
        out.append({
            "label": trial_label(r["pmid"], title, abstract, r["journal"], r["year"]),
            "pmid": r["pmid"], "registration": _registration(r["registration"]),
            "year": r["year"], "journal": r["journal"],
            "population": r["population"], "endpoint": r["endpoint"],
            "arms": [str(a) for a in json.loads(r["arms"] or "[]")],
            "medians": r["medians"], "ratio_kind": r["ratio_kind"], "ratio": r["ratio"],
            "ci_low": r["ci_low"], "ci_high": r["ci_high"], "ci_level": r["ci_level"],
            "p_value": r["p_value"],
            "comparison": json.loads(r["comparison"]) if r["comparison"] else None,
            "ratio_evidence": r["ratio_evidence"], "rates": r["rates"], "flagged": bool(r["flagged"]),
            "cells": cells,
        })
    return out


def _ratio_text(r: dict[str, Any]) -> str:
    if r["ratio"] is None:
        return ""
    ci = f" ({_num(r['ci_low'])}-{_num(r['ci_high'])})" if r["ci_low"] is not None and r["ci_high"] is not None else ""
    return f"{KIND_ABBR.get(r['ratio_kind'], '')} {_num(r['ratio'])}{ci}"


def _cell_text(c: dict[str, Any]) -> str:
    """Same text as the view's medians/rates columns: 'arm: value unit [at timepoint]'."""
    unit = c.get("unit") or ""
    sep = "" if unit == "%" or not unit else " "
    at = f" at {c['timepoint']}" if c.get("timepoint") else ""
    return f"{c.get('arm') or 'all'}: {_num(c['value'])}{sep}{unit}{at}"


TABLE_COLUMNS = ("Trial", "PMID", "Registry", "Population", "Endpoint", "Arms", "Median", "Ratio (CI)", "p",
                 "Rates")
# Widths that keep a markdown row within ~200 columns; cells longer than this are cut with "…".
_MD_WIDTH = {"Trial": 22, "Registry": 14, "Population": 18, "Endpoint": 16, "Arms": 24, "Median": 40,
             "Ratio (CI)": 24, "p": 8, "Rates": 36}


def _display(r: dict[str, Any]) -> dict[str, str]:
    return {
        "Trial": r["label"], "PMID": r["pmid"], "Registry": ", ".join(r["registration"]),
        "Population": r["population"] or "", "Endpoint": r["endpoint"], "Arms": " vs ".join(r["arms"]),
        "Median": r["medians"] or "", "Ratio (CI)": _ratio_text(r), "p": r["p_value"] or "",
        "Rates": r["rates"] or "",
    }


def _truncate(text: str, width: int | None) -> str:
    text = " ".join(text.split())
    return text if width is None or len(text) <= width else text[: width - 1] + "\u2026"


def _abbreviate_units(text: str) -> str:
    return re.sub(r" (month|week|day|year)s?\b", lambda m: " " + {"month": "mo", "week": "wk", "day": "d",
                                                                    "year": "y"}[m.group(1)], text)


def _fit(column: str, text: str) -> str:
    """Cut a markdown cell to its column width; a trial label keeps its year ('Invented Jour… 2022')."""
    width = _MD_WIDTH.get(column)
    m = re.match(r"^(.*\S)( \d{4})$", text) if column == "Trial" else None
    if width and m and len(text) > width:
        return _truncate(m.group(1), width - len(m.group(2))) + m.group(2)
    return _truncate(text, width)


def render_table(rows: Sequence[dict[str, Any]], fmt: str = "markdown") -> str:
    """The evidence table as markdown (terminal width), csv, json or one self-contained html page."""
    if fmt == "markdown":
        return _markdown(rows)
    if fmt == "csv":
        return _csv(rows)
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        return _html(rows)
    raise ReportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


def _markdown(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)\n"
    shown = [{k: _fit(k, _abbreviate_units(v) if k == "Median" else v).replace("|", "\\|")
              for k, v in _display(r).items()} for r in rows]
    widths = {c: max(len(c), *(len(s[c]) for s in shown)) for c in TABLE_COLUMNS}
    lines = ["| " + " | ".join(c.ljust(widths[c]) for c in TABLE_COLUMNS) + " |",
             "|" + "|".join("-" * (widths[c] + 2) for c in TABLE_COLUMNS) + "|"]
    lines += ["| " + " | ".join(s[c].ljust(widths[c]) for c in TABLE_COLUMNS) + " |" for s in shown]
    flagged = sum(r["flagged"] for r in rows)
    tail = f"\n{len(rows)} rows" + (f"; {flagged} with consistency flags" if flagged else "")
    return "\n".join(lines) + tail + "\n"


CSV_COLUMNS = ("label", "pmid", "registration", "year", "journal", "population", "endpoint", "arms", "medians",
               "ratio_kind", "ratio", "ci_low", "ci_high", "ci_level", "p_value", "comparison", "rates", "flagged")


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        out = []
        for c in CSV_COLUMNS:
            v = r[c]
            if c in ("registration", "arms"):
                v = "; ".join(v)
            elif c == "comparison":
                v = " vs ".join(v) if v else ""
            elif c == "flagged":
                v = int(v)
            out.append("" if v is None else v)
        w.writerow(out)
    return buf.getvalue()


_SORT_JS = """
document.querySelectorAll('th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
    var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    function key(r) { var c = r.cells[col], s = c.dataset.sort !== undefined ? c.dataset.sort : c.textContent;
                      var n = parseFloat(s); return isNaN(n) || /[a-z]/i.test(s) && c.dataset.sort === undefined ? s.toLowerCase() : n; }
    rows.sort(function (a, b) { var x = key(a), y = key(b);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return x < y ? -dir : x > y ? dir : 0; });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""
_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f2f2f2;cursor:pointer;user-select:none}th:hover{background:#e4e4e4}
span.ev{border-bottom:1px dotted #888;cursor:help}tr.flagged td{background:#fff6e0}
td[data-sort]{white-space:nowrap}caption{text-align:left;margin-bottom:.5em;color:#555}"""


def _ev(text: str, evidence: str | None, flags: Sequence[str] = ()) -> str:
    title = (evidence or "") + (f"  [flags: {', '.join(flags)}]" if flags else "")
    return f'<span class="ev" title="{html.escape(title, quote=True)}">{html.escape(text)}</span>'


def _p_sort(p: str | None) -> str:
    """A number to sort p-values by: '<0.001' just below 0.001, '.24' as 0.24, none last."""
    m = re.search(r"\d*\.?\d+(?:[eE]-?\d+)?", p or "")
    if not m:
        return "2"
    v = float(m.group(0))
    return f"{v * (0.999 if '<' in (p or '') else 1):g}"


def _html(rows: Sequence[dict[str, Any]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in TABLE_COLUMNS)
    body = []
    for r in rows:
        d = _display(r)
        cells = r["cells"]
        medians = "; ".join(_ev(_cell_text(c), c["evidence"], c.get("flags") or ()) for c in cells if c["kind"] == "median")
        rates = "; ".join(_ev(_cell_text(c), c["evidence"], c.get("flags") or ()) for c in cells if c["kind"] == "rate")
        ratio = _ev(d["Ratio (CI)"], r["ratio_evidence"]) if r["ratio"] is not None else ""
        pval = _ev(d["p"], r["ratio_evidence"]) if d["p"] else ""
        pmid = f'<a href="https://pubmed.ncbi.nlm.nih.gov/{e(r["pmid"])}/">{e(r["pmid"])}</a>'
        sort = {1: r["pmid"], 7: "" if r["ratio"] is None else f"{r['ratio']:g}", 8: _p_sort(r["p_value"])}
        tds = [e(d["Trial"]), pmid, e(d["Registry"]), e(d["Population"]), e(d["Endpoint"]), e(d["Arms"]),
               medians, ratio, pval, rates]
        tr = [f'<td data-sort="{e(sort[i])}">{t}</td>' if i in sort else f"<td>{t}</td>" for i, t in enumerate(tds)]
        cls = ' class="flagged"' if r["flagged"] else ""
        body.append(f"<tr{cls}>{''.join(tr)}</tr>")
    caption = (f"{len(rows)} rows. Hover a number for the sentence it was read from; click a column to sort."
               " Rows shaded have consistency flags.")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Evidence table</title>"
            f"<style>{_CSS}</style></head><body>\n<table><caption>{e(caption)}</caption>\n"
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) +
            f"\n</tbody></table>\n<script>{_SORT_JS}</script>\n</body></html>\n")


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
    rows = _select(db, "meta_input", filters)
    arts = _articles(db, (r["pmid"] for r in rows))
    out = []
    for r in rows:
        title, abstract = arts.get(r["pmid"], (r["title"] or "", ""))
        reg = _registration(r["registration"])
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
        w = max([len("Study")] + [len(_truncate(s.label, 60)) for s in g.studies] + [len("Random effects (PM)")])
        out.append(f"  {'Study'.ljust(w)}  {abbr:>6}  {'95% CI':<13}  {'W(FE)':>6}  {'W(RE)':>6}")
        for s, wf, wr in zip(g.studies, r.fixed.weights, r.random.weights):
            lo, hi = (s.ci_low, s.ci_high) if s.ci_low is not None else (None, None)
            ci = f"{_num(lo)}-{_num(hi)}" if lo is not None else ""
            out.append(f"  {_truncate(s.label, 60).ljust(w)}  {s.value:>6.3g}  {ci:<13}  {wf:5.1f}%  {wr:5.1f}%")
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
                        repr(s.sei * s.sei), s.value, _num(s.ci_low), _num(s.ci_high), s.pmid,
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


__all__ = ["FORMATS", "Filters", "MetaGroup", "MetaReport", "ReportError", "Study", "demo_summary",
           "evidence_rows", "render_meta", "render_table", "run_meta", "select_studies", "trial_acronym",
           "trial_label", "write_forest_plots", "write_meta_csv", "METHOD_NAMES"]
