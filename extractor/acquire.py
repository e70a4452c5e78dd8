"""Get these ids (or this query) into the database: resolve, skip stored, fetch, check, ingest.

Resumable by construction: a batch's articles and raw records are saved in one
transaction, and ids whose raw record is stored are skipped unless `refresh`; so a run
killed at any point, rerun, fetches only what is missing and stores each record once.
Nothing that is not complete PubMed XML is stored: each efetch answer is parsed in full
(extractor.parse) before any of it is saved, and re-fetched when it does not parse.
"""
from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import sqlite_utils

from . import ingest, parse
from .errors import ExtractorError, FetchError, ParseError
from .fetch import EFETCH_BATCH, EutilsClient, SearchPlan
from .store import stored_pmids

Progress = Callable[[int, int], None]  # (done, total) ids

_DOI_PREFIX = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", re.IGNORECASE)
_PMID = re.compile(r"^(?:pmid:\s*)?(\d{1,9})$", re.IGNORECASE)
_PMCID = re.compile(r"^(?:pmcid:\s*)?pmc(\d+)$", re.IGNORECASE)


@dataclass
class Summary:
    """What a run did; `not_found` and `failed` name every id we could not get."""

    requested: int = 0
    fetched: int = 0
    already_present: int = 0
    unresolved: dict[str, str] = field(default_factory=dict)  # input id -> why
    missing: list[str] = field(default_factory=list)          # PMIDs efetch has no record for
    failed: dict[str, str] = field(default_factory=dict)      # PMID -> last error
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    measurements: int | None = None  # extracted and stored, when the store step extracts
    download_seconds: float = 0.0    # from the first efetch request to the last answer received

    @property
    def not_found(self) -> list[str]:
        return [*self.unresolved, *self.missing]

    def lines(self) -> list[str]:
        out = [*self.notes,
               f"requested: {self.requested}", f"fetched: {self.fetched}",
               f"already present: {self.already_present}",
               *([f"measurements: {self.measurements}"] if self.measurements is not None else []),
               f"not found: {len(self.not_found)}", f"failed: {len(self.failed)}"]
        out += [f"  not found: {i} ({why})" for i, why in self.unresolved.items()]
        out += [f"  not found: {p} (efetch returned no record)" for p in self.missing]
        out += [f"  failed: {p} ({why})" for p, why in self.failed.items()]
        return out


@dataclass
class Ids:
    """Input ids sorted by kind; `invalid` holds what is none of them."""

    pmids: list[str] = field(default_factory=list)
    dois: list[str] = field(default_factory=list)
    pmcids: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def split_ids(text: str) -> list[str]:
    """Ids in free text: split on whitespace, and on commas except inside a DOI (DOIs may hold
    commas and semicolons, e.g. SICI DOIs); '#' starts a comment."""
    out: list[str] = []
    for token in text.split("#", 1)[0].split():
        if _DOI_PREFIX.sub("", token).startswith("10."):
            out.append(token.rstrip(","))
        else:
            out += [t for t in token.split(",") if t]
    return out


def classify(raw: Iterable[str]) -> Ids:
    """PMIDs (digits), DOIs (starting with "10."), PMCIDs ("PMC" + digits); duplicates dropped."""
    out = Ids()
    seen: set[str] = set()
    for item in raw:
        s = item.strip()
        if not s:
            continue
        doi = _DOI_PREFIX.sub("", s)
        if doi.startswith("10.") and "/" in doi:
            kind, value = out.dois, doi
        elif m := _PMID.match(s):
            kind, value = out.pmids, str(int(m.group(1)))
        elif m := _PMCID.match(s):
            kind, value = out.pmcids, f"PMC{m.group(1)}"
        else:
            kind, value = out.invalid, s
        key = value.lower()
        if key not in seen:
            seen.add(key)
            kind.append(value)
    return out


def known_locally(db: sqlite_utils.Database, ids: Ids) -> dict[str, str]:
    """DOIs and PMCIDs of articles already stored, so a rerun asks NCBI nothing about them."""
    found: dict[str, str] = {}
    for col, values in (("doi", ids.dois), ("pmcid", ids.pmcids)):
        for v in values:
            for form in dict.fromkeys((v, v.lower(), v.upper())):  # the doi index is case-sensitive
                row = db.conn.execute(f"SELECT pmid FROM articles WHERE {col} = ? LIMIT 1", (form,)).fetchone()
                if row:
                    found[v] = row[0]
                    break
    return found


def resolve(client: EutilsClient, ids: Ids, summary: Summary, known: dict[str, str] | None = None) -> list[str]:
    """PMIDs for all input ids, in input order, deduplicated; the rest go to summary.unresolved
    (or summary.failed when the service could not answer). `known` maps ids already resolved."""
    known = known or {}
    pmids = list(ids.pmids) + [known[i] for i in (*ids.dois, *ids.pmcids) if i in known]
    ids = Ids(dois=[d for d in ids.dois if d not in known], pmcids=[p for p in ids.pmcids if p not in known],
              invalid=ids.invalid)
    for s in ids.invalid:
        summary.unresolved[s] = "not a PMID, DOI or PMCID"
    via_pmc: list[str] = []
    for doi in ids.dois:
        try:
            pmid = client.doi_to_pmid(doi)
        except FetchError as e:
            summary.failed[doi] = str(e)
            continue
        if pmid:
            pmids.append(pmid)
        else:
            via_pmc.append(doi)
    for kind, group in (("doi", via_pmc), ("pmcid", ids.pmcids)):
        if not group:
            continue
        try:
            found = client.idconv(group, kind)
        except FetchError as e:
            summary.failed.update((i, str(e)) for i in group)
            continue
        for orig in group:
            if found.get(orig):
                pmids.append(found[orig])  # type: ignore[arg-type]
            else:
                summary.unresolved[orig] = f"no PubMed record for this {'DOI' if kind == 'doi' else 'PMCID'}"
    return list(dict.fromkeys(pmids))


def looks_complete(body: bytes) -> bool:
    """Cheap shape check before a full parse: a PubmedArticleSet that ends where it should."""
    head = body.lstrip()[:400]
    if not (head.startswith(b"<?xml") or head.startswith(b"<!DOCTYPE PubmedArticleSet")
            or head.startswith(b"<PubmedArticleSet")):
        return False
    tail = body.rstrip()
    return tail.endswith(b"</PubmedArticleSet>") or tail.endswith(b"<PubmedArticleSet/>")


@dataclass
class _Job:
    """One efetch request: the PMIDs we need from it and how to ask for them."""

    want: list[str]
    call: Callable[[], bytes]
    fallback: Callable[[], bytes] | None = None


def _download(job: _Job) -> bytes:
    """The answer to one job; when its history handle has expired, ask by id instead."""
    try:
        return job.call()
    except FetchError:
        if job.fallback is None:
            raise
        job.call, job.fallback = job.fallback, None
        return job.call()


def _parse(client: EutilsClient, job: _Job, body: bytes, name: str) -> list[parse.ParsedArticle]:
    """Parse the whole answer; one that does not parse is fetched again (with backoff)."""
    for attempt in range(client.retries + 1):
        if attempt:
            time.sleep(client.delay(attempt - 1))
            body = _download(job)
        try:
            return [r for r in parse.iter_records(body, name=name) if isinstance(r, parse.ParsedArticle)]
        except ParseError as e:
            last = str(e)
    raise FetchError(f"efetch answers did not parse after {client.retries + 1} attempts: {last}")


class IngestStore:
    """The default store step: extract and save through extractor.ingest, one transaction per batch."""

    def __init__(self, extract: bool = True, extractor: ingest.Extractor | None = None) -> None:
        self.summary = ingest.IngestSummary()
        self.extractor = (extractor or ingest.default_extractor()) if extract else None

    def __call__(self, db: sqlite_utils.Database, parsed: Sequence[parse.ParsedArticle], source: str) -> None:
        records = [ingest.to_record(p, source=source, extractor=self.extractor, summary=self.summary)
                   for p in parsed]
        ingest.write_batch(db, records, self.summary)


Store = Callable[[sqlite_utils.Database, Sequence[parse.ParsedArticle], str], None]


def _execute(db: sqlite_utils.Database, client: EutilsClient, jobs: list[_Job], summary: Summary,
             progress: Progress | None, store: Store, source: str) -> None:
    """Download in a worker thread, paced by the client; parse, check and store here.

    The worker does nothing but HTTP, so requests go out on schedule while this thread
    works; the queue is bounded, so a much slower store slows fetching instead of piling
    up answers in memory.
    """
    total = sum(len(j.want) for j in jobs)
    done = 0
    if progress:
        progress(0, total)
    results: queue.Queue = queue.Queue(maxsize=32)  # at most ~15 MB of answers waiting
    stop = threading.Event()
    t0 = time.perf_counter()

    def put(item: tuple | None) -> bool:
        while not stop.is_set():
            try:
                results.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        for job in jobs:
            if stop.is_set():
                return
            try:
                item = (job, _download(job), None)
            except ExtractorError as e:
                item = (job, None, str(e))
            summary.download_seconds = time.perf_counter() - t0
            if not put(item):
                return
        put(None)

    t = threading.Thread(target=worker, name="efetch", daemon=True)
    if isinstance(store, IngestStore):
        before = store.summary.measurements
    t.start()
    try:
        while (item := results.get()) is not None:
            job, body, error = item
            if error is None:
                try:
                    parsed = _parse(client, job, body, source)
                except ExtractorError as e:
                    error = str(e)
            if error is not None:
                for p in job.want:
                    summary.failed[p] = error
            else:
                wanted = set(job.want)
                keep = [p for p in parsed if p.article.pmid in wanted]
                store(db, keep, source)
                got = {p.article.pmid for p in keep}
                summary.fetched += len(got)
                summary.missing += [p for p in job.want if p not in got]
            done += len(job.want)
            if progress:
                progress(done, total)
    finally:
        stop.set()  # on an error or Ctrl-C the worker ends after its current request
    summary.requests = client.requests_made
    if isinstance(store, IngestStore):
        summary.measurements = store.summary.measurements - before


def acquire(db: sqlite_utils.Database, client: EutilsClient, ids: Iterable[str], *, refresh: bool = False,
            batch_size: int = EFETCH_BATCH, progress: Progress | None = None, store: Store | None = None,
            source: str = "efetch") -> Summary:
    """Fetch and ingest PMIDs, DOIs and PMCIDs (mixed); ids already stored are skipped unless refresh."""
    if not 1 <= batch_size <= EFETCH_BATCH:
        raise ValueError(f"batch_size must be 1..{EFETCH_BATCH}")
    kinds = classify(ids)
    summary = Summary(requested=len(kinds.pmids) + len(kinds.dois) + len(kinds.pmcids) + len(kinds.invalid))
    pmids = resolve(client, kinds, summary, known=None if refresh else known_locally(db, kinds))
    have = set() if refresh else stored_pmids(db)
    todo = [p for p in pmids if p not in have]
    summary.already_present = len(pmids) - len(todo)
    jobs = []
    for k in range(0, len(todo), batch_size):
        batch = todo[k:k + batch_size]
        jobs.append(_Job(batch, lambda b=batch: client.efetch(b, accept=looks_complete)))
    _execute(db, client, jobs, summary, progress, store or IngestStore(), source)
    return summary


def acquire_search(db: sqlite_utils.Database, client: EutilsClient, term: str, *, max_ids: int | None = None,
                   refresh: bool = False, progress: Progress | None = None, store: Store | None = None,
                   source: str = "efetch") -> Summary:
    """Fetch and ingest every record of a PubMed query (history server pages; split above the cap)."""
    plan: SearchPlan = client.plan_search(term, max_ids)
    summary = Summary(requested=len(plan.ids), notes=list(plan.notes))
    have = set() if refresh else stored_pmids(db)
    jobs: list[_Job] = []
    seen: set[str] = set()
    for sl in plan.slices:
        for start in range(0, len(sl.ids), EFETCH_BATCH):
            page = sl.ids[start:start + EFETCH_BATCH]
            todo = [p for p in page if p not in have and p not in seen]
            seen.update(page)
            summary.already_present += sum(1 for p in page if p in have)
            if not todo:
                continue
            by_id = (lambda b=todo: client.efetch(b, accept=looks_complete))
            if len(todo) == len(page) and sl.webenv and sl.query_key:
                hist = (lambda s=sl, r=start, n=len(page):
                        client.efetch_history(s.webenv, s.query_key, r, n, accept=looks_complete))
                jobs.append(_Job(todo, hist, fallback=by_id))
            else:
                jobs.append(_Job(todo, by_id))
    _execute(db, client, jobs, summary, progress, store or IngestStore(), source)
    return summary
