"""store.py: shape applied idempotently, atomic batches, unchanged re-saves, cascading deletes, read-only query."""
from __future__ import annotations

from pathlib import Path

import pytest

from extractor import __version__, store
from extractor.errors import StoreError
from extractor.models import Article, Measurement, Section, Trial


def _article(pmid: str, text: str = "Median survival was 9.0 months with drugamab.") -> Article:
    return Article(pmid=pmid, title=f"An invented trial {pmid}", journal="J Test", year=2020,
                   sections=[Section(label="RESULTS", category="RESULTS", text=text, offset=0)])


def _measurement(value: float = 9.0) -> Measurement:
    return Measurement(kind="median", endpoint="OS", arm="drugamab", value=value, unit="months",
                       evidence="Median survival was 9.0 months with drugamab.", section="RESULTS",
                       start=0, end=46)


def _record(pmid: str, n_meas: int = 1) -> store.Record:
    return store.Record(article=_article(pmid), trial=Trial(arms=["drugamab", "placebo"]),
                        measurements=[_measurement(9.0 + i) for i in range(n_meas)],
                        xml=f"<PubmedArticle>{pmid}</PubmedArticle>".encode(), source="test", is_rct=True)


def _dump(db) -> dict[str, list]:
    tables = ["articles", "sections", "trials", "measurements", "raw_records"]
    out = {t: db.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    out["rowids"] = db.conn.execute("SELECT rowid, pmid FROM articles ORDER BY rowid").fetchall()
    out["fts"] = db.conn.execute("SELECT rowid, title FROM articles_fts ORDER BY rowid").fetchall()
    return out


@pytest.fixture
def db():
    return store.open_db(":memory:")


def test_shape_is_applied_idempotently(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    first = store.open_db(path)
    shape = first.conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    first.conn.close()
    again = store.open_db(path)
    assert again.conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == shape
    names = {r[1] for r in shape}
    assert {"articles", "sections", "trials", "measurements", "raw_records", "ingest_log",
            "articles_fts", "evidence"} <= names
    assert again.conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert again.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_save_writes_every_table_with_extractor_version(db) -> None:
    assert store.save(db, [_record("1", 2)]) == 2
    assert db.conn.execute("SELECT count(*), min(extractor_version) FROM measurements").fetchone() == (2, __version__)
    assert db.conn.execute("SELECT pmid, label, \"offset\" FROM sections").fetchall() == [("1", "RESULTS", 0)]
    assert db.conn.execute("SELECT arms FROM trials").fetchone() == ('["drugamab", "placebo"]',)
    assert db.conn.execute("SELECT is_rct, source FROM articles").fetchone() == (1, "test")
    assert store.raw_xml(db, "1") == b"<PubmedArticle>1</PubmedArticle>"
    assert db.conn.execute("SELECT pmid FROM articles_fts JOIN articles ON articles.rowid = articles_fts.rowid"
                           " WHERE articles_fts MATCH 'drugamab'").fetchall() == [("1",)]


def test_resaving_the_same_records_changes_nothing(db) -> None:
    store.save(db, [_record("1"), _record("2", 3)])
    before = _dump(db)
    store.save(db, [_record("1"), _record("2", 3)])
    assert _dump(db) == before


def test_resave_replaces_an_articles_measurements(db) -> None:
    store.save(db, [_record("1", 3)])
    store.save(db, [_record("1", 1)])
    assert db.conn.execute("SELECT count(*) FROM measurements").fetchone() == (1,)


def test_a_failing_batch_writes_nothing(db, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save(db, [_record("1")])
    real = store._save_raw
    calls = []

    def failing(conn, pmid, xml, source, stored_at, sha1s):
        calls.append(pmid)
        if pmid == "3":
            raise RuntimeError("disk went away")
        real(conn, pmid, xml, source, stored_at, sha1s)

    monkeypatch.setattr(store, "_save_raw", failing)
    with pytest.raises(RuntimeError):
        store.save(db, [_record("2"), _record("3")])
    assert calls == ["2", "3"]
    assert store.stored_pmids(db, "articles") == {"1"}
    assert store.stored_pmids(db) == {"1"}


def test_delete_cascades_and_updates_fts(db) -> None:
    store.save(db, [_record("1", 2), _record("2")])
    assert store.delete(db, ["1", "404"]) == 1
    for table in ("articles", "sections", "trials", "measurements", "raw_records"):
        assert store.stored_pmids(db, table) == {"2"}, table
    assert db.conn.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'trial'").fetchone() == (1,)


def test_a_pmid_new_and_revised_in_one_batch_is_indexed_once(db) -> None:
    """save() indexes new articles at the end of the batch: one updated in the same batch
    must still leave an FTS index that matches the articles table."""
    first, second = _record("1"), _record("1", 2)
    second.article = _article("1", "Median survival was 9.0 months with revisumab.")
    store.save(db, [_record("2"), first, second, _record("3")])
    db.conn.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES ('integrity-check', 1)")
    match = "SELECT a.pmid FROM articles_fts f JOIN articles a ON a.rowid = f.rowid WHERE articles_fts MATCH ?"
    assert db.conn.execute(match, ("revisumab",)).fetchall() == [("1",)]
    assert db.conn.execute(match, ("drugamab",)).fetchall() == [("2",), ("3",)]
    assert db.conn.execute("SELECT count(*) FROM measurements WHERE pmid = '1'").fetchone() == (2,)
    assert db.conn.execute("SELECT text FROM sections WHERE pmid = '1'").fetchall() == [
        ("Median survival was 9.0 months with revisumab.",)]


def test_iter_raw_all_or_some(db) -> None:
    store.save(db, [_record("1"), _record("2")])
    assert [p for p, _ in store.iter_raw(db)] == ["1", "2"]
    assert list(store.iter_raw(db, ["2", "9"])) == [("2", b"<PubmedArticle>2</PubmedArticle>")]


def test_evidence_view_joins_measurements_to_articles(db) -> None:
    store.save(db, [_record("1")])
    cols, rows = store.query(db, "SELECT pmid, title, kind, value, evidence, extractor_version FROM evidence")
    assert rows == [("1", "An invented trial 1", "median", 9.0, "Median survival was 9.0 months with drugamab.",
                     __version__)]


@pytest.mark.parametrize("sql", [
    "INSERT INTO articles (pmid) VALUES ('x')",
    "DELETE FROM articles",
    "UPDATE articles SET title = ''",
    "DROP TABLE measurements",
    "CREATE TABLE t (a)",
    "ATTACH DATABASE 'other.db' AS other",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA query_only = OFF",
    "VACUUM",
    "BEGIN",
])
def test_query_refuses_writes(db, sql: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store.save(db, [_record("1")])
    with pytest.raises(StoreError, match="read-only"):
        store.query(db, sql)
    assert store.stored_pmids(db, "articles") == {"1"}
    assert not (tmp_path / "other.db").exists()
    store.save(db, [_record("2")])  # the connection is writable again for the library


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM articles",
    "SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'invented'",
    "SELECT value FROM json_each('[1, 2]')",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT x FROM c",
    "PRAGMA table_info(articles)",
])
def test_query_allows_reads(db, sql: str) -> None:
    store.save(db, [_record("1")])
    cols, rows = store.query(db, sql)
    assert cols and rows


def test_query_errors_are_one_line_store_errors(db) -> None:
    with pytest.raises(StoreError, match="syntax error"):
        store.query(db, "SELEC 1")
    with pytest.raises(StoreError):
        store.query(db, "SELECT 1; SELECT 2")


def test_two_versions_of_a_pmid_in_one_input_end_the_same_on_every_run(db, monkeypatch: pytest.MonkeyPatch) -> None:
    """Baseline files can hold a PMID twice (a revised version later): re-running ends identical."""
    ticks = iter(range(1000))
    monkeypatch.setattr(store, "now", lambda: f"t{next(ticks)}")

    def run() -> list:
        for xml in (b"<PubmedArticle>v1</PubmedArticle>", b"<PubmedArticle>v2</PubmedArticle>"):
            rec = _record("1")
            rec.xml = xml
            store.save(db, [rec])
        return db.conn.execute("SELECT * FROM raw_records").fetchall()

    first = run()
    assert store.raw_xml(db, "1") == b"<PubmedArticle>v2</PubmedArticle>"
    assert run() == first
