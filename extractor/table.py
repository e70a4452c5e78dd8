"""Evidence tables: one row per (trial, population, endpoint), as markdown, csv, json or html.

Rows come from the `evidence_table` view; the html page is self-contained (inline CSS and
a small sort script) and every number carries its evidence sentence as a hover title.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from .selection import (KIND_ABBR, Filters, ReportError, article_texts, fmt_num, registration_ids, select_view,
                        trial_label, truncate)

FORMATS: tuple[str, ...] = ("markdown", "csv", "json", "html")


def evidence_rows(db: sqlite_utils.Database, filters: Filters = Filters()) -> list[dict[str, Any]]:
    """One row per (trial, population, endpoint) from the evidence_table view, labelled, cells parsed."""
    rows = select_view(db, "evidence_table", filters)
    arts = article_texts(db, (r["pmid"] for r in rows))
    out = []
    for r in rows:
        title, abstract = arts.get(r["pmid"], (r["title"] or "", ""))
        cells = json.loads(r["cells"] or "[]")
        out.append({
            "label": trial_label(r["pmid"], title, abstract, r["journal"], r["year"]),
            "pmid": r["pmid"], "registration": registration_ids(r["registration"]),
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
    ci = f" ({fmt_num(r['ci_low'])}-{fmt_num(r['ci_high'])})" if r["ci_low"] is not None and r["ci_high"] is not None else ""
    return f"{KIND_ABBR.get(r['ratio_kind'], '')} {fmt_num(r['ratio'])}{ci}"


def _cell_text(c: dict[str, Any]) -> str:
    """Same text as the view's medians/rates columns: 'arm: value unit [at timepoint]'."""
    unit = c.get("unit") or ""
    sep = "" if unit == "%" or not unit else " "
    at = f" at {c['timepoint']}" if c.get("timepoint") else ""
    return f"{c.get('arm') or 'all'}: {fmt_num(c['value'])}{sep}{unit}{at}"


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


def _abbreviate_units(text: str) -> str:
    return re.sub(r" (month|week|day|year)s?\b", lambda m: " " + {"month": "mo", "week": "wk", "day": "d",
                                                                    "year": "y"}[m.group(1)], text)


def _fit(column: str, text: str, width: int) -> str:
    """Cut a markdown cell to its column width; a trial label keeps its year ('Invented Jour… 2022')."""
    m = re.match(r"^(.*\S)( \d{4})$", text) if column == "Trial" else None
    if m and len(text) > width and width - len(m.group(2)) >= 4:
        return truncate(m.group(1), width - len(m.group(2))) + m.group(2)
    return truncate(text, width)


def render_table(rows: Sequence[dict[str, Any]], fmt: str = "markdown", width: int | None = None) -> str:
    """The evidence table as markdown (within `width` columns if given), csv, json or one html page."""
    if fmt == "markdown":
        return _markdown(rows, width)
    if fmt == "csv":
        return _csv(rows)
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        return _html(rows)
    raise ReportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


# To fit a narrow terminal: empty columns go, then these in this order, then cells shrink.
_DROP_ORDER = ("Registry", "Arms", "PMID", "Population", "p")
_FLOOR = {"Trial": 12, "Ratio (CI)": 19, "Median": 12, "Rates": 12}


def _layout(texts: Sequence[dict[str, str]], width: int | None) -> tuple[list[str], dict[str, int], list[str]]:
    """Columns shown, their widths, and columns left out: as wide as the longest cell (capped), then
    to fit `width` the least needed columns are dropped and the column with most room shrinks first."""
    cols = [c for c in TABLE_COLUMNS if c in ("Trial", "Endpoint") or any(t[c] for t in texts)]
    floor = {c: max(len(c), _FLOOR.get(c, 4)) for c in TABLE_COLUMNS}
    dropped = []
    for c in _DROP_ORDER:
        if width and c in cols and 3 * len(cols) + 1 + sum(floor[k] for k in cols) > width:
            cols.remove(c)
            dropped.append(c)
    w = {c: min(max(len(c), *(len(t[c]) for t in texts)), _MD_WIDTH.get(c, 10**6)) for c in cols}
    while width and 3 * len(w) + 1 + sum(w.values()) > width:
        c = max(w, key=lambda k: w[k] - floor[k])
        if w[c] <= floor[c]:
            break
        w[c] -= 1
    return cols, w, dropped


def _markdown(rows: Sequence[dict[str, Any]], width: int | None = None) -> str:
    if not rows:
        return "(no rows)\n"
    texts = [{k: " ".join((_abbreviate_units(v) if k == "Median" else v).split()).replace("|", "\\|")
              for k, v in _display(r).items()} for r in rows]
    cols, widths, dropped = _layout(texts, width)
    shown = [{c: _fit(c, t[c], widths[c]) for c in cols} for t in texts]
    lines = ["| " + " | ".join(c.ljust(widths[c]) for c in cols) + " |",
             "|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|"]
    lines += ["| " + " | ".join(s[c].ljust(widths[c]) for c in cols) + " |" for s in shown]
    flagged = sum(r["flagged"] for r in rows)
    tail = f"\n{len(rows)} row{'' if len(rows) == 1 else 's'}" + (f"; {flagged} with consistency flags"
                                                                    if flagged else "")
    if dropped:
        tail += f"; not shown to fit {width} columns: {', '.join(dropped)} (--format csv has all)"
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
