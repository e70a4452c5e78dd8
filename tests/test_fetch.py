"""EutilsClient against the stand-in: etiquette, pacing, retries, id resolution, query splitting."""
from __future__ import annotations

import threading
import time

import pytest
import requests
from Bio import Entrez

from eutils_server import EutilsServer, make_records
from extractor import parse
from extractor.errors import FetchError
from extractor.fetch import RATE_NO_KEY, RATE_WITH_KEY, EutilsClient, RateLimiter

RATE = 40.0                # the client's pace
SERVER_RATE = RATE * 1.25  # the stand-in's limit: room for thread-scheduling jitter in one process


@pytest.fixture
def records():
    return make_records(240)


@pytest.fixture
def server(records):
    with EutilsServer(records, rate=SERVER_RATE, esearch_cap=100, slow_seconds=0.6) as s:
        yield s


@pytest.fixture
def client(server):
    return EutilsClient(base_url=server.url, rate=RATE, email="dev@example.org", api_key="k3y",
                        backoff=0.01, max_backoff=0.05, timeout=0.3, retries=4, esearch_cap=100)


def assert_polite(server: EutilsServer, limit: float = SERVER_RATE) -> None:
    assert server.rate_limited == 0
    assert server.max_in_window() <= limit


def test_identity_on_every_request(server, client, records):
    client.esearch("widget", retmax=3)
    client.efetch(list(records)[:2])
    client.idconv(["PMC9000000"], "pmcid")
    calls = server.calls()
    assert {c.endpoint for c in calls} == {"esearch", "efetch", "idconv"}
    for c in calls:
        assert c.params["tool"] == "pubmed-evidence"
        assert c.params["email"] == "dev@example.org"
        assert c.params["api_key"] == "k3y"
    assert server.calls("efetch")[0].method == "POST"
    assert client.session.headers["User-Agent"].startswith("pubmed-evidence/")


def test_default_rates_follow_ncbi():
    assert EutilsClient().rate == RATE_NO_KEY == 3
    assert EutilsClient(api_key="x").rate == RATE_WITH_KEY == 10


def test_from_env(monkeypatch):
    monkeypatch.setenv("NCBI_API_KEY", "abc")
    monkeypatch.setenv("NCBI_EMAIL", "me@example.org")
    c = EutilsClient.from_env()
    assert (c.api_key, c.email, c.rate) == ("abc", "me@example.org", RATE_WITH_KEY)
    assert EutilsClient.from_env(api_key="given").api_key == "given"


def test_pacing_never_exceeds_server_limit(server, client):
    t0 = time.monotonic()
    for _ in range(30):
        client.esearch("gear", retmax=0)
    elapsed = time.monotonic() - t0
    assert elapsed >= 29 / RATE * 0.95
    assert_polite(server)
    assert len(server.calls()) == 30


def test_limiter_is_shared_by_threads(server, client):
    def work():
        for _ in range(8):
            client.esearch("lever", retmax=0)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.calls()) == 32
    assert_polite(server)


def test_rate_limiter_spacing():
    lim = RateLimiter(50)
    t0 = time.monotonic()
    for _ in range(6):
        lim.wait()
    assert time.monotonic() - t0 >= 5 / 50 * 0.95


def test_unpaced_client_gets_429_and_recovers(records):
    # A client that ignores the limit is answered 429 without Retry-After and backs off.
    with EutilsServer(records, rate=5) as s:
        c = EutilsClient(base_url=s.url, rate=1000, backoff=0.2, max_backoff=1.0, retries=8)
        for _ in range(8):
            c.esearch("widget", retmax=0)
        assert s.rate_limited > 0
        assert c.requests_made == len(s.calls()) > 8
        r = requests.get(f"{s.url}/esearch.fcgi", params={"term": "x"})
        while r.status_code != 429:
            r = requests.get(f"{s.url}/esearch.fcgi", params={"term": "x"})
        assert "Retry-After" not in r.headers and r.json()["error"] == "API rate limit exceeded"


@pytest.mark.parametrize("faults", [(429, 429, 429), (500,), (502, 503), ("slow",), ("drop",), ("short",)])
def test_transient_faults_are_retried(server, client, records, faults):
    ids = list(records)[:5]
    server.fail("efetch", *faults)
    body = client.efetch(ids)
    assert [a.pmid for a in parse.parse_bytes(body)] == ids
    assert len(server.calls("efetch")) == len(faults) + 1
    assert_polite(server)


def test_accept_rejects_html_and_truncated(server, client, records):
    ids = list(records)[:5]
    server.fail("efetch", "html", "truncate")
    body = client.efetch(ids, accept=lambda b: b.rstrip().endswith(b"</PubmedArticleSet>"))
    assert len(parse.parse_bytes(body)) == 5
    assert len(server.calls("efetch")) == 3


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_4xx_fail_at_once(server, client, status):
    server.fail("esearch", status)
    with pytest.raises(FetchError, match=f"HTTP {status}"):
        client.esearch("widget")
    assert len(server.calls("esearch")) == 1


def test_gives_up_after_retries_with_last_error(server, client):
    server.fail("esearch", *([503] * 5))
    with pytest.raises(FetchError, match="gave up after 5 attempts, last: HTTP 503"):
        client.esearch("widget")


def test_backoff_grows_and_is_capped():
    c = EutilsClient(backoff=1.0, max_backoff=8.0)
    delays = [c.delay(i) for i in range(6)]
    assert all(0.5 * min(8, 2 ** i) <= d <= min(8, 2 ** i) for i, d in enumerate(delays))


def test_doi_and_pmcid_resolution(server, client, records):
    recs = list(records.values())
    assert client.doi_to_pmid(recs[4].doi) == recs[4].pmid
    assert client.doi_to_pmid(recs[4].doi.upper()) == recs[4].pmid
    assert client.doi_to_pmid("10.9999/nothing.here") is None
    assert server.calls("esearch")[0].params["term"] == f'"{recs[4].doi}"[doi]'
    got = client.idconv([recs[0].pmcid, recs[3].pmcid.lower(), "PMC1"], "pmcid")
    assert got == {recs[0].pmcid: recs[0].pmid, recs[3].pmcid.lower(): recs[3].pmid, "PMC1": None}
    assert client.idconv([recs[6].doi, recs[1].doi], "doi") == {recs[6].doi: recs[6].pmid, recs[1].doi: None}


def test_idconv_batches_of_200(server, client):
    ids = [f"PMC{9_000_000 + k}" for k in range(450)]
    got = client.idconv(ids, "pmcid")
    assert len(server.calls("idconv")) == 3
    assert sum(v is not None for v in got.values()) == 80  # every third of 240 records has a PMCID


def test_search_under_cap_uses_history(server, client, records):
    plan = client.plan_search("sprocket inhibitor")
    assert plan.count == 60 and len(plan.slices) == 1 and not plan.notes
    assert plan.slices[0].webenv and plan.slices[0].query_key
    assert sorted(plan.ids) == sorted(p for p, r in records.items() if "sprocket" in r.title)


def test_search_above_cap_splits_by_date(server, client, records):
    plan = client.plan_search("made up")  # all 240 records, cap 100
    assert plan.count == 240
    assert len(plan.slices) >= 3 and all(s.count <= 100 for s in plan.slices)
    assert sorted(plan.ids) == sorted(records) and len(set(plan.ids)) == 240
    assert "split by publication date" in plan.notes[0]
    for c in server.calls("esearch"):
        if "mindate" in c.params:
            assert c.params["datetype"] == "pdat" and c.params["maxdate"]
    assert_polite(server)


def test_search_max_ids(server, client, records):
    ids = client.plan_search("made up", max_ids=150).ids  # above the cap: split, newest first
    newest = sorted(records, key=lambda p: records[p].pubdate, reverse=True)[:150]
    assert sorted(ids) == sorted(newest)
    assert len(client.plan_search("made up", max_ids=7).ids) == 7
    assert client.plan_search("nothingmatchesthis").ids == []


def test_esearch_error_is_fetch_error(records):
    with EutilsServer(records, esearch_cap=10, rate=50) as s:
        c = EutilsClient(base_url=s.url, rate=50)
        with pytest.raises(FetchError, match="retstart"):
            c.esearch("made up", retstart=10)


def test_efetch_limits(client):
    with pytest.raises(ValueError):
        client.efetch([])
    with pytest.raises(ValueError):
        client.efetch([str(i) for i in range(201)])


# --- the stand-in speaks NCBI's formats ------------------------------------------------------

def test_standin_efetch_is_valid_pubmed_xml(server, client, records):
    ids = list(records)[:3]
    body = client.efetch(ids)
    articles = parse.parse_bytes(body)
    assert [a.pmid for a in articles] == ids
    assert articles[0].doi == records[ids[0]].doi and articles[0].year == records[ids[0]].pubdate.year
    import io
    doc = Entrez.read(io.BytesIO(body), validate=True)  # against the bundled 2025 DTD
    assert [str(a["MedlineCitation"]["PMID"]) for a in doc["PubmedArticle"]] == ids


def test_standin_esearch_xml_reads_with_biopython(server, client):
    body = client.request(f"{server.url}/esearch.fcgi", {"db": "pubmed", "term": "gear", "retmax": "5",
                                                          "usehistory": "y"})
    import io
    res = Entrez.read(io.BytesIO(body))
    assert int(res["Count"]) == 60 and len(res["IdList"]) == 5 and res["WebEnv"]


def test_split_refuses_a_server_that_ignores_dates(records):
    with EutilsServer(records, rate=100, esearch_cap=50) as s:
        orig = s.matching
        s.matching = lambda term, params: orig(term, {k: v for k, v in params.items()
                                                      if k not in ("mindate", "maxdate")})
        c = EutilsClient(base_url=s.url, rate=100, esearch_cap=50)
        with pytest.raises(FetchError, match="does not honour the publication-date range"):
            c.plan_search("made up")
        assert len(s.calls("esearch")) == 3


def test_clients_of_one_process_share_the_limiter(server):
    a = EutilsClient(base_url=server.url, rate=RATE, api_key="k")
    b = EutilsClient(base_url=server.url, rate=RATE, api_key="k")
    assert a.limiter is b.limiter
    assert EutilsClient(base_url=server.url, rate=RATE, api_key="other").limiter is not a.limiter

    def work(c):
        for _ in range(10):
            c.esearch("gear", retmax=0)

    threads = [threading.Thread(target=work, args=(c,)) for c in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.calls()) == 40
    assert_polite(server)


def test_retry_after_is_honoured_when_sent(server, client):
    server.fail("esearch", 503)
    server.retry_after = 1
    t0 = time.monotonic()
    client.esearch("gear", retmax=0)
    assert time.monotonic() - t0 >= 0.9


def test_esearch_backend_failure_is_retried(server, client):
    server.fail("esearch", "backend", "backend")
    assert client.esearch("gear", retmax=0).count == 60
    assert len(server.calls("esearch")) == 3
    server.fail("esearch", *(["backend"] * 5))
    with pytest.raises(FetchError, match="gave up after 5 attempts"):
        client.esearch("gear", retmax=0)
