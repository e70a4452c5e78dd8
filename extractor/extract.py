"""Article -> (Trial, [Measurement]): every outcome number of an abstract, with its evidence span.

First version: a small internal regex for hazard ratios (with CI and p) and medians with a
unit, so the ingest/export pipeline has a working contract. Attribution comes next.
"""
from __future__ import annotations

import re

from .models import Article, Measurement, Trial

_NUM = r"(\d+(?:[.\u00b7]\d+)?)"
_HR = re.compile(
    r"\b(?:hazard ratio|HR)\b[^0-9;()]{0,40}?[,:=\s]\s*" + _NUM
    + r"(?:[^0-9]{0,30}?(\d{2}(?:\.\d)?)\s?%\s?(?:confidence interval|CI)[^0-9]{0,15}?" + _NUM
    + r"\s*(?:to|-|\u2013|,)\s*" + _NUM + r")?"
    + r"(?:[^0-9]{0,12}?\bP\s*([<>=\u2264]\s*0?[.\u00b7]\d+))?",
    re.IGNORECASE,
)
_MEDIAN = re.compile(r"\b" + _NUM + r"\s*(months|weeks|days|years)\b", re.IGNORECASE)
_NCT = re.compile(r"\bNCT\d{8}\b")


def _f(text: str | None) -> float | None:
    return None if text is None else float(text.replace("\u00b7", "."))


def _sentence_span(text: str, start: int, end: int) -> tuple[int, int]:
    s = max(text.rfind(". ", 0, start) + 2, text.rfind("\n", 0, start) + 1, 0)
    e = text.find(". ", end)
    e = len(text) if e < 0 else e + 1
    nl = text.find("\n", end)
    if 0 <= nl < e:
        e = nl
    return s, e


def extract(article: Article) -> tuple[Trial, list[Measurement]]:
    """The trial facts and measurements of one article (provisional regex version)."""
    text = article.abstract
    out: list[Measurement] = []
    for m in _HR.finditer(text):
        s, e = _sentence_span(text, m.start(), m.end())
        sec = article.section_at(m.start())
        p = m.group(5)
        out.append(Measurement(
            kind="hazard_ratio", endpoint="other:unknown", value=_f(m.group(1)),
            ci_low=_f(m.group(3)), ci_high=_f(m.group(4)), ci_level=_f(m.group(2)),
            p_value=re.sub(r"[\s=]", "", p).replace("\u00b7", ".") if p else None,
            evidence=text[s:e], section=sec.label if sec else None, start=s, end=e))
    for m in _MEDIAN.finditer(text):
        s, e = _sentence_span(text, m.start(), m.end())
        if "median" not in text[s:e].lower():
            continue
        sec = article.section_at(m.start())
        out.append(Measurement(
            kind="median", endpoint="other:unknown", value=_f(m.group(1)), unit=m.group(2).lower(),
            evidence=text[s:e], section=sec.label if sec else None, start=s, end=e))
    reg = sorted(set(_NCT.findall(text + " " + " ".join(article.registry_ids))))
    return Trial(registration=reg), out
