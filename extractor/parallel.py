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

import gc
import multiprocessing
import queue
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import sqlite_utils

from . import store
from .errors import ExtractorError, ParseError
from .gate import NOT_RCT, rct_gate
from .ingest import (BATCH_SIZE, IngestSummary, Progress, _CountingReader, _log, identify,
                     default_extractor, read_records, to_record, write_batch)
from .models import Deletion, Measurement, Trial
from .parse import ParsedArticle, is_rct, iter_records, parse_record_xml

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


def _die_with_parent(parent: int) -> None:
    """A child process: killed when the main process dies (Linux), Ctrl-C left to the main."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _warm_up() -> None:
    """Build the extraction pipeline (spaCy, matchers, rules) now, once per process."""
    from .nlp import pipeline

    default_extractor()
    pipeline()


class _FrozenGC:
    """While a run lasts, the objects alive at its start and after its warm-up (modules,
    pipeline, compiled rules: about 120,000) are frozen out of the cyclic GC's reach
    (gc.freeze): they live as long as the process, and each full collection scanned them
    all (about 0.1 s, every 1,000-2,000 bench records). Forked children then leave those
    pages unwritten (shared). `release()` gives the caller's process its GC back as it
    was; a process where something else froze objects already is left alone."""

    def __init__(self) -> None:
        self.owned = not gc.get_freeze_count()
        self.more()

    def more(self) -> None:
        """Freeze what was built since (after a warm-up)."""
        if self.owned:
            gc.freeze()

    def release(self) -> None:
        if self.owned:
            gc.unfreeze()
            self.owned = False


def _worker_init(parent: int) -> None:
    _die_with_parent(parent)
    _warm_up()
    gc.freeze()  # a pool worker: frozen for its whole life (see _FrozenGC)


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
    BrokenProcessPool, which becomes a one-line error (and a rerun resumes). While it is
    open, the GC is frozen (_FrozenGC)."""

    def __init__(self, jobs: int = 1, *, extract: bool = True) -> None:
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.jobs, self.extract = jobs, extract
        self._warm = False  # jobs=1: warmed up at the first record to extract
        self._pool: ProcessPoolExecutor | None = None
        if jobs > 1 and extract:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            self._pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method),
                                             initializer=_worker_init, initargs=(os.getpid(),))
        self._gc = _FrozenGC()

    @property
    def max_pending(self) -> int:
        """Tasks in flight: enough to keep every worker busy, bounded so memory stays flat."""
        return 3 * self.jobs

    def submit(self, batch: Sequence[ParsedArticle]) -> _Result:
        if self._pool is None:
            if self.extract and not self._warm:
                _warm_up()
                self._warm = True
                self._gc.more()
            return _Done([_extract(p, self.extract) for p in batch])
        return self._pool.submit(_work, [p.xml for p in batch], self.extract)

    def close(self) -> None:
        self._gc.release()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- one file -----------------------------------------------------------------------------

Sink = Callable[[list[store.Record], IngestSummary], None]
"""Where ingest_file's batches go: `write_batch` into the database, or (file-level
workers) a queue to the writer."""


def ingest_file(db: sqlite_utils.Database | None, source, *, name: str, runner: Runner, rct_only: bool = False,
                batch_size: int = BATCH_SIZE, task_size: int = TASK_SIZE,
                sink: Sink | None = None) -> tuple[IngestSummary, list[str]]:
    """Ingest the records of one input through `runner`, written in input order batch by
    batch; returns the summary and the PMIDs its DeleteCitations name, which the caller
    applies (`finish_file`). A bad input (truncated, malformed) keeps the whole records
    read before the problem and gets its one-line error in `summary.errors`."""
    summary = IngestSummary(files=1)
    t0 = time.perf_counter()
    write: Sink = sink or (lambda records, summ: write_batch(db, records, summ))
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
            write(list(out), summary)
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
        if out:
            write(list(out), summary)
        out.clear()
        summary.seconds = time.perf_counter() - t0

    def pre_gate(elem) -> bool:
        if gate is not None and not gate.may_keep(elem):
            summary.skipped[NOT_RCT] += 1
            return False
        return True

    try:
        records = (iter_records(source, name=name, keep=pre_gate) if gate is not None
                   else read_records(source, name=name))
        for item in records:
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
    finished = None if summary.errors else store.now()
    with store.transaction(db.conn) as conn:
        if finished is not None:
            summary.deleted += store.delete_in(conn, deletions)
        conn.execute(_LOG_SQL, (name, size, sha256, summary.articles, summary.measurements, summary.deleted,
                                sum(summary.skipped.values()), started, finished))

def finished_before(db: sqlite_utils.Database, name: str, size: int, sha256: str) -> bool:
    """Whether this exact file (name, size, SHA-256) was ingested to the end already."""
    row = db.conn.execute(
        "SELECT 1 FROM ingest_log WHERE name = ? AND size = ? AND sha256 = ? AND finished_at IS NOT NULL",
        (name, size, sha256)).fetchone()
    return row is not None


@dataclass(frozen=True)
class _Input:
    path: Path
    name: str
    size: int
    sha256: str


def _to_do(db: sqlite_utils.Database, paths: Iterable[str | Path], total: BulkSummary, force: bool,
           progress: Progress | None) -> Iterator[_Input]:
    """The inputs still to ingest, in order: unreadable ones become errors, finished ones
    are counted and left out (unless `force`)."""
    for p in paths:
        found = identify(p, total)
        if found is None:
            continue
        path, name, size, sha = found
        if not force and finished_before(db, name, size, sha):
            total.files_skipped += 1
            if progress is not None:
                progress(size)
            continue
        yield _Input(path, name, size, sha)


def _died(name: str) -> ExtractorError:
    return ExtractorError(f"{name}: a worker process died (out of memory?); what was written is "
                          "consistent: run the same command again to resume")


def ingest_paths(db: sqlite_utils.Database, paths: Iterable[str | Path], *, jobs: int = 1,
                 rct_only: bool = False, extract: bool = True, force: bool = False,
                 batch_size: int = BATCH_SIZE, progress: Progress | None = None) -> BulkSummary:
    """Ingest files in the order given, skipping finished ones (unless `force`); a bad
    file adds a one-line error and the run goes on. ExtractorError if a worker dies.

    With --rct-only, reading the XML is the main cost (2% of records are extracted), so
    with jobs > 1 and several files each worker takes whole files (`_ingest_by_file`);
    otherwise the workers share each file's extraction (`ingest_file` over a Runner)."""
    total = BulkSummary()
    t0 = time.perf_counter()
    paths = list(paths)
    todo = _to_do(db, paths, total, force, progress)
    if jobs > 1 and rct_only and len(paths) > 1 and "fork" in multiprocessing.get_all_start_methods():
        _ingest_by_file(db, todo, total, jobs=jobs, rct_only=rct_only, extract=extract, batch_size=batch_size,
                        progress=progress)
    else:
        with Runner(jobs, extract=extract) as runner:
            for inp in todo:
                started = store.now()
                _log(db, inp.name, inp.size, inp.sha256, IngestSummary(), started, None)  # visible while it runs
                deletions: list[str] = []
                try:
                    with open(inp.path, "rb") as f:
                        part, deletions = ingest_file(db, _CountingReader(f, progress), name=inp.name,
                                                      runner=runner, rct_only=rct_only, batch_size=batch_size)
                except OSError as e:
                    part = IngestSummary(files=1, errors=[f"{inp.name}: cannot read: {e.strerror or e}"])
                except BrokenProcessPool:
                    raise _died(inp.name) from None
                finish_file(db, deletions, name=inp.name, size=inp.size, sha256=inp.sha256, summary=part,
                            started=started)
                total.add(part)
    total.seconds = time.perf_counter() - t0
    return total


# --- file-level workers (--rct-only over many files) ---------------------------------------

FILE_QUEUE = 8
"""Record batches a file worker may send ahead of the writer (bounded memory)."""


def _file_child(path: str, name: str, rct_only: bool, extract: bool, batch_size: int, q, parent: int) -> None:
    """A file worker: read, gate and extract one whole file, sending its record batches
    in order, then ("done", skipped, errors, deletions)."""
    _die_with_parent(parent)
    try:
        with open(path, "rb") as f:
            part, deletions = ingest_file(None, f, name=name, runner=Runner(1, extract=extract), rct_only=rct_only,
                                          batch_size=batch_size, sink=lambda recs, _s: q.put(("records", recs)))
        q.put(("done", part.skipped, part.errors, deletions))
    except OSError as e:
        q.put(("done", Counter(), [f"{name}: cannot read: {e.strerror or e}"], []))
    except Exception as e:  # a child's boundary: report it to the writer, never die silently
        q.put(("fail", f"{type(e).__name__}: {e}"))


def _drain(db: sqlite_utils.Database, inp: _Input, proc, q, part: IngestSummary) -> list[str]:
    """Write one file worker's batches as they come; its DeleteCitation PMIDs at the end."""
    while True:
        try:
            msg = q.get(timeout=1.0)
        except queue.Empty:
            if proc.is_alive():
                continue
            try:
                msg = q.get(timeout=1.0)
            except queue.Empty:
                raise _died(inp.name) from None
        if msg[0] == "records":
            write_batch(db, msg[1], part)
        elif msg[0] == "done":
            part.skipped.update(msg[1])
            part.errors.extend(msg[2])
            return msg[3]
        else:
            raise ExtractorError(f"{inp.name}: worker failed: {msg[1]}")


def _ingest_by_file(db: sqlite_utils.Database, todo: Iterator[_Input], total: BulkSummary, *, jobs: int,
                    rct_only: bool, extract: bool, batch_size: int, progress: Progress | None) -> None:
    """`jobs` forked workers each take whole files; the writer applies them strictly in
    order (file k+1's batches wait in its queue until file k is finished)."""
    ctx = multiprocessing.get_context("fork")
    if extract:
        _warm_up()  # built once here, inherited by every forked worker
    frozen = _FrozenGC()  # frozen in the workers too, which never collect the pipeline
    running: deque[tuple[_Input, object, object, str]] = deque()

    def launch() -> bool:
        inp = next(todo, None)
        if inp is None:
            return False
        q = ctx.Queue(maxsize=FILE_QUEUE)
        proc = ctx.Process(target=_file_child, daemon=True,
                           args=(str(inp.path), inp.name, rct_only, extract, batch_size, q, os.getpid()))
        started = store.now()
        _log(db, inp.name, inp.size, inp.sha256, IngestSummary(), started, None)
        proc.start()
        running.append((inp, proc, q, started))
        return True

    try:
        while len(running) < jobs and launch():
            pass
        while running:
            inp, proc, q, started = running.popleft()
            part = IngestSummary(files=1)
            deletions = _drain(db, inp, proc, q, part)
            proc.join()
            finish_file(db, deletions, name=inp.name, size=inp.size, sha256=inp.sha256, summary=part,
                        started=started)
            total.add(part)
            if progress is not None:
                progress(inp.size)
            while len(running) < jobs and launch():
                pass
    finally:
        for _inp, proc, _q, _s in running:
            proc.kill()
            proc.join()
        frozen.release()
