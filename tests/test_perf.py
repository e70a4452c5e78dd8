"""Fast paths must give what the slow paths give: the literal pre-check of find_endpoints."""
from __future__ import annotations

import pytest

from extractor import nlp

_OWN = [
    "Median progression-free survival was 7.1 months with drug A.",
    "The hazard ratio for death was 0.71 (95% CI, 0.60-0.84).",
    "Grade 3 or higher adverse events occurred in 12% of patients.",
    "\u2265grade 3 toxicity was rare; the ORR was 41% and pCR 18%.",
    "Patients were seen at 3 and 6 months; no values here.",
    "OS and DFS did not differ, nor did dose intensity.",
    "",
]


def _texts() -> list[str]:
    r = nlp.endpoint_rules()
    return [t for e in r.endpoints for t, _ in e.examples] + [t for t, _ in r.cue_examples] + \
        [p for e in r.endpoints for p in e.phrases] + _OWN


def test_pre_check_never_changes_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    fast = [nlp.find_endpoints(t) for t in texts]
    monkeypatch.setattr(nlp, "_anchors", lambda: None)  # no pre-check: tokenize everything
    assert [nlp.find_endpoints(t) for t in texts] == fast
    assert any(fast) and not all(fast)


def test_every_phrase_has_an_anchor() -> None:
    anchors = nlp._anchors()
    assert anchors is not None  # else the pre-check is silently off
    lower, exact = anchors
    for phrase in [p for e in nlp.endpoint_rules().endpoints for p in e.phrases]:
        assert any(a in phrase.lower() for a in lower) or any(a in phrase for a in exact), phrase
