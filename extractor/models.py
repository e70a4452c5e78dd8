"""The records that flow through the pipeline: Article (parse) -> Trial + Measurement (extract).

Field names of Measurement and Trial are those of ../shared/corpus/SCHEMA.md, so an
export is scored by score.py as it is; provenance and consistency fields come after.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["median", "hazard_ratio", "odds_ratio", "risk_ratio", "rate"]
RATIO_KINDS: tuple[str, ...] = ("hazard_ratio", "odds_ratio", "risk_ratio")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Section(_Model):
    """One AbstractText: its label, NLM category, text (inline markup kept as text)."""

    label: str | None = None
    category: str | None = None
    text: str
    offset: int = Field(ge=0, description="start of this section's text in Article.abstract")


class PublicationType(_Model):
    ui: str | None = None
    name: str


class MeshHeading(_Model):
    ui: str | None = None
    descriptor: str
    major: bool = False
    qualifiers: list[str] = Field(default_factory=list)


class Article(_Model):
    """One PubMed record. `abstract` is the sections' texts joined by SECTION_SEPARATOR."""

    pmid: str
    doi: str | None = None
    pmcid: str | None = None
    title: str = ""
    journal: str | None = None
    year: int | None = None
    language: list[str] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    publication_types: list[PublicationType] = Field(default_factory=list)
    mesh: list[MeshHeading] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    registry_ids: list[str] = Field(default_factory=list, description="DataBankList accession numbers")

    @property
    def abstract(self) -> str:
        return SECTION_SEPARATOR.join(s.text for s in self.sections)

    def section_at(self, offset: int) -> Section | None:
        """The section holding abstract character `offset`."""
        for s in self.sections:
            if s.offset <= offset <= s.offset + len(s.text):
                return s
        return None


SECTION_SEPARATOR = "\n"


class Deletion(_Model):
    """A DeleteCitation entry of an update file: this PMID must leave the database."""

    pmid: str


class Trial(_Model):
    """Design facts of one article (SCHEMA.md `trial`), plus what attribution needs."""

    registration: list[str] = Field(default_factory=list)
    phase: str | None = None
    n_randomized: int | None = None
    arms: list[str] = Field(default_factory=list, description="short names, experimental first")
    allocation_ratio: str | None = None


class Measurement(_Model):
    """One extracted number with what it belongs to and where it came from."""

    kind: Kind
    endpoint: str
    arm: str | None = None
    comparison: list[str] | None = None
    population: str | None = None
    value: float
    unit: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    p_value: str | None = None
    timepoint: str | None = None
    n: int | None = None
    n_total: int | None = None
    evidence: str
    # provenance: where `evidence` sits in Article.abstract
    section: str | None = None
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    # consistency (ratios: ln(value) and its SE from the CI, for meta-analysis)
    log_value: float | None = None
    se: float | None = None
    flags: list[str] = Field(default_factory=list)
