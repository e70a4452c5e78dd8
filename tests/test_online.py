"""The fetch flows against the real NCBI E-utilities: opt-in with `pytest --online`.

Same assertions as the stand-in tests (stored once, missing ids named), with nothing
hard-coded about a record but one PMID: its DOI and PMCID are read from what NCBI
returns and resolved back. Set NCBI_API_KEY / NCBI_EMAIL to be identified to NCBI.
"""
from __future__ import annotations

import os

import pytest

from extractor.acquire import IngestStore, acquire, acquire_search
from extractor.fetch import EutilsClient
from extractor.store import open_db

pytestmark = pytest.mark.online

KNOWN_PMID = "29768149"  # a NEJM randomized trial with a structured abstract
NO_SUCH_PMID = "999999999"


@pytest.fixture(scope="module")
def client():
    return EutilsClient.from_env(email=os.environ.get("NCBI_EMAIL") or "pubmed-evidence-tests@example.org")


@pytest.fixture
def db():
    d = open_db(":memory:")
    yield d
    d.conn.close()


def test_fetch_pmid_then_resolve_its_doi_and_pmcid(client, db):
    s = acquire(db, client, [KNOWN_PMID, NO_SUCH_PMID], store=IngestStore(extract=False))
    assert s.fetched == 1 and s.missing == [NO_SUCH_PMID] and not s.failed
    doi, pmcid = db.conn.execute("SELECT doi, pmcid FROM articles WHERE pmid = ?", (KNOWN_PMID,)).fetchone()
    assert doi and doi.startswith("10.")
    assert client.doi_to_pmid(doi) == KNOWN_PMID
    if pmcid:
        assert client.idconv([pmcid], "pmcid") == {pmcid: KNOWN_PMID}
    again = acquire(db, client, [doi], store=IngestStore(extract=False))
    assert (again.fetched, again.already_present) == (0, 1)
    assert db.conn.execute("SELECT count(*) FROM raw_records").fetchone()[0] == 1


def test_search_with_history_and_max(client, db):
    s = acquire_search(db, client, '"randomized controlled trial"[pt] AND hazard ratio', max_ids=30,
                       store=IngestStore(extract=False))
    assert s.requested == 30 and s.fetched + len(s.missing) == 30 and not s.failed
    assert db.conn.execute("SELECT count(*) FROM raw_records").fetchone()[0] == s.fetched


def test_large_query_is_split_by_date(client):
    plan = client.plan_search('"randomized controlled trial"[pt] AND 2019[pdat]')
    assert plan.count > 10_000
    assert all(s.count <= 10_000 for s in plan.slices)
    assert len(set(plan.ids)) == len(plan.ids) >= plan.count * 0.99
    assert "split by publication date" in plan.notes[0]
