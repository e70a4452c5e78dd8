"""ingest.py: files -> database counts, deletions, bad files, idempotent re-ingest, re-extraction from raw XML."""
from __future__ import annotations

from pathlib import Path

import pytest

from extractor import store
from extractor.ingest import ingest_files, ingest_source, reextract
from extractor.models import Article, Measurement, Trial


def fake_extract(article: Article) -> tuple[Trial, list[Measurement]]:
    """A stand-in extractor: one measurement per section, so counts are known exactly."""
    ms = [Measurement(kind="rate", endpoint="ORR", value=float(i + 1), unit="%", evidence=s.text,
                      section=s.label, start=s.offset, end=s.offset + len(s.text))
          for i, s in enumerate(article.sections)]
    return Trial(registration=article.registry_ids, arms=["a", "b"]), ms


def boom(article: Article) -> tuple[Trial, list[Measurement]]:
    if article.pmid == "99900002":
        raise ValueError("cannot read this one")
    return fake_extract(article)


def _counts(db) -> dict[str, int]:
    return {t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("articles", "sections", "trials", "measurements", "raw_records")}


def _dump(db) -> list:
    return [db.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("articles", "sections", "trials", "measurements", "raw_records")]


@pytest.fixture
def demo_files(fixtures_dir: Path) -> list[Path]:
    return [fixtures_dir / "efetch_trials.xml", fixtures_dir / "baseline_sample.xml.gz"]


def test_ingest_fixtures_counts_and_deletion(demo_files: list[Path]) -> None:
    db = store.open_db(":memory:")
    s = ingest_files(db, demo_files, extractor=fake_extract)
    # 6 + 3 records read; 99900005 then deleted by the baseline's DeleteCitation (99900077 was never there)
    assert (s.files, s.articles, s.deleted, s.without_abstract, s.errors) == (2, 9, 1, 1, [])
    assert store.stored_pmids(db, "articles") == {f"9990000{i}" for i in (1, 2, 3, 4, 6, 7, 8, 9)}
    assert s.measurements == 4 + 4 + 1 + 4 + 1 + 4 + 1 + 1  # one per section of each stored record
    assert _counts(db) == {"articles": 8, "sections": 20, "trials": 8, "measurements": 20, "raw_records": 8}
    rct = dict(db.conn.execute("SELECT pmid, is_rct FROM articles").fetchall())
    assert rct["99900001"] == 1 and rct["99900008"] == 0
    assert "9 articles" in s.line() and "1 deleted" in s.line()


def test_reingest_changes_nothing(demo_files: list[Path]) -> None:
    db = store.open_db(":memory:")
    ingest_files(db, demo_files, extractor=fake_extract)
    before = _dump(db)
    ingest_files(db, demo_files, extractor=fake_extract)
    assert _dump(db) == before
    logs = db.conn.execute("SELECT name, articles, finished_at IS NOT NULL FROM ingest_log ORDER BY name").fetchall()
    assert [(Path(n).name, a, f) for n, a, f in logs] == [("baseline_sample.xml.gz", 3, 1), ("efetch_trials.xml", 6, 1)]


def test_bad_files_reported_others_still_ingested(fixtures_dir: Path) -> None:
    db = store.open_db(":memory:")
    broken = sorted((fixtures_dir / "broken").iterdir())
    paths = [*broken[:3], fixtures_dir / "baseline_sample.xml.gz", *broken[3:], fixtures_dir / "nope.xml"]
    s = ingest_files(db, paths, extractor=fake_extract)
    assert len(s.errors) == len(broken) + 1 and all("\n" not in e for e in s.errors)
    assert any("nope.xml: cannot open" in e for e in s.errors)
    # the good file and the two whole records before the break in truncated.xml
    assert store.stored_pmids(db, "articles") == {"99900007", "99900008", "99900009", "99900001", "99900002"}
    unfinished = db.conn.execute("SELECT name FROM ingest_log WHERE finished_at IS NULL").fetchall()
    assert len(unfinished) == len(broken)


def test_truncated_file_keeps_whole_records_only(fixtures_dir: Path) -> None:
    db = store.open_db(":memory:")
    s = ingest_files(db, [fixtures_dir / "broken" / "truncated.xml"], extractor=fake_extract, batch_size=1)
    assert len(s.errors) == 1 and "truncated" in s.errors[0]
    assert store.stored_pmids(db, "articles") == {"99900001", "99900002"}
    sections = db.conn.execute("SELECT count(*) FROM sections WHERE pmid = '99900002'").fetchone()
    assert sections == (4,)


def test_extraction_failure_keeps_article_and_counts_reason(fixtures_dir: Path) -> None:
    db = store.open_db(":memory:")
    s = ingest_files(db, [fixtures_dir / "efetch_trials.xml"], extractor=boom)
    assert s.skipped == {"extraction failed (ValueError)": 1}
    assert "99900002" in store.stored_pmids(db, "articles") and "99900002" in store.stored_pmids(db)
    assert store.stored_pmids(db, "measurements") >= {"99900001"} and "99900002" not in store.stored_pmids(
        db, "measurements")
    assert "1 skipped (extraction failed (ValueError): 1)" in s.line()


def test_reextract_from_raw_records_without_refetch(fixtures_dir: Path) -> None:
    db = store.open_db(":memory:")
    ingest_files(db, [fixtures_dir / "efetch_trials.xml"], extract=False)
    assert _counts(db)["measurements"] == 0
    s = reextract(db, ["99900001"], extractor=fake_extract)
    assert (s.articles, s.measurements) == (1, 4)
    s = reextract(db, extractor=fake_extract)
    assert s.articles == 6 and _counts(db)["measurements"] == 4 + 4 + 1 + 4 + 0 + 1
    sources = {r[0] for r in db.conn.execute("SELECT source FROM articles")}
    assert sources == {str(fixtures_dir / "efetch_trials.xml")}  # re-extraction keeps where it came from


def test_ingest_source_accepts_bytes(fixtures_dir: Path) -> None:
    db = store.open_db(":memory:")
    data = (fixtures_dir / "efetch_trials.xml").read_bytes()
    s = ingest_source(db, data, name="efetch:batch-1", extractor=fake_extract)
    assert s.articles == 6
    assert db.conn.execute("SELECT DISTINCT source FROM articles").fetchall() == [("efetch:batch-1",)]


def test_small_batches_give_the_same_database(demo_files: list[Path]) -> None:
    one, many = store.open_db(":memory:"), store.open_db(":memory:")
    ingest_files(one, demo_files, extractor=fake_extract)
    ingest_files(many, demo_files, extractor=fake_extract, batch_size=2)
    assert _dump(one) == _dump(many)


def test_progress_reports_bytes_read(demo_files: list[Path]) -> None:
    db = store.open_db(":memory:")
    seen: list[int] = []
    ingest_files(db, demo_files, extract=False, progress=seen.append)
    assert sum(seen) == sum(p.stat().st_size for p in demo_files)


def test_real_extractor_runs_end_to_end(fixtures_dir: Path) -> None:
    """With the project's extractor: the ZEN-1 PFS hazard ratio arrives in the database."""
    db = store.open_db(":memory:")
    s = ingest_files(db, [fixtures_dir / "efetch_trials.xml"])
    assert s.errors == [] and s.measurements > 0
    rows = db.conn.execute("SELECT value, ci_low, ci_high FROM measurements WHERE pmid = '99900001'"
                           " AND kind = 'hazard_ratio'").fetchall()
    assert (0.52, 0.41, 0.66) in rows


def test_real_corpus_ingest_is_idempotent(shared_dir: Path) -> None:
    """dev.xml (78 real abstracts) twice: same rows."""
    db = store.open_db(":memory:")
    first = ingest_files(db, [shared_dir / "corpus" / "dev.xml"], extractor=fake_extract)
    before = _dump(db)
    ingest_files(db, [shared_dir / "corpus" / "dev.xml"], extractor=fake_extract)
    assert first.articles == 78 and first.errors == [] and _dump(db) == before
