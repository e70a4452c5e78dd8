"""extract(): the contract the pipeline relies on, then sentence-level cases from tests/cases."""
from __future__ import annotations

from extractor.extract import extract
from extractor.models import Article, Section


def article(*texts: str, labels: tuple[str | None, ...] = ()) -> Article:
    secs, off = [], 0
    for i, t in enumerate(texts):
        secs.append(Section(label=labels[i] if i < len(labels) else None, text=t, offset=off))
        off += len(t) + 1
    return Article(pmid="1", title="", sections=secs)


def test_hazard_ratio_and_medians_with_spans() -> None:
    a = article("Aims here.", "Median survival was 7.5 months with drugx and 5.0 months with placebo "
                "(hazard ratio for death, 0.61; 95% CI, 0.45 to 0.83; P=0.002).",
                labels=("BACKGROUND", "RESULTS"))
    trial, ms = extract(a)
    hr = [m for m in ms if m.kind == "hazard_ratio"]
    assert [(m.value, m.ci_low, m.ci_high, m.ci_level, m.p_value) for m in hr] == [(0.61, 0.45, 0.83, 95, "0.002")]
    assert sorted(m.value for m in ms if m.kind == "median") == [5.0, 7.5]
    for m in ms:
        assert a.abstract[m.start:m.end] == m.evidence and m.section == "RESULTS"


def test_no_results_gives_empty() -> None:
    trial, ms = extract(article("We describe the design of a trial. NCT01234567."))
    assert ms == [] and trial.registration == ["NCT01234567"]
