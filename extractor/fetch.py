"""NCBI E-utilities client: ids, DOIs and queries in, PubMed XML bytes out.

All NCBI etiquette lives in one object, `EutilsClient`: tool/email/api_key on every
request, one thread-safe rate limiter for all its requests (NCBI answers 429 without
Retry-After, so we pace instead of probing), retries with exponential backoff and
jitter on 429, 5xx, timeouts and dropped connections, and an immediate FetchError on
any other 4xx. It reads only the small JSON answers of esearch and idconv; PubMed XML
is returned as bytes for extractor.parse to read.
"""
from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import requests

from . import __version__
from .errors import FetchError

EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
IDCONV_URL = "https://www.ncbi.nlm.nih.gov/pmc/utils/idconv/v1.0/"
TOOL = "pubmed-evidence"
EFETCH_BATCH = 200      # ids per efetch POST
IDCONV_BATCH = 200      # ids per idconv request (the service's limit)
ESEARCH_CAP = 10_000    # PubMed esearch returns at most this many ids of one query
RATE_NO_KEY = 3.0       # requests per second NCBI allows without an API key
RATE_WITH_KEY = 10.0    # ... and with one
FIRST_PDAT = date(1700, 1, 1)  # before any PubMed publication date

RETRY_AFTER_MAX = 120.0  # seconds: the longest Retry-After we obey
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class RateLimiter:
    """Minimum interval between request starts, shared by every thread that holds it.

    The interval is measured from when the previous caller actually went, not when it
    was due (a late wake-up never shortens the next gap), and it is `margin` longer than
    1/rate so that network jitter cannot squeeze `rate + 1` requests into one second at
    the server. Callers queue on the lock, so threads never burst.
    """

    def __init__(self, rate: float, margin: float = 0.02) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = (1.0 + margin) / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                time.sleep(self._next - now)
            self._next = time.monotonic() + self.interval

    def hold(self, seconds: float) -> None:
        """Let nobody go for `seconds` (a server asked us to wait)."""
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)

    _shared: dict[tuple, "RateLimiter"] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls, service: str, identity: str | None, rate: float) -> "RateLimiter":
        """The one limiter of this process for a service and identity (NCBI counts per key or IP),
        so every client object talking to the same service takes turns."""
        with cls._shared_lock:
            key = (service, identity, rate)
            if key not in cls._shared:
                cls._shared[key] = cls(rate)
            return cls._shared[key]


@dataclass
class SearchResult:
    """One esearch answer: total count, the ids of this page, and the history handle."""

    count: int
    ids: list[str]
    webenv: str | None = None
    query_key: str | None = None


@dataclass
class Slice:
    """A part of a query small enough for esearch (at most the cap), by publication date."""

    term: str
    count: int
    ids: list[str]
    webenv: str | None
    query_key: str | None
    mindate: str | None = None
    maxdate: str | None = None


@dataclass
class SearchPlan:
    """All ids of a query, in slices; `notes` says how the query was split, if it was."""

    term: str
    count: int
    slices: list[Slice] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [i for s in self.slices for i in s.ids]


def _pdat(d: date) -> str:
    return d.strftime("%Y/%m/%d")


class EutilsClient:
    """A polite E-utilities session. Pass `base_url` to send everything to a mirror or stand-in.

    `rate` overrides the NCBI default (3/s, or 10/s with an api_key); `backoff` is the
    first retry delay in seconds, doubled per attempt (with jitter) up to `max_backoff`.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        email: str | None = None,
        tool: str = TOOL,
        base_url: str | None = None,
        idconv_url: str | None = None,
        rate: float | None = None,
        timeout: float = 60.0,
        retries: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        esearch_cap: int = ESEARCH_CAP,
        session: requests.Session | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.api_key = api_key or None
        self.email = email or None
        self.tool = tool
        base = (base_url or EUTILS_URL).rstrip("/")
        self.base_url = base
        self.idconv_url = idconv_url or (f"{base}/idconv/v1.0/" if base_url else IDCONV_URL)
        self.rate = rate or (RATE_WITH_KEY if self.api_key else RATE_NO_KEY)
        host = urllib.parse.urlsplit(base).netloc
        self.limiter = limiter or RateLimiter.shared(host, self.api_key, self.rate)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.esearch_cap = esearch_cap
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = f"{tool}/{__version__} python-requests/{requests.__version__}"
        self.session = session
        self.requests_made = 0

    @classmethod
    def from_env(cls, **kwargs) -> "EutilsClient":
        """A client whose api_key/email default to NCBI_API_KEY / NCBI_EMAIL."""
        kwargs.setdefault("api_key", os.environ.get("NCBI_API_KEY"))
        kwargs.setdefault("email", os.environ.get("NCBI_EMAIL"))
        return cls(**kwargs)

    # --- transport ---------------------------------------------------------------

    def _identity(self) -> dict[str, str]:
        p = {"tool": self.tool}
        if self.email:
            p["email"] = self.email
        if self.api_key:
            p["api_key"] = self.api_key
        return p

    def delay(self, attempt: int) -> float:
        """Backoff before retry number `attempt` (0-based): exponential, jittered, capped."""
        base = min(self.max_backoff, self.backoff * (2 ** attempt))
        return base * random.uniform(0.5, 1.0)

    def request(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        post: bool = False,
        accept: Callable[[bytes], bool] | None = None,
    ) -> bytes:
        """One E-utilities call, paced and retried; returns the body.

        `accept` rejects a 200 answer that is not what was asked for (an HTML error
        page, a cut-off body): it is retried like a 5xx, then reported.
        """
        data = {**params, **self._identity()}
        what = url.rsplit("/", 1)[-1] or url.rstrip("/").rsplit("/", 1)[-1]
        last = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.delay(attempt - 1))
            self.limiter.wait()
            self.requests_made += 1
            try:
                if post:
                    r = self.session.post(url, data=data, timeout=self.timeout)
                else:
                    r = self.session.get(url, params=data, timeout=self.timeout)
                body = r.content
            except TRANSIENT as e:
                last = _short(e)
                continue
            except requests.RequestException as e:
                raise FetchError(f"{what}: {_short(e)}") from None
            if r.status_code in RETRY_STATUS:
                last = f"HTTP {r.status_code}"
                wait = r.headers.get("Retry-After", "")
                if wait.isdigit():  # NCBI sends none; a mirror might
                    self.limiter.hold(min(float(wait), RETRY_AFTER_MAX))
                continue
            if r.status_code >= 400:
                snippet = " ".join(re.sub(rb"<[^>]*>", b" ", body[:2000]).decode("utf-8", "replace").split())
                snippet = snippet[:150]
                raise FetchError(f"{what}: HTTP {r.status_code} {r.reason}: {snippet}")
            if accept is not None and not accept(body):
                last = f"an answer that is not the expected format ({body[:60]!r})"
                continue
            return body
        raise FetchError(f"{what}: gave up after {self.retries + 1} attempts, last: {last}")

    def _json(self, url: str, params: Mapping[str, str], *, post: bool = False) -> dict:
        body = self.request(url, params, post=post, accept=_is_json_object)
        return json.loads(body)

    # --- esearch -----------------------------------------------------------------

    def esearch(
        self,
        term: str,
        *,
        retstart: int = 0,
        retmax: int = 20,
        usehistory: bool = False,
        mindate: str | None = None,
        maxdate: str | None = None,
        datetype: str = "pdat",
    ) -> SearchResult:
        """One esearch call (retmode=json); an esearch ERROR becomes FetchError."""
        params = {"db": "pubmed", "term": term, "retmode": "json",
                  "retstart": str(retstart), "retmax": str(retmax)}
        if usehistory:
            params["usehistory"] = "y"
        if mindate or maxdate:
            params.update(mindate=mindate or _pdat(FIRST_PDAT),
                          maxdate=maxdate or _pdat(date.today() + timedelta(days=366)),
                          datetype=datetype)
        body = self.request(f"{self.base_url}/esearch.fcgi", params, post=len(term) > 1500,
                            accept=_esearch_answered)
        doc = json.loads(body)
        res = doc.get("esearchresult")
        if not isinstance(res, dict):
            raise FetchError("esearch: answer has no esearchresult")
        if res.get("ERROR"):
            raise FetchError(f"esearch: {res['ERROR']}")
        try:
            count = int(res.get("count", 0))
        except (TypeError, ValueError):
            raise FetchError(f"esearch: bad count {res.get('count')!r}") from None
        return SearchResult(count=count, ids=[str(i) for i in res.get("idlist", [])],
                            webenv=res.get("webenv"), query_key=res.get("querykey"))

    def doi_to_pmid(self, doi: str) -> str | None:
        """The PMID whose record carries this DOI, or None (none or ambiguous)."""
        quoted = doi.replace('"', "")
        res = self.esearch(f'"{quoted}"[doi]', retmax=2)
        return res.ids[0] if res.count == 1 and res.ids else None

    def plan_search(self, term: str, max_ids: int | None = None) -> SearchPlan:
        """Every id of `term` (up to max_ids), splitting by publication date above the cap."""
        cap = self.esearch_cap
        first = self.esearch(term, retmax=0)
        plan = SearchPlan(term=term, count=first.count)
        want = first.count if max_ids is None else min(max_ids, first.count)
        if want == 0:
            return plan
        if want <= cap:
            res = self.esearch(term, retmax=want, usehistory=True)
            if len(res.ids) >= want:
                plan.slices.append(Slice(term, res.count, res.ids[:want], res.webenv, res.query_key))
                return plan
            # the server lists fewer ids per query than we thought: learn its cap and split
            self.esearch_cap = cap = max(1, len(res.ids))
        ranges = self._split(term, FIRST_PDAT, date.today() + timedelta(days=366), first.count)
        got = 0
        for lo, hi, n in reversed(ranges):  # newest first, as esearch sorts
            if got >= want:
                break
            if n == 0:
                continue
            take = min(n, cap, want - got)
            res = self.esearch(term, retmax=take, usehistory=True, mindate=_pdat(lo), maxdate=_pdat(hi))
            plan.slices.append(Slice(term, res.count, res.ids[:take], res.webenv, res.query_key,
                                     _pdat(lo), _pdat(hi)))
            got += len(res.ids[:take])
            if n > cap:
                plan.notes.append(f"{n:,} records published on {_pdat(lo)} alone, more than the "
                                  f"esearch cap of {cap:,}: only the first {cap:,} are fetched")
        sliced = sum(n for _, _, n in ranges)
        plan.notes.insert(0, f"{first.count:,} records match, more than the esearch cap of {cap:,}: "
                             f"split by publication date into {len(plan.slices)} slices")
        if sliced < first.count and max_ids is None:
            plan.notes.append(f"{first.count - sliced:,} records have no publication date in range "
                              "and cannot be listed")
        return plan

    def _split(self, term: str, lo: date, hi: date, count: int) -> list[tuple[date, date, int]]:
        """Halve [lo, hi] by publication date until each part fits under the cap."""
        if count <= self.esearch_cap or lo >= hi:
            return [(lo, hi, count)]
        mid = lo + (hi - lo) // 2
        halves = [(a, b, self.esearch(term, retmax=0, mindate=_pdat(a), maxdate=_pdat(b)).count)
                  for a, b in ((lo, mid), (mid + timedelta(days=1), hi))]
        if sum(n for _, _, n in halves) > count * 1.01 + 10:
            raise FetchError("esearch does not honour the publication-date range: cannot split "
                             f"a query of {count:,} records")
        out: list[tuple[date, date, int]] = []
        for a, b, n in halves:
            out += self._split(term, a, b, n) if n else [(a, b, 0)]
        return out

    # --- efetch ------------------------------------------------------------------

    def efetch(self, pmids: Sequence[str], *, accept: Callable[[bytes], bool] | None = None) -> bytes:
        """PubMed XML of up to 200 PMIDs, by POST; ids with no record are simply absent."""
        if not pmids:
            raise ValueError("efetch needs at least one id")
        if len(pmids) > EFETCH_BATCH:
            raise ValueError(f"efetch takes at most {EFETCH_BATCH} ids per request")
        params = {"db": "pubmed", "id": ",".join(pmids), "retmode": "xml"}
        return self.request(f"{self.base_url}/efetch.fcgi", params, post=True, accept=accept)

    def efetch_history(self, webenv: str, query_key: str, retstart: int, retmax: int = EFETCH_BATCH,
                       *, accept: Callable[[bytes], bool] | None = None) -> bytes:
        """One page of a search held on the history server."""
        params = {"db": "pubmed", "WebEnv": webenv, "query_key": str(query_key),
                  "retstart": str(retstart), "retmax": str(min(retmax, EFETCH_BATCH)), "retmode": "xml"}
        return self.request(f"{self.base_url}/efetch.fcgi", params, accept=accept)

    # --- PMC ID converter --------------------------------------------------------

    def idconv(self, ids: Iterable[str], idtype: str) -> dict[str, str | None]:
        """PMIDs of PMCIDs or DOIs (`idtype` "pmcid" or "doi") via the PMC ID Converter."""
        ids = list(ids)
        out: dict[str, str | None] = {i: None for i in ids}
        for k in range(0, len(ids), IDCONV_BATCH):
            chunk = ids[k:k + IDCONV_BATCH]
            doc = self._json(self.idconv_url, {"ids": ",".join(chunk), "idtype": idtype,
                                               "format": "json", "versions": "no"})
            if doc.get("status") not in (None, "ok"):
                raise FetchError(f"idconv: {doc.get('message') or doc.get('status')}")
            wanted = {_norm_id(i, idtype): i for i in chunk}
            for rec in doc.get("records", []):
                key = rec.get("requested-id") or rec.get(idtype)
                orig = wanted.get(_norm_id(str(key or ""), idtype))
                pmid = rec.get("pmid")
                if orig is not None and pmid and rec.get("status") != "error":
                    out[orig] = str(pmid)
        return out


def _short(e: Exception) -> str:
    """A one-line reason: the innermost cause of a requests error, not its repr chain."""
    inner: BaseException = e
    while inner.__context__ is not None or (inner.args and isinstance(inner.args[0], BaseException)):
        nxt = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else inner.__context__
        if nxt is None or nxt is inner:
            break
        inner = nxt
    text = str(inner).split(": ", 1)[-1] if "Connection" in type(inner).__name__ else str(inner)
    text = " ".join(text.split())
    return f"{type(e).__name__} ({text[:120]})" if text else type(e).__name__


def _norm_id(value: str, idtype: str) -> str:
    v = value.strip().lower()
    if idtype == "pmcid" and not v.startswith("pmc"):
        v = "pmc" + v
    return v


def _esearch_answered(body: bytes) -> bool:
    """A JSON answer, and not one of esearch's passing "Search Backend failed" errors (retried).
    Errors about the request itself (e.g. retstart past the cap) are answers: they are raised."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    if not isinstance(doc, dict):
        return False
    err = str((doc.get("esearchresult") or {}).get("ERROR") or "")
    return not err or "retstart" in err or "Backend failed" not in err


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False
