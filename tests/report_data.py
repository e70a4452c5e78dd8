"""Synthetic trials for report/meta/plot tests: our own made-up abstracts and numbers."""
from __future__ import annotations

import math

from extractor import store
from extractor.models import Article, Measurement, Section, Trial


def hr(value: float, lo: float | None, hi: float | None, *, endpoint: str = "PFS", population: str | None = None,
       comparison: list[str] | None = None, flags: list[str] | None = None, kind: str = "hazard_ratio",
       p: str | None = None, se: float | None = None) -> Measurement:
    text = f"{kind} for {endpoint} {value} (95% CI {lo}-{hi})"
    return Measurement(kind=kind, endpoint=endpoint, population=population, comparison=comparison, value=value,
                       ci_low=lo, ci_high=hi, ci_level=95 if lo is not None else None, p_value=p, evidence=text,
                       start=0, end=len(text), flags=flags or [],
                       log_value=math.log(value), se=se)


def median(arm: str, value: float, endpoint: str = "PFS", population: str | None = None) -> Measurement:
    text = f"median {endpoint} was {value} months with {arm}"
    return Measurement(kind="median", endpoint=endpoint, arm=arm, population=population, value=value, unit="months",
                       evidence=text, start=0, end=len(text))


def rate(arm: str, value: float, endpoint: str = "ORR", timepoint: str | None = None) -> Measurement:
    text = f"{endpoint} {value}% with {arm}"
    return Measurement(kind="rate", endpoint=endpoint, arm=arm, value=value, unit="%", timepoint=timepoint,
                       evidence=text, start=0, end=len(text))


def record(pmid: str, measurements: list[Measurement], *, title: str = "A randomized trial of drug X",
           abstract: str = "Patients were randomized.", journal: str | None = "J Made Up", year: int | None = 2020,
           registration: list[str] | None = None, arms: list[str] | None = None) -> store.Record:
    art = Article(pmid=pmid, title=title, journal=journal, year=year,
                  sections=[Section(label=None, text=abstract, offset=0)], registry_ids=registration or [])
    trial = Trial(registration=registration or [], arms=arms or ["drugx", "placebo"])
    return store.Record(article=art, trial=trial, measurements=measurements)


def make_db(records: list[store.Record], path: str = ":memory:"):
    db = store.open_db(path)
    store.save(db, records)
    return db


def standard_db(path: str = ":memory:"):
    """Four PFS trials (one flagged, one with two cohorts), one OS-only trial, medians and rates."""
    return make_db(path=path, records=[
        record("101", [hr(0.60, 0.45, 0.80, comparison=["drugx", "placebo"], p="<0.001"),
                       median("drugx", 8.4), median("placebo", 5.1), rate("drugx", 42.0), rate("placebo", 20.5)],
               title="Drug X versus placebo in advanced disease (ALPHA): a phase 3 trial", year=2019,
               registration=["NCT00000101"]),
        record("102", [hr(0.75, 0.60, 0.94, comparison=["drugx", "placebo"])],
               abstract="Results were positive. (Funded by Nobody; BETA-2 ClinicalTrials.gov number, NCT00000102.)",
               title="Drug X in second-line therapy", year=2021, registration=["NCT00000102"]),
        record("103", [hr(0.90, 0.70, 1.16, comparison=["drugx", "control"], flags=["value_outside_ci"])],
               journal="Made Up Oncol", year=2018),
        record("104", [hr(0.50, 0.35, 0.71, population="cohort A", comparison=["drugx", "placebo"]),
                       hr(0.80, 0.60, 1.07, population="cohort B", comparison=["drugx", "placebo"])],
               journal="Made Up Oncol", year=2022),
        record("105", [hr(0.85, 0.74, 0.98, endpoint="OS", comparison=["drugx", "placebo"])], year=2017),
    ])
