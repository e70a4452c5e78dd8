"""PubMed XML files -> parse -> extract -> store, in batches, with counts of what happened.

One function per stage, so bulk ingest (jobs, resume, RCT filter) can swap or wrap any
of them: `read_records` (parse), `to_record` (extract + RCT flag), `write_batch` (store,
one transaction per batch), `apply_deletions`; `ingest_source` runs them over one input,
`ingest_files` over many (a bad file is reported, the others are still ingested),
`reextract` re-runs extraction from stored raw records without any refetch.

A file that breaks part-way (truncated, malformed) keeps the records read before the
break: each record is whole or absent (it is only yielded once its end tag is parsed,
and written inside a batch transaction), the file is reported as failed, and its
ingest_log row has no finished_at. Re-ingesting the repaired file is idempotent.
"""
from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by open_db: sqlite-utils imports pandas (0.3 s) when it is installed
    import sqlite_utils

from . import store
from .errors import ExtractorError, ParseError
from .models import Article, Deletion, Measurement, Trial
from .parse import ParsedArticle, Source, is_rct, iter_records, parse_record_xml

BATCH_SIZE = 500

Progress = Callable[[int], None]
"""Called with the number of input bytes consumed since the last call."""

Extractor = Callable[[Article], tuple[Trial, list[Measurement]]]


@dataclass
class IngestSummary:
    """What one run did; `line()` is the CLI's summary."""

    files: int = 0
    articles: int = 0
    measurements: int = 0
    deleted: int = 0
    without_abstract: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, other: IngestSummary) -> None:
        self.files += other.files
        self.articles += other.articles
        self.measurements += other.measurements
        self.deleted += other.deleted
        self.without_abstract += other.without_abstract
        self.skipped.update(other.skipped)
        self.errors.extend(other.errors)
        self.seconds += other.seconds

    def line(self) -> str:
        n_skip = sum(self.skipped.values())
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(self.skipped.items()))
        text = (f"{self.files} file(s): {self.articles} articles ({self.without_abstract} without abstract), "
                f"{self.measurements} measurements, {self.deleted} deleted, {n_skip} skipped")
        if reasons:
            text += f" ({reasons})"
        if self.errors:
            text += f", {len(self.errors)} bad file(s)"
        return text + f" in {self.seconds:.1f} s"


# --- stages --------------------------------------------------------------------------------

def default_extractor() -> Extractor:
    """The extraction engine (imported on first use: ingest without extraction needs none)."""
    from .extract import extract

    return extract


def read_records(source: Source, *, name: str) -> Iterator[ParsedArticle | Deletion]:
    """Stage 1: parse (streamed)."""
    return iter_records(source, name=name)


def to_record(parsed: ParsedArticle, *, source: str | None, extractor: Extractor | None,
              summary: IngestSummary) -> store.Record:
    """Stage 2: extract design facts and measurements; an extraction failure keeps the
    article (and its raw XML, for a later `reextract`) without measurements."""
    article = parsed.article
    trial, measurements = Trial(registration=list(article.registry_ids)), []
    if extractor is not None and article.sections:
        try:
            trial, measurements = extractor(article)
        except (ExtractorError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            summary.skipped[f"extraction failed ({type(e).__name__})"] += 1
    return store.Record(article=article, trial=trial, measurements=measurements, xml=parsed.xml,
                        source=source, is_rct=is_rct(article))


def write_batch(db: sqlite_utils.Database, records: Sequence[store.Record], summary: IngestSummary) -> None:
    """Stage 3: one transaction for the whole batch."""
    if not records:
        return
    summary.measurements += store.save(db, records)
    summary.articles += len(records)
    summary.without_abstract += sum(1 for r in records if not r.article.sections)


def apply_deletions(db: sqlite_utils.Database, pmids: Iterable[str], summary: IngestSummary) -> None:
    """DeleteCitation: those PMIDs leave the database (rows and raw records)."""
    summary.deleted += store.delete(db, list(pmids))


# --- runs ----------------------------------------------------------------------------------

def ingest_source(db: sqlite_utils.Database, source: Source, *, name: str, extract: bool = True,
                  extractor: Extractor | None = None, batch_size: int = BATCH_SIZE,
                  progress: Progress | None = None) -> IngestSummary:
    """Ingest one input (path, bytes or binary stream); raises ParseError for a bad input
    after writing the whole records read before the problem."""
    summary = IngestSummary(files=1)
    t0 = time.perf_counter()
    fn = (extractor or default_extractor()) if extract else None
    batch: list[store.Record] = []
    deletions: list[str] = []
    try:
        for item in read_records(source, name=name):
            if isinstance(item, Deletion):
                deletions.append(item.pmid)
                continue
            batch.append(to_record(item, source=name, extractor=fn, summary=summary))
            if len(batch) >= batch_size:
                write_batch(db, batch, summary)
                batch = []
    except ParseError:
        _finish(db, batch, deletions, summary, t0)  # keep the whole records read before the break
        raise
    _finish(db, batch, deletions, summary, t0)
    return summary


def _finish(db: sqlite_utils.Database, batch: list[store.Record], deletions: list[str],
            summary: IngestSummary, t0: float) -> None:
    write_batch(db, batch, summary)
    if deletions:
        apply_deletions(db, deletions, summary)
    summary.seconds = time.perf_counter() - t0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _CountingReader:
    """A binary file that reports how many bytes were read (for the progress bar)."""

    def __init__(self, f, progress: Progress | None) -> None:
        self._f, self._progress = f, progress

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if self._progress is not None and data:
            self._progress(len(data))
        return data

    def peek(self, n: int = 1) -> bytes:
        return self._f.peek(n)

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._f.close()


def ingest_files(db: sqlite_utils.Database, paths: Iterable[str | Path], *, extract: bool = True,
                 extractor: Extractor | None = None, batch_size: int = BATCH_SIZE,
                 progress: Progress | None = None) -> IngestSummary:
    """Ingest each file; a bad file adds a one-line error and the run goes on."""
    total = IngestSummary()
    t0 = time.perf_counter()
    for p in paths:
        found = identify(p, total)
        if found is None:
            continue
        path, name, size, sha = found
        started = store.now()
        part = IngestSummary(files=1)
        finished: str | None = None
        try:
            with open(path, "rb") as f:
                part = ingest_source(db, _CountingReader(f, progress), name=name, extract=extract,
                                     extractor=extractor, batch_size=batch_size)
            finished = store.now()
        except ParseError as e:
            part.errors.append(str(e))
        _log(db, name, size, sha, part, started, finished)
        total.add(part)
    total.seconds = time.perf_counter() - t0
    return total


def identify(p: str | Path, total: IngestSummary) -> tuple[Path, str, int, str] | None:
    """(path, name, size, SHA-256) of an input file, the ingest log's key for it; a file
    that cannot be read is counted in `total` with a one-line error and gives None."""
    path, name = Path(p), str(p)
    try:
        return path, name, path.stat().st_size, _sha256(path)
    except OSError as e:
        total.files += 1
        total.errors.append(f"{name}: cannot open: {e.strerror}")
        return None


def _log(db: sqlite_utils.Database, name: str, size: int, sha: str, s: IngestSummary,
         started: str, finished: str | None) -> None:
    with store.transaction(db.conn):
        db.conn.execute(
            "INSERT OR REPLACE INTO ingest_log (name, size, sha256, articles, measurements, deleted, skipped,"
            " started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, size, sha, s.articles, s.measurements, s.deleted, sum(s.skipped.values()), started, finished),
        )


def reextract(db: sqlite_utils.Database, pmids: Iterable[str] | None = None, *,
              extractor: Extractor | None = None, batch_size: int = BATCH_SIZE,
              progress: Progress | None = None) -> IngestSummary:
    """Re-run extraction on stored raw records (all, or the given PMIDs): no refetch.
    `progress` is called with the number of records done since the last call."""
    summary = IngestSummary()
    t0 = time.perf_counter()
    fn = extractor or default_extractor()
    sources = dict(db.conn.execute("SELECT pmid, source FROM articles").fetchall())
    batch: list[store.Record] = []
    for pmid, xml in store.iter_raw(db, pmids):
        try:
            article = parse_record_xml(xml, name=f"raw_records:{pmid}")
        except ParseError as e:
            summary.skipped["unreadable raw record"] += 1
            summary.errors.append(str(e))
            continue
        batch.append(to_record(ParsedArticle(article, xml), source=sources.get(pmid), extractor=fn,
                               summary=summary))
        if len(batch) >= batch_size:
            write_batch(db, batch, summary)
            if progress is not None:
                progress(len(batch))
            batch = []
    write_batch(db, batch, summary)
    if progress is not None and batch:
        progress(len(batch))
    summary.seconds = time.perf_counter() - t0
    return summary


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO_FILES = ("efetch_trials.xml", "baseline_sample.xml.gz")


def bundled_fixtures() -> list[Path]:
    """The fixture files the demo ingests (present in a source checkout)."""
    return [FIXTURES / f for f in DEMO_FILES if (FIXTURES / f).is_file()]
