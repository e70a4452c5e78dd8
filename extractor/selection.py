"""What a report covers and what it calls a trial: filters over the report views, labels.

Shared by table.py (evidence tables) and report.py (meta-analysis): both read the SQL
views of views.py through `select_view`, so the CLI shows what a sqlite3 user sees.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from .errors import ExtractorError
from .store import query

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


def select_view(db: sqlite_utils.Database, view: str, f: Filters) -> list[dict[str, Any]]:
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


def article_texts(db: sqlite_utils.Database, pmids: Iterable[str]) -> dict[str, tuple[str, str]]:
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


def registration_ids(value: str | None) -> list[str]:
    try:
        ids = json.loads(value or "[]")
    except ValueError:
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


def fmt_num(v: float | None) -> str:
    return "" if v is None else f"{v:g}"


def truncate(text: str, width: int | None) -> str:
    """Whitespace collapsed, cut to `width` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if width is None or len(text) <= width else text[: width - 1] + "\u2026"
