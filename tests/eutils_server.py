"""An E-utilities stand-in: a real HTTP server on 127.0.0.1 for tests and the fetch benchmark.

It answers esearch (JSON and XML, history server, retstart/retmax paging, the esearch
cap, mindate/maxdate/datetype=pdat), efetch (GET and POST, by id or from history) and
the PMC ID Converter, from records it builds in NCBI's efetch XML (2025 DTD layout).
The records are ours: made-up titles and abstracts, never real PubMed text.

Like NCBI it counts requests per second and answers 429 with no Retry-After above the
limit (3/s without api_key, 10/s with, unless `rate` is given), and it records every
request's arrival time so a test can assert the limit was never exceeded. On demand it
misbehaves: `server.fail(endpoint, *faults)` queues faults that the next requests to
that endpoint get, one each: an HTTP status (429 without Retry-After, 5xx, 4xx), "slow"
(answers after `slow_seconds`), "truncate" (body cut to half, honest Content-Length),
"short" (body shorter than its Content-Length), "html" (an HTML error page with status
200), "drop" (connection closed without an answer), "garble" (body missing its middle
third) or "backend" (esearch's "Search Backend failed" JSON, status 200).
"""
from __future__ import annotations

import collections
import json
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HEADER = (
    '<?xml version="1.0" ?>\n'
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
)
ESEARCH_HEADER = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
)
HTML_ERROR = (
    b'<!DOCTYPE html>\n<html lang="en"><head><title>NCBI - WWW Error Blocked Diagnostic</title>'
    b"</head><body><h1>Service unavailable</h1><p>The server is temporarily unable to service "
    b"your request. Please try again later.</p></body></html>\n"
)
FAULTS = ("slow", "truncate", "short", "html", "drop", "garble", "backend")


@dataclass
class FakeRecord:
    """One made-up PubMed record; `doi_indexed=False` hides its DOI from esearch (idconv still knows it)."""

    pmid: str
    title: str
    sections: list[tuple[str | None, str]]
    pubdate: date
    doi: str | None = None
    pmcid: str | None = None
    journal: str = "Journal of Invented Trials"
    doi_indexed: bool = True

    def xml(self) -> str:
        d = self.pubdate
        abstract = "".join(
            f'<AbstractText Label="{escape(lab)}" NlmCategory="{escape(lab)}">{escape(t)}</AbstractText>'
            if lab else f"<AbstractText>{escape(t)}</AbstractText>"
            for lab, t in self.sections
        )
        ids = f'<ArticleId IdType="pubmed">{self.pmid}</ArticleId>'
        eloc = ""
        if self.doi:
            ids += f'<ArticleId IdType="doi">{escape(self.doi)}</ArticleId>'
            eloc = f'<ELocationID EIdType="doi" ValidYN="Y">{escape(self.doi)}</ELocationID>'
        if self.pmcid:
            ids += f'<ArticleId IdType="pmc">{self.pmcid}</ArticleId>'
        return (
            '<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM" IndexingMethod="Automated">'
            f'<PMID Version="1">{self.pmid}</PMID>'
            f"<DateRevised><Year>{d.year}</Year><Month>{d.month:02d}</Month><Day>{d.day:02d}</Day></DateRevised>"
            '<Article PubModel="Print-Electronic"><Journal><ISSN IssnType="Electronic">0000-0000</ISSN>'
            f'<JournalIssue CitedMedium="Internet"><Volume>{d.year - 1990}</Volume><Issue>{d.month}</Issue>'
            f"<PubDate><Year>{d.year}</Year><Month>{MONTHS[d.month - 1]}</Month><Day>{d.day:02d}</Day></PubDate>"
            f"</JournalIssue><Title>{escape(self.journal)}</Title><ISOAbbreviation>J Invent Trials</ISOAbbreviation>"
            f"</Journal><ArticleTitle>{escape(self.title)}</ArticleTitle>"
            f"<Pagination><StartPage>1</StartPage><EndPage>9</EndPage><MedlinePgn>1-9</MedlinePgn></Pagination>"
            f"{eloc}<Abstract>{abstract}</Abstract>"
            '<AuthorList CompleteYN="Y"><Author ValidYN="Y"><LastName>Tester</LastName>'
            "<ForeName>Ada</ForeName><Initials>A</Initials></Author></AuthorList><Language>eng</Language>"
            '<PublicationTypeList><PublicationType UI="D016449">Randomized Controlled Trial</PublicationType>'
            '<PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList></Article>'
            "<MedlineJournalInfo><Country>England</Country><MedlineTA>J Invent Trials</MedlineTA>"
            "<NlmUniqueID>000000000</NlmUniqueID><ISSNLinking>0000-0000</ISSNLinking></MedlineJournalInfo>"
            "</MedlineCitation><PubmedData><History>"
            f'<PubMedPubDate PubStatus="pubmed"><Year>{d.year}</Year><Month>{d.month}</Month><Day>{d.day}</Day>'
            "<Hour>6</Hour><Minute>0</Minute></PubMedPubDate></History>"
            f"<PublicationStatus>ppublish</PublicationStatus><ArticleIdList>{ids}</ArticleIdList>"
            "</PubmedData></PubmedArticle>"
        )

    def text(self) -> str:
        return " ".join([self.title, *(t for _, t in self.sections)]).lower()


TOPICS = ("widget therapy", "sprocket inhibitor", "gear vaccine", "lever infusion")


def make_records(n: int, *, start: int = 30_000_001, first_year: int = 2001, years: int = 20,
                 doi_every: int = 1, pmc_every: int = 3) -> dict[str, FakeRecord]:
    """`n` deterministic invented trial records, spread over `years` of publication dates."""
    out: dict[str, FakeRecord] = {}
    span = (date(first_year + years, 1, 1) - date(first_year, 1, 1)).days
    for k in range(n):
        pmid = str(start + k)
        topic = TOPICS[k % len(TOPICS)]
        hr = 0.50 + (k % 40) / 100
        pub = date.fromordinal(date(first_year, 1, 1).toordinal() + (k * 7919) % span)
        sections = [
            ("BACKGROUND", f"Whether {topic} helps people with an invented condition is unknown."),
            ("METHODS", f"We randomly assigned {200 + k % 300} participants to {topic} or placebo."),
            ("RESULTS", f"The hazard ratio for progression was {hr:.2f} (95% CI, {hr - 0.1:.2f} to "
                        f"{hr + 0.1:.2f}); median survival was {10 + k % 9}.{k % 10} months versus 9.1 months."),
            ("CONCLUSIONS", f"In this made-up trial, {topic} looked better than placebo."),
        ]
        out[pmid] = FakeRecord(
            pmid=pmid, title=f"A made-up randomized trial of {topic}, number {k}", sections=sections,
            pubdate=pub,
            doi=f"10.5555/invented.{pmid}" if doi_every and k % doi_every == 0 else None,
            pmcid=f"PMC{9_000_000 + k}" if pmc_every and k % pmc_every == 0 else None,
        )
    return out


@dataclass
class Logged:
    """One request as the server saw it."""

    at: float
    endpoint: str
    method: str
    params: dict[str, str]
    status: int = 0
    fault: str | None = None

    @property
    def ids(self) -> list[str]:
        return [i for i in self.params.get("id", "").split(",") if i]


@dataclass
class _History:
    webenv: str
    queries: dict[str, list[str]] = field(default_factory=dict)


def _parse_pdat(s: str, end: bool) -> date:
    parts = [int(p) for p in s.replace("-", "/").split("/") if p]
    y = parts[0]
    m = parts[1] if len(parts) > 1 else (12 if end else 1)
    if len(parts) > 2:
        return date(y, m, parts[2])
    if not end:
        return date(y, m, 1)
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


class EutilsServer:
    """The stand-in; use as a context manager. `url` is the base to give the client."""

    def __init__(self, records: dict[str, FakeRecord] | None = None, *, rate: float | None = None,
                 rate_no_key: float = 3.0, rate_with_key: float = 10.0, esearch_cap: int = 10_000,
                 slow_seconds: float = 1.0, delay: float = 0.0) -> None:
        self.records = records if records is not None else make_records(50)
        self.rate, self.rate_no_key, self.rate_with_key = rate, rate_no_key, rate_with_key
        self.esearch_cap = esearch_cap
        self.slow_seconds = slow_seconds
        self.delay = delay
        self.retry_after: int | None = None  # NCBI sends no Retry-After; set to test a mirror that does
        self.log: list[Logged] = []
        self.rate_limited = 0
        self._faults: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        self._window: collections.deque[float] = collections.deque()
        self._history: dict[str, _History] = {}
        self._by_doi = {r.doi.lower(): r for r in self.records.values() if r.doi}
        self._by_pmc = {r.pmcid.lower(): r for r in self.records.values() if r.pmcid}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> "EutilsServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # --- test controls -------------------------------------------------------------

    def fail(self, endpoint: str, *faults: int | str) -> None:
        """Queue faults (HTTP statuses or names in FAULTS) for the next requests to `endpoint`."""
        for f in faults:
            if not isinstance(f, int) and f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}")
            self._faults[endpoint].append(f)

    def forget_history(self) -> None:
        """Expire every WebEnv, as NCBI does after a while."""
        with self._lock:
            self._history.clear()

    def calls(self, endpoint: str | None = None) -> list[Logged]:
        with self._lock:
            return [r for r in self.log if endpoint is None or r.endpoint == endpoint]

    def fetched_ids(self) -> list[str]:
        """Every id asked of efetch by id (with repeats), in order."""
        return [i for r in self.calls("efetch") if r.status == 200 and r.fault is None for i in r.ids]

    def max_in_window(self, seconds: float = 1.0) -> int:
        """Most requests that arrived within any `seconds`-long window."""
        times = sorted(r.at for r in self.calls())
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def limit_for(self, params: dict[str, str]) -> float:
        if self.rate is not None:
            return self.rate
        return self.rate_with_key if params.get("api_key") else self.rate_no_key

    # --- the service -----------------------------------------------------------------

    def admit(self, params: dict[str, str], now: float) -> bool:
        """Sliding one-second window, counting every request that arrives (as NCBI does)."""
        limit = self.limit_for(params)
        with self._lock:
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            self._window.append(now)
            ok = len(self._window) <= limit + 1e-9
            if not ok:
                self.rate_limited += 1
            return ok

    def take_fault(self, endpoint: str) -> int | str | None:
        with self._lock:
            q = self._faults.get(endpoint)
            return q.popleft() if q else None

    def matching(self, term: str, params: dict[str, str]) -> list[str]:
        t = term.strip()
        if t.lower().endswith("[doi]"):
            doi = t[: -len("[doi]")].strip().strip('"').lower()
            rec = self._by_doi.get(doi)
            hits = [rec] if rec is not None and rec.doi_indexed else []
        else:
            words = [w for w in _words(t) if w not in ("and",)]
            hits = [r for r in self.records.values() if all(w in r.text() for w in words)]
        if params.get("mindate") or params.get("maxdate"):
            if params.get("datetype", "pdat") != "pdat":
                raise ValueError("the stand-in filters on datetype=pdat only")
            lo = _parse_pdat(params.get("mindate") or "1000", end=False)
            hi = _parse_pdat(params.get("maxdate") or "3000", end=True)
            hits = [r for r in hits if lo <= r.pubdate <= hi]
        return [r.pmid for r in sorted(hits, key=lambda r: (r.pubdate, int(r.pmid)), reverse=True)]

    def esearch(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        term = params.get("term", "")
        if params.get("db", "pubmed") != "pubmed":
            return 400, "text/plain", b"the stand-in only knows db=pubmed"
        ids = self.matching(term, params)
        retstart = int(params.get("retstart", 0))
        retmax = int(params.get("retmax", 20))
        res: dict = {"count": str(len(ids)), "retmax": "0", "retstart": str(retstart), "idlist": [],
                     "translationset": [], "querytranslation": term}
        if params.get("usehistory") == "y":
            env = params.get("WebEnv") or f"MCID_{len(self._history) + 1:024x}"
            with self._lock:
                h = self._history.setdefault(env, _History(env))
                key = str(len(h.queries) + 1)
                h.queries[key] = ids
            res.update(querykey=key, webenv=env)
        if retstart >= self.esearch_cap and ids:
            res["ERROR"] = (f"Search Backend failed: Exception:\n'retstart' cannot be larger than "
                            f"{self.esearch_cap - 1}. For PubMed, ESearch can only retrieve the first "
                            f"{self.esearch_cap} records matching the query.")
        else:
            page = ids[retstart: min(retstart + retmax, self.esearch_cap)]
            res.update(retmax=str(len(page)), idlist=page)
        if not ids:
            res["errorlist"] = {"phrasesnotfound": [term], "fieldsnotfound": []}
            res["warninglist"] = {"phrasesignored": [], "quotedphrasesnotfound": [],
                                  "outputmessages": ["No items found."]}
        if params.get("retmode") == "json":
            doc = {"header": {"type": "esearch", "version": "0.3"}, "esearchresult": res}
            return 200, "application/json; charset=UTF-8", json.dumps(doc).encode()
        hist = (f"<QueryKey>{res['querykey']}</QueryKey><WebEnv>{res['webenv']}</WebEnv>"
                if "webenv" in res else "")
        idl = "".join(f"<Id>{i}</Id>\n" for i in res["idlist"])
        body = (f"{ESEARCH_HEADER}<eSearchResult><Count>{res['count']}</Count><RetMax>{res['retmax']}"
                f"</RetMax><RetStart>{retstart}</RetStart>{hist}<IdList>\n{idl}</IdList><TranslationSet/>"
                f"<QueryTranslation>{escape(term)}</QueryTranslation></eSearchResult>\n")
        return 200, "text/xml; charset=UTF-8", body.encode()

    def efetch(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        if params.get("db", "pubmed") != "pubmed":
            return 400, "text/plain", b"the stand-in only knows db=pubmed"
        if params.get("id"):
            ids = [i.strip() for i in params["id"].split(",") if i.strip()]
        elif params.get("WebEnv") and params.get("query_key"):
            h = self._history.get(params["WebEnv"])
            if h is None or params["query_key"] not in h.queries:
                return 400, "application/json", b'{"error":"Unable to obtain query #1"}'
            start = int(params.get("retstart", 0))
            stop = min(start + int(params.get("retmax", 20)), self.esearch_cap)
            ids = h.queries[params["query_key"]][start:stop]
        else:
            return 400, "application/json", b'{"error":"Empty id list - nothing todo"}'
        recs = [self.records[i].xml() for i in ids if i in self.records]
        body = HEADER + "<PubmedArticleSet>\n" + "\n".join(recs) + ("\n" if recs else "") + "</PubmedArticleSet>"
        return 200, "text/xml; charset=UTF-8", body.encode()

    def idconv(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        ids = [i.strip() for i in params.get("ids", "").split(",") if i.strip()]
        if len(ids) > 200:
            return 400, "application/json", b'{"status":"error","message":"too many ids (max 200)"}'
        out = []
        for i in ids:
            key = i.lower()
            rec = self._by_pmc.get(key if key.startswith("pmc") else "pmc" + key) or self._by_doi.get(key)
            if rec is not None and rec.pmcid:
                r = {"requested-id": i, "pmcid": rec.pmcid, "pmid": rec.pmid}
                if rec.doi:
                    r["doi"] = rec.doi
                out.append(r)
            else:
                out.append({"requested-id": i, "status": "error", "errmsg": "Identifier not found in PMC"})
        doc = {"status": "ok", "responseDate": "2026-01-01 00:00:00",
               "request": f"ids={','.join(ids)};format=json", "records": out}
        return 200, "application/json", json.dumps(doc).encode()


def _words(text: str) -> list[str]:
    out, cur = [], []
    inside = False
    for ch in text.lower():
        if ch == "[":
            inside = True
        elif ch == "]":
            inside = False
        elif not inside and ch.isalnum():
            cur.append(ch)
            continue
        if cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


ENDPOINTS = {"/esearch.fcgi": "esearch", "/efetch.fcgi": "efetch", "/idconv/v1.0/": "idconv",
             "/idconv/v1.0": "idconv"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    app: EutilsServer

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        now = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if method == "POST":
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace")
            params.update(urllib.parse.parse_qsl(body, keep_blank_values=True))
        app = self.app
        endpoint = ENDPOINTS.get(url.path, url.path)
        entry = Logged(now, endpoint, method, params)
        with app._lock:
            app.log.append(entry)
        if not app.admit(params, now):
            limit = app.limit_for(params)
            msg = {"error": "API rate limit exceeded", "api-key": params.get("api_key", "127.0.0.1"),
                   "count": str(int(limit) + 1), "limit": str(int(limit))}
            return self._send(entry, 429, "application/json", json.dumps(msg).encode())
        fault = app.take_fault(endpoint)
        entry.fault = None if fault is None else str(fault)
        if isinstance(fault, int):
            body = (b'{"error":"API rate limit exceeded","count":"11","limit":"10"}' if fault == 429
                    else HTML_ERROR)
            return self._send(entry, fault, "text/html" if fault != 429 else "application/json", body)
        if fault == "drop":
            entry.status = -1
            self.close_connection = True
            return
        if fault == "html":
            return self._send(entry, 200, "text/html; charset=UTF-8", HTML_ERROR)
        if fault == "backend":  # esearch's passing failure: status 200, an ERROR in the JSON
            doc = {"esearchresult": {"ERROR": "Search Backend failed: Exception:\nTemporarily unavailable"}}
            return self._send(entry, 200, "application/json", json.dumps(doc).encode())
        handler = {"esearch": app.esearch, "efetch": app.efetch, "idconv": app.idconv}.get(endpoint)
        if handler is None:
            return self._send(entry, 404, "text/plain", b"no such endpoint")
        try:
            status, ctype, body = handler(params)
        except (ValueError, KeyError) as e:
            status, ctype, body = 400, "text/plain", str(e).encode()
        if app.delay:
            time.sleep(app.delay)
        if fault == "slow":
            time.sleep(app.slow_seconds)
        if fault == "garble":  # a middle third lost: starts and ends like XML, is not
            third = len(body) // 3
            return self._send(entry, status, ctype, body[:third] + body[2 * third:])
        if fault == "truncate":
            return self._send(entry, status, ctype, body[: len(body) // 2])
        if fault == "short":
            entry.status = -2
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(entry, status, ctype, body)

    def _send(self, entry: Logged, status: int, ctype: str, body: bytes) -> None:
        entry.status = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if status in (429, 503) and self.app.retry_after is not None:
                self.send_header("Retry-After", str(self.app.retry_after))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def serve_records(records: Iterable[FakeRecord], **kwargs) -> EutilsServer:
    """A started stand-in over these records (stop it with .stop())."""
    s = EutilsServer({r.pmid: r for r in records}, **kwargs)
    s.start()
    return s
