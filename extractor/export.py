"""Stored rows -> export records that score.py reads as they are (SCHEMA.md field names).

`ExportMeasurement` is the exported line of one measurement: `pmid` plus exactly the
SCHEMA.md measurement fields, then provenance (section, span, log_value, se, flags,
extractor version). `ExportTrial` is the one line per article with kind "trial".
schemas/measurement.schema.json is generated from ExportMeasurement (extractor.schemas).
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import IO, Literal

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field

from .models import Kind

# The SCHEMA.md measurement fields, in its order (CSV columns after pmid).
SCHEMA_FIELDS: tuple[str, ...] = (
    "kind", "endpoint", "arm", "comparison", "population", "value", "unit", "ci_low", "ci_high",
    "ci_level", "p_value", "timepoint", "n", "n_total", "evidence",
)
PROVENANCE_FIELDS: tuple[str, ...] = ("section", "start", "end", "log_value", "se", "flags",
                                      "extractor_version")
TRIAL_FIELDS: tuple[str, ...] = ("registration", "phase", "n_randomized", "arms")


class ExportMeasurement(BaseModel):
    """One exported measurement: pmid + SCHEMA.md fields + provenance."""

    model_config = ConfigDict(extra="forbid", title="Measurement")

    pmid: str = Field(description="PubMed id")
    kind: Kind
    endpoint: str = Field(description="normalized code: PFS, OS, ... or other:<name>")
    arm: str | None = None
    comparison: list[str] | None = Field(default=None, description="[experimental, reference]")
    population: str | None = None
    value: float
    unit: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    p_value: str | None = Field(default=None, description='as written, without "P" and "=": "<0.001"')
    timepoint: str | None = None
    n: int | None = None
    n_total: int | None = None
    evidence: str = Field(description="the sentence (or clause) the value was read from")
    section: str | None = Field(default=None, description="label of the abstract section")
    start: int = Field(ge=0, description="evidence start in the abstract (sections joined by newline)")
    end: int = Field(ge=0, description="evidence end (exclusive)")
    log_value: float | None = Field(default=None, description="ratios: ln(value)")
    se: float | None = Field(default=None, description="ratios: standard error of ln(value) from the CI")
    flags: list[str] = Field(default_factory=list, description="consistency flags")
    extractor_version: str


class ExportTrial(BaseModel):
    """The per-article line score.py reads for registry ids, phase and arms."""

    model_config = ConfigDict(extra="forbid", title="Trial")

    pmid: str
    kind: Literal["trial"] = "trial"
    registration: list[str] = Field(default_factory=list)
    phase: str | None = None
    n_randomized: int | None = None
    arms: list[str] = Field(default_factory=list)


def _json_or_none(text: str | None) -> list | None:
    return json.loads(text) if text is not None else None


def iter_measurements(db: sqlite_utils.Database) -> Iterator[ExportMeasurement]:
    cols = ", ".join(f'"{c}"' for c in ("pmid", *SCHEMA_FIELDS, *PROVENANCE_FIELDS))
    cur = db.conn.execute(f"SELECT {cols} FROM measurements ORDER BY pmid, idx")
    names = [d[0] for d in cur.description]
    for row in cur:
        d = dict(zip(names, row))
        d["comparison"] = _json_or_none(d["comparison"])
        d["flags"] = json.loads(d["flags"] or "[]")
        yield ExportMeasurement(**d)


def iter_trials(db: sqlite_utils.Database) -> Iterator[ExportTrial]:
    cur = db.conn.execute("SELECT pmid, registration, phase, n_randomized, arms FROM trials ORDER BY pmid")
    for pmid, registration, phase, n_randomized, arms in cur:
        yield ExportTrial(pmid=pmid, registration=json.loads(registration), phase=phase,
                          n_randomized=n_randomized, arms=json.loads(arms))


def write_jsonl(db: sqlite_utils.Database, out: IO[str]) -> int:
    """Each article's trial line followed by its measurements; returns lines written."""
    by_pmid: dict[str, list[ExportMeasurement]] = {}
    for m in iter_measurements(db):
        by_pmid.setdefault(m.pmid, []).append(m)
    n = 0
    for t in iter_trials(db):
        out.write(t.model_dump_json() + "\n")
        n += 1
        for m in by_pmid.pop(t.pmid, []):
            out.write(m.model_dump_json() + "\n")
            n += 1
    for ms in by_pmid.values():  # measurements of an article without a trial row (none expected)
        for m in ms:
            out.write(m.model_dump_json() + "\n")
            n += 1
    return n


def write_csv(db: sqlite_utils.Database, out: IO[str]) -> int:
    """Measurements only, columns pmid + SCHEMA.md fields; lists as JSON text."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("pmid", *SCHEMA_FIELDS))
    n = 0
    for m in iter_measurements(db):
        d = m.model_dump()
        d["comparison"] = json.dumps(d["comparison"]) if d["comparison"] is not None else None
        w.writerow([d["pmid"], *(d[f] for f in SCHEMA_FIELDS)])
        n += 1
    return n
