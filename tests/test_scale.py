"""Bulk ingest: update-file semantics, --jobs equivalence, kill-and-resume, --rct-only.

The input files are generated in tmp_path from the project's own fixture records
(fresh PMIDs per copy), so no real abstract text is involved.
"""
from __future__ import annotations

import copy
import gzip
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from extractor import store
from extractor.cli import main
from extractor.errors import RuleError
from extractor.gate import NOT_RCT, Gate, GateRules, check_examples, rct_gate
from extractor.parallel import ingest_paths
from extractor.parse import iter_records

ROOT = Path(__file__).resolve().parent.parent
PER_FILE = 90
BASE = 70000000
REVISED = BASE + 3          # revised in file 2
DELETED = (BASE + 5, BASE + PER_FILE + 7, BASE + 99999)  # deleted by file 3 (the last never existed)


# --- generated input ---------------------------------------------------------------------

def _templates(fixtures_dir: Path) -> list[etree._Element]:
    out = []
    for name in ("efetch_trials.xml", "baseline_sample.xml.gz"):
        raw = (fixtures_dir / name).read_bytes()
        root = etree.fromstring(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        out += [r for r in root if r.tag in ("PubmedArticle", "PubmedBookArticle")]
    return out


def _copy(template: etree._Element, pmid: int, *, revised: bool = False) -> etree._Element:
    rec = copy.deepcopy(template)
    for el in rec.iter("PMID"):  # the record's own, not those of CommentsCorrections
        if el.getparent().tag in ("MedlineCitation", "BookDocument"):
            el.text = str(pmid)
    for el in rec.iter("ArticleId"):
        if el.get("IdType") == "pubmed" and el.getparent().getparent().tag in ("PubmedData", "PubmedBookData"):
            el.text = str(pmid)
    if revised:
        for t in rec.iter("ArticleTitle"):
            t.text = (t.text or "") + " (corrected version)"
    return rec


def _write(path: Path, records: list[etree._Element], deletions: tuple[int, ...] = ()) -> Path:
    root = etree.Element("PubmedArticleSet")
    root.extend(records)
    if deletions:
        dc = etree.SubElement(root, "DeleteCitation")
        for pmid in deletions:
            etree.SubElement(dc, "PMID", Version="1").text = str(pmid)
    data = b'<?xml version="1.0" encoding="utf-8"?>\n' + etree.tostring(root)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def make_files(folder: Path, fixtures_dir: Path, n_files: int = 4) -> list[Path]:
    """n_files of PER_FILE records; file 2 revises a file-1 record, file 3 deletes two."""
    tpl = _templates(fixtures_dir)
    files = []
    for f in range(n_files):
        recs = [_copy(tpl[i % len(tpl)], BASE + i) for i in range(f * PER_FILE, (f + 1) * PER_FILE)]
        if f == 1:
            recs.append(_copy(tpl[3 % len(tpl)], REVISED, revised=True))
        files.append(_write(folder / f"upd{f + 1:04d}.xml{'.gz' if f % 2 == 0 else ''}", recs,
                            DELETED if f == 2 else ()))
    return files


# --- comparing databases -----------------------------------------------------------------

TABLES = {
    "articles": "SELECT * FROM articles ORDER BY pmid",
    "sections": "SELECT * FROM sections ORDER BY pmid, idx",
    "trials": "SELECT * FROM trials ORDER BY pmid",
    "measurements": "SELECT * FROM measurements ORDER BY pmid, idx",
    "raw_records": "SELECT pmid, sha1, source FROM raw_records ORDER BY pmid",
    "ingest_log": "SELECT name, size, sha256, articles, measurements, deleted, skipped, finished_at IS NOT NULL"
                  " FROM ingest_log ORDER BY name",
}


def content(path: Path) -> tuple[dict[str, int], str]:
    """Row counts per table and one hash over all rows (timestamps left out)."""
    conn = sqlite3.connect(path)
    counts, h = {}, hashlib.sha256()
    for table, sql in TABLES.items():
        rows = conn.execute(sql).fetchall()
        counts[table] = len(rows)
        h.update(repr((table, rows)).encode())
    conn.close()
    return counts, h.hexdigest()


def fresh_db(path: Path) -> store.sqlite_utils.Database:
    return store.open_db(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, fixtures_dir) -> list[Path]:
    return make_files(tmp_path_factory.mktemp("in"), fixtures_dir)


@pytest.fixture(scope="module")
def clean(tmp_path_factory, inputs) -> Path:
    """An uninterrupted --jobs 1 run over all files: the reference database."""
    path = tmp_path_factory.mktemp("clean") / "clean.db"
    db = fresh_db(path)
    summary = ingest_paths(db, inputs, jobs=1)
    assert not summary.errors
    db.conn.close()
    return path


# --- update-file semantics ---------------------------------------------------------------

def test_update_files_revise_and_delete_in_order(clean, inputs):
    conn = sqlite3.connect(clean)
    title = conn.execute("SELECT title FROM articles WHERE pmid = ?", (str(REVISED),)).fetchone()[0]
    assert "(corrected version)" in title  # file 2's version replaced file 1's
    for pmid in map(str, DELETED):
        for table in ("articles", "sections", "trials", "measurements", "raw_records"):
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE pmid = ?", (pmid,)).fetchone()[0] == 0
    log = conn.execute("SELECT name, deleted, finished_at FROM ingest_log ORDER BY name").fetchall()
    assert [r[1] for r in log] == [0, 0, 2, 0]  # the never-stored PMID is not counted
    assert all(r[2] for r in log)
    n = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    assert n == len(inputs) * PER_FILE - 2
    conn.close()


def test_rerun_skips_finished_files_and_force_reapplies_in_given_order(tmp_path, inputs):
    db = fresh_db(tmp_path / "u.db")
    ingest_paths(db, inputs[:2], jobs=1)
    again = ingest_paths(db, inputs[:2], jobs=1)
    assert again.files_skipped == 2 and again.articles == 0
    assert "already ingested" in again.line()
    # an old file given again is skipped: it must not undo the later revision
    ingest_paths(db, inputs[:1], jobs=1)
    title = db.conn.execute("SELECT title FROM articles WHERE pmid = ?", (str(REVISED),)).fetchone()[0]
    assert "(corrected version)" in title
    # --force applies it again, as asked: its older version of the record comes back
    forced = ingest_paths(db, inputs[:1], jobs=1, force=True)
    assert forced.files_skipped == 0 and forced.articles == PER_FILE
    title = db.conn.execute("SELECT title FROM articles WHERE pmid = ?", (str(REVISED),)).fetchone()[0]
    assert "(corrected version)" not in title


def test_jobs_2_gives_the_same_database_as_jobs_1(tmp_path, clean, inputs):
    db = fresh_db(tmp_path / "j2.db")
    summary = ingest_paths(db, inputs, jobs=2, batch_size=37)
    db.conn.close()
    assert not summary.errors
    assert content(tmp_path / "j2.db") == content(clean)


def test_jobs_1_freezes_the_gc_for_the_run_only(tmp_path, inputs, monkeypatch):
    """In-process extraction runs with the warmed-up objects frozen out of the cyclic GC,
    and the caller's process gets its GC back as it was (frozen objects stay frozen)."""
    import gc

    from extractor import parallel

    real = parallel.default_extractor()
    seen: list[int] = []

    def spy(article):
        seen.append(gc.get_freeze_count())
        return real(article)

    monkeypatch.setattr(parallel, "default_extractor", lambda: spy)
    db = fresh_db(tmp_path / "gc.db")
    before = gc.get_freeze_count()
    assert before == 0
    ingest_paths(db, inputs[:1], jobs=1)
    assert seen and min(seen) > 0 and gc.get_freeze_count() == 0
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        ingest_paths(db, inputs[:1], jobs=1, force=True)
        assert gc.get_freeze_count() >= mine
    finally:
        gc.unfreeze()
    db.conn.close()


# --- kill and resume ---------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture(scope="module")
def clean_rct(tmp_path_factory, inputs) -> Path:
    """An uninterrupted --jobs 1 --rct-only run over all files."""
    path = tmp_path_factory.mktemp("clean_rct") / "clean.db"
    db = fresh_db(path)
    assert not ingest_paths(db, inputs, jobs=1, rct_only=True).errors
    db.conn.close()
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and SIGKILL")
@pytest.mark.parametrize("rct_only", [False, True], ids=["record-workers", "rct-only-file-workers"])
def test_sigkill_mid_run_then_rerun_equals_clean_run(tmp_path, request, inputs, rct_only):
    clean = request.getfixturevalue("clean_rct" if rct_only else "clean")
    with sqlite3.connect(clean) as c:
        per_file = c.execute("SELECT articles FROM ingest_log ORDER BY name").fetchone()[0]
    path = tmp_path / "killed.db"
    fresh_db(path).conn.close()
    cmd = [sys.executable, "-m", "extractor", "ingest", "--db", str(path), "--jobs", "2", "--batch-size", "10",
           *(["--rct-only"] if rct_only else []), *map(str, inputs)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reader = sqlite3.connect(path, timeout=30)  # WAL: readers work while the ingest writes
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid) or workers
            if reader.execute("SELECT count(*) FROM articles").fetchone()[0] >= per_file * 3 // 2:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the ingest ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.close()
    assert workers, "the ingest ran no worker processes"
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "workers outlived the killed ingest"

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.execute("INSERT INTO articles_fts(articles_fts) VALUES ('integrity-check')")
    n_articles = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    assert per_file <= n_articles < len(inputs) * per_file
    # no half-written article: each one has its trial row, raw record and every section
    half = conn.execute("""
        SELECT a.pmid FROM articles a
        WHERE NOT EXISTS (SELECT 1 FROM trials t WHERE t.pmid = a.pmid)
           OR NOT EXISTS (SELECT 1 FROM raw_records r WHERE r.pmid = a.pmid)
           OR length(a.abstract) != coalesce((SELECT sum(length(text)) + count(*) - 1 FROM sections s
                                              WHERE s.pmid = a.pmid), 0)""").fetchall()
    assert half == []
    unfinished = conn.execute("SELECT count(*) FROM ingest_log WHERE finished_at IS NULL").fetchone()[0]
    conn.close()
    assert unfinished <= 2  # the file being written (and, with file workers, the next one)

    db = fresh_db(path)
    summary = ingest_paths(db, inputs, jobs=1, rct_only=rct_only)
    db.conn.close()
    assert summary.files_skipped >= 1 and not summary.errors
    assert content(path) == content(clean)


# --- --rct-only and the gate -------------------------------------------------------------

def test_gate_rule_examples_pass():
    check_examples()


def test_gate_keeps_publication_type_or_randomization_language(fixtures_dir):
    gate = rct_gate()
    arts = {p.article.pmid: p.article for p in iter_records(fixtures_dir / "baseline_sample.xml.gz")
            if hasattr(p, "article")}
    assert gate.keeps(arts["99900007"])        # indexed D016449
    assert not gate.keeps(arts["99900008"])    # observational study
    no_type = arts["99900007"].model_copy(update={"publication_types": []})
    assert gate.keeps(no_type)                 # "were randomized" in its abstract
    assert not gate.keeps_text("Patients in the non-randomised arm were older.")


def test_bad_gate_rules_are_refused():
    with pytest.raises(RuleError):
        Gate(GateRules(publication_types=[], hint="random", patterns=["(random"], examples=[]))
    with pytest.raises(ValueError, match="does not contain the hint"):
        GateRules(publication_types=[], hint="random", patterns=["allocated by lot"], examples=[])


def test_cli_rct_only_skips_and_does_not_store_non_trials(tmp_path, fixtures_dir):
    db = tmp_path / "r.db"
    files = [str(fixtures_dir / "efetch_trials.xml"), str(fixtures_dir / "baseline_sample.xml.gz")]
    result = CliRunner().invoke(main, ["ingest", "--rct-only", "--jobs", "2", "--db", str(db), *files])
    assert result.exit_code == 0, result.output
    assert f"{NOT_RCT}: 4" in result.output
    conn = sqlite3.connect(db)
    pmids = {r[0] for r in conn.execute("SELECT pmid FROM articles")}
    assert pmids == {"99900001", "99900002", "99900003", "99900004", "99900007"}
    assert conn.execute("SELECT count(*) FROM measurements").fetchone()[0] > 0
    conn.close()
    again = CliRunner().invoke(main, ["ingest", "--rct-only", "--db", str(db), *files])
    assert again.exit_code == 0 and "2 file(s) already ingested" in again.output


def test_cli_bad_file_among_good_ones(tmp_path, fixtures_dir):
    db = tmp_path / "b.db"
    result = CliRunner().invoke(main, ["ingest", "--jobs", "2", "--db", str(db),
                                       str(fixtures_dir / "broken" / "truncated.xml"),
                                       str(fixtures_dir / "baseline_sample.xml.gz")])
    assert result.exit_code == 1
    assert "truncated.xml" in result.output and "Traceback" not in result.output
    conn = sqlite3.connect(db)
    log = dict(conn.execute("SELECT name, finished_at IS NOT NULL FROM ingest_log"))
    conn.close()
    assert log == {str(fixtures_dir / "broken" / "truncated.xml"): 0,
                   str(fixtures_dir / "baseline_sample.xml.gz"): 1}


def test_a_killed_worker_is_a_one_line_error_and_the_rerun_completes(tmp_path, inputs, monkeypatch):
    import extractor.parallel as parallel
    from extractor.errors import ExtractorError

    real = parallel.default_extractor

    def dying():
        fn = real()

        def extract(article):
            if article.pmid == str(BASE + 37):  # a trial with an abstract
                os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
            return fn(article)
        return extract

    monkeypatch.setattr(parallel, "default_extractor", dying)  # forked workers inherit it
    db = fresh_db(tmp_path / "w.db")
    with pytest.raises(ExtractorError, match="worker process died"):
        ingest_paths(db, inputs[:1], jobs=2, batch_size=10)
    assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    monkeypatch.setattr(parallel, "default_extractor", real)
    summary = ingest_paths(db, inputs[:1], jobs=2)
    assert summary.articles == PER_FILE and not summary.errors


def test_rct_only_file_workers_give_the_same_database_as_jobs_1(tmp_path, inputs):
    one, two = fresh_db(tmp_path / "r1.db"), fresh_db(tmp_path / "r2.db")
    s1 = ingest_paths(one, inputs, jobs=1, rct_only=True)
    s2 = ingest_paths(two, inputs, jobs=2, rct_only=True, batch_size=7)  # whole files per worker
    one.conn.close()
    two.conn.close()
    assert s1.skipped[NOT_RCT] == s2.skipped[NOT_RCT] > 0
    assert s1.articles == s2.articles > 0 and s1.deleted == s2.deleted
    assert content(tmp_path / "r1.db") == content(tmp_path / "r2.db")


def test_gate_pre_filter_on_the_element_never_drops_what_the_gate_keeps(fixtures_dir):
    from extractor.parse import article_from_element

    gate = rct_gate()
    elements = _templates(fixtures_dir)
    for el in list(elements):  # the same records without their publication types
        bare = copy.deepcopy(el)
        for pt in list(bare.iter("PublicationType")):
            pt.getparent().remove(pt)
        elements.append(bare)
    verdicts = [(gate.may_keep(el), gate.keeps(article_from_element(el))) for el in elements]
    assert all(pre or not full for pre, full in verdicts)  # exact: only records the gate drops
    assert sum(not pre for pre, _full in verdicts) >= 4     # and it does drop records
