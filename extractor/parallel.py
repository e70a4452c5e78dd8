"""Bulk ingest (baseline and update files): N worker processes extract, one writer stores.

Extraction costs far more than parsing (about 10 ms against 0.2 ms a record), so the
main process reads each file (streamed, `ingest.read_records`), applies the --rct-only
gate, and sends batches of raw <PubmedArticle> XML to a pool of workers. Each worker
builds the NLP pipeline once, re-parses the XML and extracts; results come back in
input order and the main process, the only writer, stores them with `ingest.write_batch`
(one transaction per batch). `jobs=1` runs the same steps in-process, so `--jobs 2`
gives the same database as `--jobs 1`.

Files are applied in the order given (update files must be). Crash safety: every batch
is one transaction, a file's ingest_log row gets its finished_at after the file's last
batch, in the same transaction as its DeleteCitations, and a rerun skips only finished files
(same name, size and SHA-256). A run killed at any moment therefore leaves a consistent
database, and the rerun re-saves the unfinished file's articles idempotently, ending
with exactly the rows of an uninterrupted run. Workers die with the main process
(PR_SET_PDEATHSIG), so a killed run leaves no orphans.

With --rct-only, records failing the gate are neither extracted nor stored (counted as
skipped); DeleteCitations are applied whatever the gate says.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import sqlite_utils

from . import store
from .errors import ExtractorError, ParseError
from .gate import NOT_RCT, rct_gate
from .ingest import (BATCH_SIZE, IngestSummary, Progress, _CountingReader, _log, _sha256,
                     default_extractor, read_records, to_record, write_batch)
from .models import Deletion, Measurement, Trial
from .parse import ParsedArticle, is_rct, parse_record_xml

TASK_SIZE = 32
"""Records per worker task: small enough to keep every worker busy, large enough that
the inter-process overhead (one pickle each way) stays under 1% of extraction time."""

ALREADY_DONE = "already ingested"


@dataclass
class BulkSummary(IngestSummary):
    """IngestSummary plus the files a rerun skipped because they were finished before."""

    files_skipped: int = 0

    def line(self) -> str:
        text = super().line()
        if self.files_skipped:
            text += f"; {self.files_skipped} file(s) {ALREADY_DONE} (skipped; --force to ingest again)"
        return text


# --- the work of one record (the same in a worker and in-process) --------------------------

Extracted = tuple[Trial, list[Measurement], Counter]


def _extract(parsed: ParsedArticle, extract: bool) -> Extracted:
    """Trial, measurements and skip reasons of one record, via ingest.to_record."""
    local = IngestSummary()
    rec = to_record(parsed, source=None, extractor=default_extractor() if extract else None, summary=local)
    return rec.trial, list(rec.measurements), local.skipped


def _worker_init() -> None:
    """Die with the parent (Linux) and build the extraction pipeline once, up front."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the main process
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
    from .nlp import pipeline

    default_extractor()
    pipeline()


def _work(xmls: list[bytes], extract: bool) -> list[Extracted]:
    """Worker task: parse each raw record again and extract it."""
    return [_extract(ParsedArticle(parse_record_xml(x), x), extract) for x in xmls]


class _Result(Protocol):
    def result(self) -> list[Extracted]: ...


class _Done:
    """An already computed result (jobs=1)."""

    def __init__(self, value: list[Extracted]) -> None:
        self.value = value

    def result(self) -> list[Extracted]:
        return self.value


class Runner:
    """Where extraction runs: in-process (jobs=1) or in a pool of `jobs` processes.

    A ProcessPoolExecutor, not multiprocessing.Pool: when a worker is killed (say, by
    the OOM killer) Pool waits forever for its lost task, the executor raises
    BrokenProcessPool, which becomes a one-line error (and a rerun resumes)."""

    def __init__(self, jobs: int = 1, *, extract: bool = True) -> None:
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.jobs, self.extract = jobs, extract
        self._pool: ProcessPoolExecutor | None = None
        if jobs > 1 and extract:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            self._pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method),
                                             initializer=_worker_init)

    @property
    def max_pending(self) -> int:
        """Tasks in flight: enough to keep every worker busy, bounded so memory stays flat."""
        return 3 * self.jobs

    def submit(self, batch: Sequence[ParsedArticle]) -> _Result:
        if self._pool is None:
            return _Done([_extract(p, self.extract) for p in batch])
        return self._pool.submit(_work, [p.xml for p in batch], self.extract)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- one file -----------------------------------------------------------------------------

def ingest_file(db: sqlite_utils.Database, source, *, name: str, runner: Runner, rct_only: bool = False,
                batch_size: int = BATCH_SIZE, task_size: int = TASK_SIZE) -> tuple[IngestSummary, list[str]]:
    """Ingest the records of one input through `runner`, written in input order batch by
    batch; returns the summary and the PMIDs its DeleteCitations name, which the caller
    applies (`finish_file`). A bad input (truncated, malformed) keeps the whole records
    read before the problem and gets its one-line error in `summary.errors`."""
    summary = IngestSummary(files=1)
    t0 = time.perf_counter()
    gate = rct_gate() if rct_only else None
    pending: deque[tuple[list[ParsedArticle], _Result]] = deque()
    task: list[ParsedArticle] = []
    out: list[store.Record] = []
    deletions: list[str] = []

    def collect_one() -> None:
        parsed, result = pending.popleft()
        for p, (trial, measurements, skipped) in zip(parsed, result.result()):
            summary.skipped.update(skipped)
            out.append(store.Record(article=p.article, trial=trial, measurements=measurements, xml=p.xml,
                                    source=name, is_rct=is_rct(p.article)))
        if len(out) >= batch_size:
            write_batch(db, out, summary)
            out.clear()

    def submit() -> None:
        pending.append((list(task), runner.submit(task)))
        task.clear()
        while len(pending) > runner.max_pending:
            collect_one()

    def finish() -> None:
        if task:
            submit()
        while pending:
            collect_one()
        write_batch(db, out, summary)
        out.clear()
        summary.seconds = time.perf_counter() - t0

    try:
        for item in read_records(source, name=name):
            if isinstance(item, Deletion):
                deletions.append(item.pmid)
            elif gate is not None and not gate.keeps(item.article):
                summary.skipped[NOT_RCT] += 1
            else:
                task.append(item)
                if len(task) >= task_size:
                    submit()
    except ParseError as e:
        summary.errors.append(str(e))  # the whole records read before the break are kept
    finish()
    return summary, deletions


# --- many files, with the ingest log --------------------------------------------------------

_LOG_SQL = ("INSERT OR REPLACE INTO ingest_log (name, size, sha256, articles, measurements, deleted, skipped,"
            " started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def finish_file(db: sqlite_utils.Database, deletions: Sequence[str], *, name: str, size: int, sha256: str,
                summary: IngestSummary, started: str) -> None:
    """Apply a file's DeleteCitations and write its ingest_log row in ONE transaction, so
    a file is either finished (deletions applied, counts logged) or redone by a rerun.
    A file that broke part-way is logged without finished_at and its deletions wait."""
    finished = None if summary.errors else store._now()
    with store._transaction(db.conn) as conn:
        if finished is not None:
            for pmid in deletions:  # what store.delete does, inside this transaction
                summary.deleted += conn.execute("DELETE FROM articles WHERE pmid = ?", (pmid,)).rowcount
                conn.execute("DELETE FROM raw_records WHERE pmid = ?", (pmid,))
        conn.execute(_LOG_SQL, (name, size, sha256, summary.articles, summary.measurements, summary.deleted,
                                sum(summary.skipped.values()), started, finished))

def finished_before(db: sqlite_utils.Database, name: str, size: int, sha256: str) -> bool:
    """Whether this exact file (name, size, SHA-256) was ingested to the end already."""
    row = db.conn.execute(
        "SELECT 1 FROM ingest_log WHERE name = ? AND size = ? AND sha256 = ? AND finished_at IS NOT NULL",
        (name, size, sha256)).fetchone()
    return row is not None


def ingest_paths(db: sqlite_utils.Database, paths: Iterable[str | Path], *, jobs: int = 1,
                 rct_only: bool = False, extract: bool = True, force: bool = False,
                 batch_size: int = BATCH_SIZE, progress: Progress | None = None) -> BulkSummary:
    """Ingest files in the order given, skipping finished ones (unless `force`); a bad
    file adds a one-line error and the run goes on. ExtractorError if a worker dies."""
    total = BulkSummary()
    t0 = time.perf_counter()
    with Runner(jobs, extract=extract) as runner:
        for p in paths:
            path, name = Path(p), str(p)
            try:
                size, sha = path.stat().st_size, _sha256(path)
            except OSError as e:
                total.files += 1
                total.errors.append(f"{name}: cannot open: {e.strerror}")
                continue
            if not force and finished_before(db, name, size, sha):
                total.files_skipped += 1
                if progress is not None:
                    progress(size)
                continue
            started = store._now()
            _log(db, name, size, sha, IngestSummary(), started, None)  # visible while it runs
            deletions: list[str] = []
            try:
                with open(path, "rb") as f:
                    part, deletions = ingest_file(db, _CountingReader(f, progress), name=name, runner=runner,
                                                  rct_only=rct_only, batch_size=batch_size)
            except OSError as e:
                part = IngestSummary(files=1, errors=[f"{name}: cannot read: {e.strerror or e}"])
            except BrokenProcessPool:
                raise ExtractorError(f"{name}: a worker process died (out of memory?); what was written is "
                                     "consistent: run the same command again to resume") from None
            finish_file(db, deletions, name=name, size=size, sha256=sha, summary=part, started=started)
            total.add(part)
    total.seconds = time.perf_counter() - t0
    return total
