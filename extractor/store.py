"""SQLite shape and idempotent saves.

The whole shape (tables, indexes, FTS, views) is module data applied by
`ensure_shape(db)`, so every entry point (ingest, fetch, report) opens the same
database the same way. Each batch of articles is written in one transaction: an
article's rows (article, sections, trial, measurements, raw record) land together or
not at all, and re-saving an article replaces them with identical rows.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import StoreError
from .views import REPORT_VIEWS

if TYPE_CHECKING:  # sqlite-utils is imported by open_db (it imports pandas, 0.3 s, when installed)
    import sqlite_utils

    from .models import Article, Measurement, Trial

DEFAULT_DB = "evidence.db"

TABLES = """
CREATE TABLE IF NOT EXISTS articles (
    pmid TEXT PRIMARY KEY,
    doi TEXT,
    pmcid TEXT,
    title TEXT NOT NULL DEFAULT '',
    journal TEXT,
    year INTEGER,
    language TEXT NOT NULL DEFAULT '[]',          -- JSON list
    publication_types TEXT NOT NULL DEFAULT '[]', -- JSON list of {ui, name}
    mesh TEXT NOT NULL DEFAULT '[]',              -- JSON list of {ui, descriptor, major, qualifiers}
    keywords TEXT NOT NULL DEFAULT '[]',          -- JSON list
    registry_ids TEXT NOT NULL DEFAULT '[]',      -- JSON list (DataBankList)
    abstract TEXT NOT NULL DEFAULT '',
    is_rct INTEGER NOT NULL DEFAULT 0,
    source TEXT
);
CREATE TABLE IF NOT EXISTS sections (
    pmid TEXT NOT NULL REFERENCES articles(pmid) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    label TEXT,
    category TEXT,
    text TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    PRIMARY KEY (pmid, idx)
);
CREATE TABLE IF NOT EXISTS trials (
    pmid TEXT PRIMARY KEY REFERENCES articles(pmid) ON DELETE CASCADE,
    registration TEXT NOT NULL DEFAULT '[]',      -- JSON list
    phase TEXT,
    n_randomized INTEGER,
    arms TEXT NOT NULL DEFAULT '[]',              -- JSON list, experimental first
    allocation_ratio TEXT
);
CREATE TABLE IF NOT EXISTS measurements (
    pmid TEXT NOT NULL REFERENCES articles(pmid) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    arm TEXT,
    comparison TEXT,                              -- JSON [experimental, reference] or NULL
    population TEXT,
    value REAL NOT NULL,
    unit TEXT,
    ci_low REAL,
    ci_high REAL,
    ci_level REAL,
    p_value TEXT,
    timepoint TEXT,
    n INTEGER,
    n_total INTEGER,
    evidence TEXT NOT NULL,
    section TEXT,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    log_value REAL,
    se REAL,
    flags TEXT NOT NULL DEFAULT '[]',             -- JSON list of consistency flags
    extractor_version TEXT NOT NULL,
    PRIMARY KEY (pmid, idx)
);
CREATE TABLE IF NOT EXISTS raw_records (
    pmid TEXT PRIMARY KEY,
    xml BLOB NOT NULL,                            -- zlib-compressed <PubmedArticle> element
    sha1 TEXT NOT NULL,                           -- of the uncompressed XML
    source TEXT,
    fetched_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_log (
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    articles INTEGER NOT NULL DEFAULT 0,
    measurements INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    finished_at TEXT,
    PRIMARY KEY (name, sha256)
);
CREATE INDEX IF NOT EXISTS measurements_kind_endpoint ON measurements(kind, endpoint);
CREATE INDEX IF NOT EXISTS articles_year ON articles(year);
CREATE INDEX IF NOT EXISTS articles_doi ON articles(doi);
CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(
    title, abstract, content='articles', content_rowid='rowid'
);
-- A new article's FTS row is written by save() at the end of its batch (FTS_INSERT),
-- not by an AFTER INSERT trigger, which costs 2-3x more. Updates and deletes stay triggers.
DROP TRIGGER IF EXISTS articles_ai;
CREATE TRIGGER IF NOT EXISTS articles_ad AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, title, abstract)
        VALUES ('delete', old.rowid, old.title, old.abstract);
END;
CREATE TRIGGER IF NOT EXISTS articles_au AFTER UPDATE ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, title, abstract)
        VALUES ('delete', old.rowid, old.title, old.abstract);
    INSERT INTO articles_fts(rowid, title, abstract) VALUES (new.rowid, new.title, new.abstract);
END;
"""

# Views are (name, SELECT) pairs, dropped and re-created by ensure_shape so a changed
# definition reaches old databases. report.py adds evidence_table and meta_input here.
VIEWS: dict[str, str] = {
    "evidence": """
SELECT m.pmid, a.title, a.journal, a.year, m.kind, m.endpoint, m.arm, m.comparison,
       m.population, m.value, m.unit, m.ci_low, m.ci_high, m.ci_level, m.p_value,
       m.timepoint, m.n, m.n_total, m.evidence, m.section, m.start, m."end",
       m.log_value, m.se, m.flags, m.extractor_version
FROM measurements m JOIN articles a ON a.pmid = m.pmid
""",
    **REPORT_VIEWS,  # evidence_table, meta_input (extractor/views.py, read by report.py)
}

MEASUREMENT_COLUMNS = (
    "kind", "endpoint", "arm", "comparison", "population", "value", "unit", "ci_low",
    "ci_high", "ci_level", "p_value", "timepoint", "n", "n_total", "evidence", "section",
    "start", "end", "log_value", "se", "flags",
)


@dataclass
class Record:
    """Everything stored for one article, written together."""

    article: Article
    trial: Trial
    measurements: Sequence[Measurement]
    xml: bytes | None = None
    source: str | None = None
    is_rct: bool = False


def open_db(path: str | Path = DEFAULT_DB) -> sqlite_utils.Database:
    """Open (creating if needed) a database with the full shape applied, in WAL mode."""
    import sqlite_utils

    conn = sqlite3.connect(str(path), timeout=60, isolation_level=None)
    db = sqlite_utils.Database(conn)
    conn.execute("PRAGMA foreign_keys = ON")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    ensure_shape(db)
    return db


def ensure_shape(db: sqlite_utils.Database) -> None:
    """Apply tables, indexes, FTS and views; safe to run on every open."""
    db.conn.executescript(TABLES)
    with db.conn:
        for name, select in VIEWS.items():
            db.conn.execute(f"DROP VIEW IF EXISTS {name}")
            db.conn.execute(f"CREATE VIEW {name} AS {select.strip()}")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_list(items: list) -> str:
    """json.dumps of a list; most lists here are empty, and "[]" needs no encoder."""
    return json.dumps(items) if items else "[]"


def _article_row(rec: Record) -> tuple:
    a = rec.article
    return (
        a.pmid, a.doi, a.pmcid, a.title, a.journal, a.year, _json_list(a.language),
        _json_list([p.model_dump() for p in a.publication_types]),
        _json_list([m.model_dump() for m in a.mesh]), _json_list(a.keywords),
        _json_list(a.registry_ids), a.abstract, int(rec.is_rct), rec.source,
    )


def measurement_row(pmid: str, idx: int, m: Measurement) -> tuple:
    d = m.model_dump()
    d["comparison"] = json.dumps(d["comparison"]) if d["comparison"] is not None else None
    d["flags"] = json.dumps(d["flags"])
    return (pmid, idx, *(d[c] for c in MEASUREMENT_COLUMNS), __version__)


FTS_INSERT = "INSERT INTO articles_fts(rowid, title, abstract) VALUES (?, ?, ?)"
"""Index a newly inserted article (rowid, title, abstract) for full-text search.

save() runs these at the end of a batch's transaction, not after each article: FTS5
writes out its pending index data at every statement savepoint (a trigger, an INSERT
OR REPLACE, a foreign key), so indexing between other writes costs 2-3x more (about
0.25 against 0.1 ms a bench article). An article updated in the same batch has its
pending rows written first, since its update trigger deletes from the index."""

_ARTICLE_COLS = ("pmid", "doi", "pmcid", "title", "journal", "year", "language",
                 "publication_types", "mesh", "keywords", "registry_ids", "abstract",
                 "is_rct", "source")
_IN_BATCH = "pmid IN (SELECT value FROM json_each(?))"  # one JSON list parameter: no variable limit
_SELECT_ARTICLES = f"SELECT {', '.join(_ARTICLE_COLS)} FROM articles WHERE {_IN_BATCH}"
_SELECT_RAW_SHA1 = f"SELECT pmid, sha1 FROM raw_records WHERE {_IN_BATCH}"
_INSERT_ARTICLE = f"INSERT INTO articles ({', '.join(_ARTICLE_COLS)}) VALUES ({', '.join('?' * len(_ARTICLE_COLS))})"
_UPDATE_ARTICLE = f"UPDATE articles SET {', '.join(f'{c} = ?' for c in _ARTICLE_COLS[1:])} WHERE pmid = ?"
_INSERT_SECTION = 'INSERT INTO sections (pmid, idx, label, category, text, "offset") VALUES (?, ?, ?, ?, ?, ?)'
_REPLACE_TRIAL = ("INSERT OR REPLACE INTO trials (pmid, registration, phase, n_randomized, arms, allocation_ratio)"
                  " VALUES (?, ?, ?, ?, ?, ?)")
_MEASUREMENT_COLS = ", ".join(f'"{c}"' for c in ("pmid", "idx", *MEASUREMENT_COLUMNS, "extractor_version"))
_INSERT_MEASUREMENT = (f"INSERT INTO measurements ({_MEASUREMENT_COLS})"
                       f" VALUES ({', '.join('?' * (len(MEASUREMENT_COLUMNS) + 3))})")


def save(db: sqlite_utils.Database, records: Iterable[Record]) -> int:
    """Write a batch of articles in one transaction; returns the number of measurements.

    An unchanged article is left untouched (same rows, no FTS churn), so re-ingesting
    the same input changes nothing. Articles and raw records are written one by one (each
    is compared with what is stored, looked up for the whole batch in one query); an
    article's sections, trial and measurements are replaced for the whole batch at once,
    the last version of a PMID that occurs twice winning, as it would one by one.
    """
    conn = db.conn
    records = list(records)
    n_meas = 0
    fts: list[tuple] = []  # new articles' FTS rows, written together (see FTS_INSERT)
    children: dict[str, tuple[list[tuple], tuple, list[tuple]]] = {}  # pmid -> sections, trial, measurements
    stored_at = now()  # one timestamp per batch (one transaction): datetime.now() per record is 3% of save
    with transaction(conn):
        stored = _lookup(conn, _SELECT_ARTICLES, [r.article.pmid for r in records])
        sha1s = _lookup(conn, _SELECT_RAW_SHA1, [r.article.pmid for r in records if r.xml is not None])
        for rec in records:
            a = rec.article
            row = _article_row(rec)
            old = stored.get(a.pmid)
            stored[a.pmid] = row
            if old is None:
                fts.append((conn.execute(_INSERT_ARTICLE, row).lastrowid, a.title, row[11]))
            elif old != row:
                conn.executemany(FTS_INSERT, fts)  # the update trigger must find them indexed
                fts.clear()
                conn.execute(_UPDATE_ARTICLE, (*row[1:], a.pmid))
            t = rec.trial
            children[a.pmid] = (
                [(a.pmid, i, s.label, s.category, s.text, s.offset) for i, s in enumerate(a.sections)],
                (a.pmid, _json_list(t.registration), t.phase, t.n_randomized, _json_list(t.arms),
                 t.allocation_ratio),
                [measurement_row(a.pmid, i, m) for i, m in enumerate(rec.measurements)],
            )
            n_meas += len(rec.measurements)
            if rec.xml is not None:
                _save_raw(conn, a.pmid, rec.xml, rec.source, stored_at, sha1s)
        pmids = [(pmid,) for pmid in children]
        conn.executemany("DELETE FROM sections WHERE pmid = ?", pmids)
        conn.executemany(_INSERT_SECTION, [r for sections, _t, _m in children.values() for r in sections])
        conn.executemany(_REPLACE_TRIAL, [trial for _s, trial, _m in children.values()])
        conn.executemany("DELETE FROM measurements WHERE pmid = ?", pmids)
        conn.executemany(_INSERT_MEASUREMENT, [r for _s, _t, rows in children.values() for r in rows])
        conn.executemany(FTS_INSERT, fts)
    return n_meas


def _lookup(conn: sqlite3.Connection, select: str, pmids: list[str]) -> dict[str, tuple]:
    """PMID -> stored row (first column the PMID) for a whole batch, in one query."""
    return {r[0]: r for r in conn.execute(select, (json.dumps(pmids),))}


def _save_raw(conn: sqlite3.Connection, pmid: str, xml: bytes, source: str | None, stored_at: str,
              sha1s: dict[str, tuple]) -> None:
    """Insert or replace one raw record unless the same XML is stored; `sha1s` (pmid ->
    (pmid, sha1) as stored) is the batch's lookup, kept up to date."""
    sha1 = hashlib.sha1(xml).hexdigest()
    old = sha1s.get(pmid)
    sha1s[pmid] = (pmid, sha1)
    if old is None or old[1] != sha1:
        # fetched_at is when the PMID was first stored: a revised version replaces the XML
        # but keeps it, so re-running a file that holds two versions of a PMID (baseline
        # files do) ends with identical rows.
        conn.execute(
            "INSERT INTO raw_records (pmid, xml, sha1, source, fetched_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(pmid) DO UPDATE SET xml = excluded.xml, sha1 = excluded.sha1, source = excluded.source",
            (pmid, zlib.compress(xml, 6), sha1, source, stored_at),
        )


def save_raw(db: sqlite_utils.Database, items: Iterable[tuple[str, bytes]], source: str | None) -> None:
    """Store raw <PubmedArticle> XML by PMID (fetch uses this before extraction)."""
    items = list(items)
    stored_at = now()
    with transaction(db.conn):
        sha1s = _lookup(db.conn, _SELECT_RAW_SHA1, [pmid for pmid, _xml in items])
        for pmid, xml in items:
            _save_raw(db.conn, pmid, xml, source, stored_at, sha1s)


def raw_xml(db: sqlite_utils.Database, pmid: str) -> bytes | None:
    row = db.conn.execute("SELECT xml FROM raw_records WHERE pmid = ?", (pmid,)).fetchone()
    return zlib.decompress(row[0]) if row else None


def iter_raw(db: sqlite_utils.Database, pmids: Iterable[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """(pmid, xml) of stored raw records, all or the given ones: re-extraction needs no refetch."""
    if pmids is None:
        for pmid, blob in db.conn.execute("SELECT pmid, xml FROM raw_records ORDER BY pmid"):
            yield pmid, zlib.decompress(blob)
    else:
        for pmid in pmids:
            xml = raw_xml(db, pmid)
            if xml is not None:
                yield pmid, xml


def stored_pmids(db: sqlite_utils.Database, table: str = "raw_records") -> set[str]:
    return {r[0] for r in db.conn.execute(f"SELECT pmid FROM {table}")}


def delete(db: sqlite_utils.Database, pmids: Iterable[str]) -> int:
    """Remove articles (and, by cascade, their rows) and raw records; returns articles removed."""
    with transaction(db.conn) as conn:
        return delete_in(conn, pmids)


def delete_in(conn: sqlite3.Connection, pmids: Iterable[str]) -> int:
    """`delete` inside the caller's open transaction (an update file's deletions and its
    finished mark must land together)."""
    n = 0
    for pmid in pmids:
        n += conn.execute("DELETE FROM articles WHERE pmid = ?", (pmid,)).rowcount
        conn.execute("DELETE FROM raw_records WHERE pmid = ?", (pmid,))
    return n


class transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (connection in autocommit)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


# What a read-only query may do: read tables, call functions, and run the PRAGMAs that
# only report (their argument is a table name, never a value to set). Everything else
# (ATTACH, a setting PRAGMA, BEGIN, any write) is denied by the authorizer up front.
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                 sqlite3.SQLITE_RECURSIVE}
_READ_PRAGMAS = {"table_info", "table_xinfo", "table_list", "index_list", "index_info",
                 "index_xinfo", "foreign_key_list", "compile_options", "data_version"}


def _read_only(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action in _READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _READ_PRAGMAS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
        return sqlite3.SQLITE_OK  # SQLite registering json_each & co. (query_only still blocks writes)
    return sqlite3.SQLITE_DENY


def query(db: sqlite_utils.Database, sql: str, params: Sequence | dict = ()) -> tuple[list[str], list[tuple]]:
    """Run one read-only statement; a write (or ATTACH, or a setting PRAGMA) is refused
    with StoreError."""
    conn = db.conn
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.set_authorizer(_read_only)
        try:
            cur = conn.execute(sql, params)
            rows = cur.fetchall()
        finally:
            conn.set_authorizer(None)
            conn.execute("PRAGMA query_only = OFF")
    except sqlite3.Error as e:
        msg = str(e)
        if "readonly" in msg or "read-only" in msg or "query_only" in msg or "authoriz" in msg:
            raise StoreError("query is read-only: write statements are refused") from None
        raise StoreError(f"SQL error: {msg}") from None
    cols = [d[0] for d in cur.description or ()]
    return cols, rows
