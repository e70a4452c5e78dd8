"""acquire / acquire_search and the fetch/search CLI against the stand-in, asserting end states:
which records are stored (exactly once), which ids are reported missing, that the
server's rate limit was never exceeded."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from eutils_server import EutilsServer, make_records
from extractor import parse
from extractor.acquire import IngestStore, acquire, acquire_search, classify, split_ids
from extractor.cli import main
from extractor.fetch import EutilsClient
from extractor.models import Measurement, Trial
from extractor.store import iter_raw, open_db

RATE = 50.0                # the client's pace
SERVER_RATE = RATE * 1.25  # the stand-in's limit: room for thread-scheduling jitter in one process
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def records():
    return make_records(300)


@pytest.fixture
def server(records):
    with EutilsServer(records, rate=SERVER_RATE, esearch_cap=100, slow_seconds=0.5) as s:
        yield s


def make_client(server: EutilsServer, **kw) -> EutilsClient:
    opts = dict(base_url=server.url, rate=RATE, backoff=0.01, max_backoff=0.05, timeout=0.25, retries=3,
                esearch_cap=100)
    opts.update(kw)
    return EutilsClient(**opts)


@pytest.fixture
def client(server):
    return make_client(server)


@pytest.fixture
def db():
    d = open_db(":memory:")
    yield d
    d.conn.close()


RAW_ONLY = IngestStore(extract=False)


def one_median(article):
    """A stand-in extractor (the real one is tested elsewhere): one median per article."""
    ev = article.abstract[:20]
    return Trial(), [Measurement(kind="median", endpoint="OS", value=1.0, unit="months", evidence=ev,
                                 start=0, end=len(ev))]


def stored(db) -> list[str]:
    return [r[0] for r in db.conn.execute("SELECT pmid FROM raw_records ORDER BY pmid")]


def assert_once(db, expected) -> None:
    """Each expected record stored exactly once, as a parseable PubmedArticle, and nothing else."""
    pmids = stored(db)
    assert pmids == sorted(expected)
    arts = [r[0] for r in db.conn.execute("SELECT pmid FROM articles")]
    assert sorted(arts) == sorted(expected)
    for pmid, xml in iter_raw(db):
        assert parse.parse_record_xml(xml).pmid == pmid


def assert_polite(server: EutilsServer, limit: float = SERVER_RATE) -> None:
    assert server.rate_limited == 0
    assert server.max_in_window() <= limit


# --- ids --------------------------------------------------------------------------------------

def test_classify_sorts_and_normalises():
    ids = classify(["123", " 00456 ", "doi:10.1000/ABC", "https://doi.org/10.2/x", "pmc77", "PMC77",
                    "10.3/y", "123", "hello", "PMID: 9", ""])
    assert ids.pmids == ["123", "456", "9"]
    assert ids.dois == ["10.1000/ABC", "10.2/x", "10.3/y"]
    assert ids.pmcids == ["PMC77"]
    assert ids.invalid == ["hello"]


def test_split_ids_keeps_dois_whole():
    sici = "10.1002/(SICI)1097-4636(199702)34:2<197::AID-JBM8>3.0.CO;2-N"
    assert split_ids(f"1,2, 3\t{sici}  10.1/a,b, PMC5 # comment 4") == ["1", "2", "3", sici, "10.1/a,b", "PMC5"]


# --- fetch by ids -----------------------------------------------------------------------------

def test_mixed_ids_end_state(server, client, db, records):
    recs = list(records.values())
    hidden = recs[9]                      # DOI unknown to esearch, known to the PMC converter
    hidden.doi_indexed = False
    try:
        ids = [r.pmid for r in recs[:5]] + [recs[5].doi, recs[6].pmcid, hidden.doi, "88888888",
                                            "10.9/none", "PMC1", "what"]
        s = acquire(db, client, ids, batch_size=3, store=IngestStore(extractor=one_median))
    finally:
        hidden.doi_indexed = True
    expected = [r.pmid for r in recs[:7]] + [hidden.pmid]
    assert_once(db, expected)
    assert s.requested == 12 and s.fetched == 8 and s.already_present == 0 and not s.failed
    assert s.missing == ["88888888"]
    assert s.unresolved == {"what": "not a PMID, DOI or PMCID",
                            "10.9/none": "no PubMed record for this DOI",
                            "PMC1": "no PubMed record for this PMCID"}
    assert sorted(s.not_found) == sorted(["88888888", "10.9/none", "PMC1", "what"])
    assert s.measurements == 8 == db.conn.execute("SELECT count(*) FROM measurements").fetchone()[0]
    assert all(len(c.ids) <= 3 for c in server.calls("efetch"))
    assert_polite(server)


def test_rerun_skips_stored_and_refresh_refetches(server, client, db, records):
    ids = list(records)[:120]
    first = acquire(db, client, ids, store=RAW_ONLY)
    assert first.fetched == 120 and len(server.calls("efetch")) == 1  # one POST of <= 200
    again = acquire(db, client, ids + ["30000200"], store=RAW_ONLY)
    assert (again.fetched, again.already_present) == (1, 120)
    assert server.fetched_ids()[120:] == ["30000200"]
    forced = acquire(db, client, ids, refresh=True, store=RAW_ONLY)
    assert (forced.fetched, forced.already_present) == (120, 0)
    assert_once(db, ids + ["30000200"])
    assert_polite(server)


@pytest.mark.parametrize("faults", [("html",), ("truncate",), ("short",), ("garble",), ("drop", 503, 429),
                                    ("slow",)])
def test_bad_answers_are_never_stored(server, client, db, records, faults):
    ids = list(records)[:60]
    server.fail("efetch", *faults)
    s = acquire(db, client, ids, batch_size=20, store=RAW_ONLY)
    assert s.fetched == 60 and not s.failed and not s.missing
    assert_once(db, ids)
    assert len(server.calls("efetch")) == 3 + len(faults)
    assert_polite(server)


def test_persistent_bad_answers_are_reported_then_recovered(server, db, records):
    client = make_client(server, retries=1)
    ids = list(records)[:50]
    server.fail("efetch", "html", "html")  # the first batch: both attempts get an HTML page
    s = acquire(db, client, ids, batch_size=25, store=RAW_ONLY)
    assert sorted(s.failed) == sorted(ids[:25]) and s.fetched == 25
    assert "gave up after 2 attempts" in s.failed[ids[0]] and "not the expected format" in s.failed[ids[0]]
    assert any("failed:" in line for line in s.lines())
    assert_once(db, ids[25:])
    again = acquire(db, client, ids, store=RAW_ONLY)
    assert (again.fetched, again.already_present, again.failed) == (25, 25, {})
    assert_once(db, ids)
    assert_polite(server)


def test_resolution_failure_is_reported_not_fatal(server, client, db, records):
    recs = list(records.values())
    server.fail("esearch", 400)
    s = acquire(db, client, [recs[0].doi, recs[1].pmid], store=RAW_ONLY)
    assert list(s.failed) == [recs[0].doi] and "HTTP 400" in s.failed[recs[0].doi]
    assert_once(db, [recs[1].pmid])
    assert_polite(server)


# --- search -----------------------------------------------------------------------------------

def test_search_above_cap_stores_everything_once(server, client, db, records):
    s = acquire_search(db, client, "made up", store=RAW_ONLY)
    assert "split by publication date" in s.notes[0]
    assert s.requested == 300 and s.fetched == 300 and not s.missing and not s.failed
    assert_once(db, records)
    hist = [c for c in server.calls("efetch") if "WebEnv" in c.params]
    assert hist and all(int(c.params["retmax"]) <= 200 for c in hist)
    assert_polite(server)


def test_search_resume_fetches_only_missing(server, client, db, records):
    sprocket = [p for p, r in records.items() if "sprocket" in r.title]  # 75 records, under the cap
    acquire(db, client, sprocket[::3], store=RAW_ONLY)
    n_before = len(server.calls("efetch"))
    s = acquire_search(db, client, "sprocket inhibitor", store=RAW_ONLY)
    assert (s.requested, s.already_present, s.fetched) == (75, 25, 50)
    new_calls = server.calls("efetch")[n_before:]
    assert len(new_calls) == 1 and sorted(new_calls[0].ids) == sorted(set(sprocket) - set(sprocket[::3]))
    assert_once(db, sprocket)
    again = acquire_search(db, client, "sprocket inhibitor", store=RAW_ONLY)
    assert (again.fetched, again.already_present) == (0, 75)
    assert len(server.calls("efetch")) == n_before + 1
    assert_polite(server)


def test_search_falls_back_to_ids_when_history_expired(server, client, db, records):
    gear = [p for p, r in records.items() if "gear" in r.title]
    s = acquire_search(db, client, "gear vaccine", store=RAW_ONLY,
                       progress=lambda done, total: server.forget_history())
    assert s.fetched == len(gear) and not s.failed
    assert_once(db, gear)
    assert [c.status for c in server.calls("efetch")] == [400, 200]
    assert_polite(server)


def test_search_max(server, client, db):
    s = acquire_search(db, client, "made up", max_ids=130, store=RAW_ONLY)
    assert s.fetched == 130 and len(stored(db)) == 130
    assert_polite(server)


# --- CLI --------------------------------------------------------------------------------------

def cli_args(server, tmp_path, *extra):
    return [*extra, "--base-url", server.url, "--db", str(tmp_path / "e.db"), "--rate", str(RATE),
            "--backoff", "0.01", "--timeout", "0.5"]


def test_cli_fetch_file_stdin_and_args(server, tmp_path, records):
    recs = list(records.values())
    f = tmp_path / "ids.txt"
    f.write_text(f"# my list\n{recs[0].pmid}, {recs[1].pmid}\n{recs[2].doi}\n\n{recs[3].pmcid}  77777777\n")
    res = CliRunner().invoke(main, cli_args(server, tmp_path, "fetch", "--from-file", str(f), "-",
                                            f"{recs[4].pmid},{recs[0].pmid}"), input=f"{recs[5].pmid}\nnonsense\n")
    assert res.exit_code == 0, res.output
    assert "requested: 8" in res.output and "fetched: 6" in res.output
    assert "not found: 77777777 (efetch returned no record)" in res.output
    assert "not found: nonsense (not a PMID, DOI or PMCID)" in res.output
    con = sqlite3.connect(tmp_path / "e.db")
    assert sorted(r[0] for r in con.execute("SELECT pmid FROM raw_records")) == sorted(r.pmid for r in recs[:6])
    assert server.calls()[0].params["tool"] == "pubmed-evidence"
    assert_polite(server)


def test_cli_search_and_errors(server, tmp_path):
    res = CliRunner().invoke(main, cli_args(server, tmp_path, "search", "lever infusion", "--max", "10",
                                            "--no-extract"))
    assert res.exit_code == 0, res.output
    assert "fetched: 10" in res.output
    res = CliRunner().invoke(main, cli_args(server, tmp_path, "fetch"))
    assert res.exit_code == 2 and "give PMIDs, DOIs or PMCIDs" in res.output
    server.fail("esearch", 400)
    res = CliRunner().invoke(main, cli_args(server, tmp_path, "search", "lever"))
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().splitlines()[-1].startswith("Error: esearch.fcgi: HTTP 400")
    assert_polite(server)


def test_cli_failed_ids_exit_1(server, tmp_path, records):
    server.fail("efetch", *(["html"] * 3))
    res = CliRunner().invoke(main, cli_args(server, tmp_path, "fetch", "--retries", "2", *list(records)[:3]))
    assert res.exit_code == 1 and "failed: 3" in res.output
    assert_polite(server)


# --- resume after SIGKILL ---------------------------------------------------------------------

def test_resume_after_kill(records, tmp_path):
    ids = list(records)
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    dbp = tmp_path / "kill.db"
    open_db(dbp).conn.close()
    with EutilsServer(records, rate_with_key=10) as server:  # NCBI's limit with a key
        cmd = [sys.executable, "-m", "extractor", "fetch", "--from-file", str(tmp_path / "ids.txt"),
               "--batch-size", "20", "--no-extract", "--api-key", "test-key", "--base-url", server.url,
               "--db", str(dbp)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        con = sqlite3.connect(dbp, timeout=10)
        deadline = time.monotonic() + 30
        n = 0
        while time.monotonic() < deadline and proc.poll() is None:
            n = con.execute("SELECT count(*) FROM raw_records").fetchone()[0]
            if n >= 60:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
        after_kill = {r[0] for r in con.execute("SELECT pmid FROM raw_records")}
        con.close()
        assert 60 <= len(after_kill) < 300 and len(after_kill) % 20 == 0  # whole batches only
        first_run_calls = len(server.calls("efetch"))

        server.rate_with_key = SERVER_RATE  # rerun quickly, in-process
        db = open_db(dbp)
        s = acquire(db, make_client(server, api_key="test-key"), ids, batch_size=20, store=RAW_ONLY)
        rerun_ids = [i for c in server.calls("efetch")[first_run_calls:] for i in c.ids]
        assert sorted(rerun_ids) == sorted(set(ids) - after_kill)  # only what was missing, once each
        assert (s.already_present, s.fetched) == (len(after_kill), 300 - len(after_kill))
        assert_once(db, ids)
        assert server.rate_limited == 0


def test_interrupted_store_keeps_whole_batches_and_resumes(server, client, db, records):
    ids = list(records)[:100]
    calls = []

    def flaky(db_, parsed, source):
        calls.append(len(parsed))
        if len(calls) == 3:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of a run
        RAW_ONLY(db_, parsed, source)

    with pytest.raises(KeyboardInterrupt):
        acquire(db, client, ids, batch_size=20, store=flaky)
    assert_once(db, ids[:40])
    s = acquire(db, client, ids, batch_size=20, store=RAW_ONLY)
    assert (s.already_present, s.fetched) == (40, 60)
    assert_once(db, ids)
    assert_polite(server)


def test_rerun_of_dois_and_pmcids_asks_ncbi_nothing(server, client, db, records):
    recs = list(records.values())
    ids = [recs[0].doi, recs[1].doi.upper(), recs[3].pmcid, recs[4].pmid]
    first = acquire(db, client, ids, store=RAW_ONLY)
    assert first.fetched == 4
    n = len(server.calls())
    again = acquire(db, client, ids, store=RAW_ONLY)
    assert (again.fetched, again.already_present) == (0, 4)
    assert len(server.calls()) == n  # no esearch, idconv or efetch
    assert_once(db, [r.pmid for r in (recs[0], recs[1], recs[3], recs[4])])
    assert_polite(server)
