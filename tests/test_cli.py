"""The foundation commands end to end: ingest, export, query, demo (click's CliRunner, temp databases)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from extractor.cli import main
from extractor.export import SCHEMA_FIELDS

TRIAL_KEYS = {"pmid", "kind", "registration", "phase", "n_randomized", "arms"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def loaded(runner: CliRunner, fixtures_dir: Path, tmp_path: Path) -> str:
    db = str(tmp_path / "e.db")
    r = runner.invoke(main, ["ingest", str(fixtures_dir / "efetch_trials.xml"),
                             str(fixtures_dir / "baseline_sample.xml.gz"), "--db", db])
    assert r.exit_code == 0, r.output
    return db


def test_ingest_prints_summary(runner: CliRunner, fixtures_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(main, ["ingest", str(fixtures_dir / "efetch_trials.xml"), "--db", str(tmp_path / "x.db")])
    assert r.exit_code == 0
    assert "1 file(s): 6 articles (1 without abstract)" in r.stdout and "measurements" in r.stdout


def test_ingest_bad_files_one_line_each_nonzero_exit_others_ingested(runner: CliRunner, fixtures_dir: Path,
                                                                       tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    bad = [str(fixtures_dir / "broken" / n) for n in ("html_error.html", "xxe.xml", "billion_laughs.xml")]
    r = runner.invoke(main, ["ingest", *bad, str(fixtures_dir / "efetch_trials.xml"), "missing.xml", "--db", db])
    assert r.exit_code == 1
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 4 and any("html_error.html:2: not PubMed XML: an HTML page" in e for e in errors)
    assert "6 articles" in r.stdout and "4 bad file(s)" in r.stdout
    q = runner.invoke(main, ["query", "SELECT count(*) AS n FROM articles", "--json", "--db", db])
    assert json.loads(q.stdout) == {"n": 6}


def test_export_jsonl_trial_lines_and_schema_fields(runner: CliRunner, loaded: str) -> None:
    r = runner.invoke(main, ["export", "--db", loaded])
    assert r.exit_code == 0
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    trials = [x for x in lines if x["kind"] == "trial"]
    assert len(trials) == 8 and all(set(t) == TRIAL_KEYS for t in trials)
    zen1 = next(t for t in trials if t["pmid"] == "99900001")
    assert zen1["registration"] == ["NCT09990001"]
    meas = [x for x in lines if x["kind"] != "trial"]
    assert meas and all({"pmid", *SCHEMA_FIELDS} <= set(m) for m in meas)
    hr = [m for m in meas if m["pmid"] == "99900001" and m["kind"] == "hazard_ratio"]
    assert any((m["value"], m["ci_low"], m["ci_high"]) == (0.52, 0.41, 0.66) for m in hr)


def test_export_csv_has_exactly_pmid_and_schema_columns(runner: CliRunner, loaded: str, tmp_path: Path) -> None:
    out = tmp_path / "m.csv"
    r = runner.invoke(main, ["export", "--format", "csv", "-o", str(out), "--db", loaded])
    assert r.exit_code == 0
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert tuple(rows[0]) == ("pmid", *SCHEMA_FIELDS) and len(rows) > 1


def test_export_meta_goes_through_report(runner: CliRunner, loaded: str) -> None:
    pytest.importorskip("extractor.report")
    r = runner.invoke(main, ["export", "--format", "meta", "--db", loaded])
    assert r.exit_code == 0, r.output
    assert "99900001" in r.stdout


def test_query_table_and_json(runner: CliRunner, loaded: str) -> None:
    sql = "SELECT pmid, value FROM evidence WHERE kind = 'hazard_ratio' AND pmid = '99900001'"
    r = runner.invoke(main, ["query", sql, "--db", loaded])
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0].split() == ["pmid", "value"] and "0.52" in r.stdout
    r = runner.invoke(main, ["query", sql, "--json", "--db", loaded])
    assert {"pmid": "99900001", "value": 0.52} in [json.loads(x) for x in r.stdout.splitlines()]


@pytest.mark.parametrize("sql", ["DELETE FROM articles", "DROP TABLE measurements", "ATTACH 'y.db' AS y"])
def test_query_refuses_writes_with_one_line_error(runner: CliRunner, loaded: str, sql: str) -> None:
    r = runner.invoke(main, ["query", sql, "--db", loaded])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.strip() == "Error: query is read-only: write statements are refused"
    n = runner.invoke(main, ["query", "SELECT count(*) FROM articles", "--json", "--db", loaded])
    assert json.loads(n.stdout) == {"count(*)": 8}


def test_query_bad_sql_and_missing_database(runner: CliRunner, loaded: str, tmp_path: Path) -> None:
    r = runner.invoke(main, ["query", "SELEC 1", "--db", loaded])
    assert r.exit_code == 1 and r.stderr.startswith("Error: SQL error") and len(r.stderr.splitlines()) == 1
    missing = tmp_path / "none.db"
    r = runner.invoke(main, ["query", "SELECT 1", "--db", str(missing)])
    assert r.exit_code == 1 and "no such database" in r.stderr and not missing.exists()


def test_not_a_database_is_a_one_line_error(runner: CliRunner, fixtures_dir: Path) -> None:
    r = runner.invoke(main, ["query", "SELECT 1", "--db", str(fixtures_dir / "efetch_trials.xml")])
    assert r.exit_code == 1 and "cannot open database" in r.stderr and "Traceback" not in r.output


def test_demo_prints_the_evidence(runner: CliRunner, tmp_path: Path) -> None:
    r = runner.invoke(main, ["demo", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "2 file(s): 9 articles" in r.stdout and "1 deleted" in r.stdout
    table = r.stdout.split("Extracted measurements", 1)[1]
    for pmid in ("99900001", "99900002", "99900003", "99900004", "99900007"):
        assert pmid in table
    assert "hazard_ratio" in table and "median" in table and "rate" in table


def test_reextract_fills_measurements_from_raw_xml(runner: CliRunner, fixtures_dir: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    r = runner.invoke(main, ["ingest", "--no-extract", str(fixtures_dir / "efetch_trials.xml"), "--db", db])
    assert r.exit_code == 0 and "0 measurements" in r.stdout
    r = runner.invoke(main, ["reextract", "99900001", "--db", db])
    assert r.exit_code == 0 and r.stdout.startswith("1 article(s) re-extracted")
    r = runner.invoke(main, ["reextract", "--db", db])
    assert r.exit_code == 0 and r.stdout.startswith("6 article(s) re-extracted")
    q = runner.invoke(main, ["query", "SELECT count(DISTINCT pmid) AS n FROM measurements"
                             " WHERE pmid IN ('99900001', '99900002', '99900003', '99900004')", "--json", "--db", db])
    assert json.loads(q.stdout) == {"n": 4}


def test_database_error_during_ingest_is_one_line(runner: CliRunner, fixtures_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from extractor import store

    def locked(*_a, **_k):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "save", locked)
    r = runner.invoke(main, ["ingest", str(fixtures_dir / "efetch_trials.xml"), "--db", str(tmp_path / "l.db")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.strip().splitlines()[-1].startswith("Error: database error: database is locked")
