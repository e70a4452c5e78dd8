"""PubMed XML (efetch responses, baseline and update files) in, Article models out.

Two readers give identical Articles for the same input (a test shows it):
- `iter_records`: lxml iterparse, streamed with clear + delete-siblings so memory stays
  flat on a 30,000-record baseline file (.xml or .xml.gz, told apart by magic bytes).
  Bio.Entrez.read builds the whole file in memory (~9x its size) and is ~7x slower
  (../shared/reference/performance.md), so bulk input never goes through it.
- `parse_entrez`: Bio.Entrez.read with its bundled DTDs, for efetch pages.

Each PubmedArticle is yielded as `ParsedArticle(article, xml)`: the model plus the raw
<PubmedArticle> bytes that raw_records keeps, so re-extraction never needs a refetch
(`parse_record_xml` reads those bytes back). Article itself gets no raw-XML field.

Safety: no network, no DTD loading, no entity resolution; a DTD internal subset (the
only place an XXE or an entity bomb can be declared) is refused, as is an unknown DTD,
a root other than PubmedArticleSet, an HTML page, and anything not well-formed. Every
refusal is a ParseError naming the input and the line/column.
"""
from __future__ import annotations

import gc
import gzip
import io
import os
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, NamedTuple, Union
from urllib.parse import urlparse

from lxml import etree

from .errors import ParseError
from .models import SECTION_SEPARATOR, Article, Deletion, MeshHeading, PublicationType, Section

Source = Union[str, os.PathLike, bytes, IO[bytes]]

ROOT_TAG = "PubmedArticleSet"
RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle")
GZIP_MAGIC = b"\x1f\x8b"
RCT_UI = "D016449"  # Publication type "Randomized Controlled Trial"


class ParsedArticle(NamedTuple):
    """One parsed record and its raw <PubmedArticle> XML (bytes, UTF-8)."""

    article: Article
    xml: bytes


def _known_dtds() -> frozenset[str]:
    """The PubMed DTD file names biopython bundles: the only DTDs we accept."""
    from Bio import Entrez

    folder = Path(Entrez.__path__[0]) / "DTDs"
    return frozenset(p.name for p in folder.glob("pubmed_*.dtd"))


KNOWN_DTDS = _known_dtds()


# --- opening input -----------------------------------------------------------------------

def _source_name(source: Source, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, bytes):
        return "<bytes>"
    return str(getattr(source, "name", "<stream>"))


def _open(source: Source, label: str, stack: ExitStack) -> tuple[IO[bytes], bytes]:
    """A binary stream of the (decompressed) XML and its first bytes; gzip is recognised
    by its magic bytes. Whatever is opened here is closed by `stack`."""
    if isinstance(source, (str, os.PathLike)):
        try:
            raw: IO[bytes] = stack.enter_context(open(source, "rb"))
        except OSError as e:
            raise ParseError(f"cannot open: {e.strerror}", source=label) from None
    elif isinstance(source, bytes):
        raw = io.BytesIO(source)
    else:
        raw = source
    stream: IO[bytes] = raw
    if _head(raw, 2) == GZIP_MAGIC:
        stream = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))  # type: ignore[arg-type]
    try:
        head = _head(stream, 512)
    except (OSError, EOFError) as e:
        raise ParseError(f"cannot read: {e}", source=label) from None
    return stream, head


def _head(stream: IO[bytes], n: int) -> bytes:
    """The first n bytes without consuming them (peek, or tell/seek)."""
    if hasattr(stream, "peek"):
        return stream.peek(n)[:n]
    if stream.seekable():
        pos = stream.tell()
        data = stream.read(n)
        stream.seek(pos)
        return data
    return b""


def _looks_like_html(head: bytes) -> bool:
    h = head.lstrip()[:200].lower()
    return h.startswith(b"<!doctype html") or h.startswith(b"<html") or b"<html" in h


# --- header checks -------------------------------------------------------------------------

def _check_document(root: etree._Element, label: str) -> None:
    """Refuse a wrong root, an unknown DTD, or any DTD internal subset (XXE, entity bombs)."""
    info = root.getroottree().docinfo
    line = root.sourceline
    if root.tag != ROOT_TAG:
        what = "an HTML page" if str(root.tag).lower() == "html" else f"root element <{root.tag}>"
        raise ParseError(f"not PubMed XML: {what} (expected <{ROOT_TAG}>)", source=label, line=line)
    dtd = info.internalDTD
    if dtd is not None and (any(True for _ in dtd.iterentities()) or any(True for _ in dtd.iterelements())):
        raise ParseError("refused: the DOCTYPE declares its own entities/elements "
                         "(external entity or entity-expansion risk)", source=label, line=line)
    if info.doctype:
        if info.root_name != ROOT_TAG:
            raise ParseError(f"unknown DOCTYPE {info.root_name!r}", source=label, line=line)
        url = info.system_url or ""
        host = urlparse(url).hostname or ""
        if url.rsplit("/", 1)[-1] not in KNOWN_DTDS or (host and not host.endswith(".nih.gov")):
            raise ParseError(f"unknown DTD {info.system_url or info.public_id!r} "
                             f"(accepted: NCBI's pubmed_*.dtd that biopython bundles)", source=label, line=line)


def _syntax_error(e: etree.XMLSyntaxError, label: str, head: bytes) -> ParseError:
    line, col = (e.position if e.position else (None, None))
    if _looks_like_html(head):
        return ParseError("not PubMed XML: an HTML page (an error page instead of XML?)", source=label,
                          line=line, column=col)
    msg = re.sub(r",? line \d+, column \d+$", "", ((e.msg or str(e)).splitlines() or ["syntax error"])[0])
    if not head.lstrip().startswith(b"<"):
        return ParseError(f"not XML: {msg}", source=label, line=line, column=col)
    return ParseError(f"malformed or truncated XML: {msg}", source=label, line=line, column=col)


# --- streaming reader ----------------------------------------------------------------------

def iter_records(source: Source, *, name: str | None = None,
                 keep: Callable[[etree._Element], bool] | None = None) -> Iterator[ParsedArticle | Deletion]:
    """Stream a PubmedArticleSet: a ParsedArticle per record, a Deletion per deleted PMID.

    Records are yielded as soon as their end tag is read, so when a file breaks part-way
    the records before the break have already been yielded; a broken record never is.
    `keep`, when given, sees each record element first; a record it refuses is skipped
    without building its Article (bulk ingest's --rct-only pre-filter).
    """
    label = _source_name(source, name)
    with ExitStack() as stack:
        stream, head = _open(source, label, stack)
        try:
            yield from _iterparse(stream, label, keep)
        except etree.XMLSyntaxError as e:
            raise _syntax_error(e, label, head) from None
        except (OSError, EOFError) as e:  # gzip: truncated or corrupt stream
            raise ParseError(f"cannot read: {e}", source=label) from None


_EVENT_TAGS = (ROOT_TAG, *RECORD_TAGS, "DeleteCitation")
"""The only elements iterparse reports: records are the root's children. Reporting every
element instead (about 45 a record, start and end) costs about 10 us a record in Python."""


def _iterparse(stream: IO[bytes], label: str,
               keep: Callable[[etree._Element], bool] | None = None) -> Iterator[ParsedArticle | Deletion]:
    first, stream = _sniff_root(stream)
    if first is not None and first.tag != ROOT_TAG:
        _check_document(first, label)  # refused before the rest is parsed, well-formed or not
    context = etree.iterparse(
        stream, events=("start", "end"), tag=_EVENT_TAGS, resolve_entities=False, no_network=True,
        load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True,
    )
    root = None
    for event, elem in context:
        if root is None:  # the root's start event, unless the root is not PubmedArticleSet
            root = elem.getroottree().getroot()
            _check_document(root, label)
        if event == "start" or elem.getparent() is not root:
            continue  # only direct children of the root are records
        tag = elem.tag
        if tag in RECORD_TAGS:
            if keep is None or keep(elem):
                try:
                    article = article_from_element(elem)
                except ParseError as e:
                    raise ParseError(e.message, source=label, line=elem.sourceline) from None
                xml = etree.tostring(elem, encoding="utf-8", with_tail=False)
                yield ParsedArticle(article, xml)
        elif tag == "DeleteCitation":
            for pmid in elem.iterfind("PMID"):
                text = (pmid.text or "").strip()
                if text:
                    yield Deletion(pmid=text)
        _release(elem)
    if root is None:
        if context.root is not None:
            _check_document(context.root, label)  # a well-formed document with another root
        raise ParseError("not XML: empty input", source=label, line=1)


_SNIFF_CHUNK = 4096
_SNIFF_LIMIT = 1 << 20


def _sniff_root(stream: IO[bytes]) -> tuple[etree._Element | None, IO[bytes]]:
    """The root element (None if the input ends or breaks before its start tag, or if
    that comes after the first MiB) and a stream that reads the input from its beginning
    again. iterparse reports only _EVENT_TAGS, so a root of another name is found here."""
    parser = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=False)
    seen: list[bytes] = []
    root = None
    while root is None and len(seen) * _SNIFF_CHUNK < _SNIFF_LIMIT:
        chunk = stream.read(_SNIFF_CHUNK)
        if not chunk:
            break
        seen.append(chunk)
        try:
            parser.feed(chunk)
        except etree.XMLSyntaxError:
            root = next((elem for _event, elem in parser.read_events()), None)
            break
        root = next((elem for _event, elem in parser.read_events()), None)
    return root, _Replay(b"".join(seen), stream)


class _Replay:
    """A binary stream that reads `first` again, then the rest of `stream`."""

    def __init__(self, first: bytes, stream: IO[bytes]) -> None:
        self._first, self._stream = first, stream

    def read(self, n: int = -1) -> bytes:
        if not self._first:
            return self._stream.read(n)
        if n is None or n < 0:
            data, self._first = self._first + self._stream.read(), b""
        else:
            data, self._first = self._first[:n], self._first[n:]
        return data


def _release(elem: etree._Element) -> None:
    """Free a processed record and its already-processed siblings: flat memory."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def parse_bytes(data: bytes, *, name: str | None = None) -> list[Article]:
    """All Articles of an in-memory PubmedArticleSet (deletions ignored)."""
    return [r.article for r in iter_records(data, name=name) if isinstance(r, ParsedArticle)]


def parse_record_xml(xml: bytes, *, name: str | None = None) -> Article:
    """One raw <PubmedArticle> (as stored in raw_records) back to its Article."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        elem = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as e:
        raise _syntax_error(e, name or "<raw record>", xml[:512]) from None
    if elem.tag not in RECORD_TAGS:
        raise ParseError(f"not a PubmedArticle: <{elem.tag}>", source=name or "<raw record>")
    return article_from_element(elem)


# --- one record -> Article -----------------------------------------------------------------

def _text(elem: etree._Element | None) -> str:
    """Element text with inline markup (<i>, <sup>, MathML) kept as its text."""
    if elem is None:
        return ""
    if not len(elem):  # no markup inside (the usual case): its text is all there is
        return (elem.text or "").strip()
    return "".join(elem.itertext()).strip()


def _year(pubdate: etree._Element | None) -> int | None:
    if pubdate is None:
        return None
    y = pubdate.findtext("Year")
    if y and y.strip().isdigit():
        return int(y.strip())
    m = re.search(r"\b(\d{4})\b", pubdate.findtext("MedlineDate") or "")
    return int(m.group(1)) if m else None


def build_sections(items: list[tuple[str | None, str | None, str]]) -> list[Section]:
    """(label, category, text) triples -> Sections with offsets in the joined abstract."""
    out: list[Section] = []
    offset = 0
    for label, category, text in items:
        out.append(Section(label=label or None, category=category or None, text=text, offset=offset))
        offset += len(text) + len(SECTION_SEPARATOR)
    return out


def article_from_element(rec: etree._Element) -> Article:
    """Map one <PubmedArticle> or <PubmedBookArticle> element to an Article."""
    if rec.tag == "PubmedBookArticle":
        return _book_article(rec)
    mc = rec.find("MedlineCitation")
    if mc is None:
        raise ParseError("PubmedArticle without MedlineCitation")
    pmid = (mc.findtext("PMID") or "").strip()
    if not pmid:
        raise ParseError("PubmedArticle without PMID")
    art = mc.find("Article")
    if art is None:
        art = etree.Element("Article")
    ids = {i.get("IdType"): (i.text or "").strip() for i in rec.iterfind("PubmedData/ArticleIdList/ArticleId")}
    doi = ids.get("doi") or next(
        ((e.text or "").strip() for e in art.iterfind("ELocationID") if e.get("EIdType") == "doi"), None)
    journal = art.find("Journal")
    sections = build_sections([
        (a.get("Label"), a.get("NlmCategory"), _text(a)) for a in art.iterfind("Abstract/AbstractText")
    ])
    return Article(
        pmid=pmid,
        doi=doi or None,
        pmcid=ids.get("pmc") or None,
        title=_text(art.find("ArticleTitle")) or _text(art.find("VernacularTitle")),
        journal=_journal(journal),
        year=_year(journal.find("JournalIssue/PubDate") if journal is not None else None),
        language=[t.strip() for t in (e.text for e in art.iterfind("Language")) if t and t.strip()],
        sections=sections,
        publication_types=[PublicationType(ui=p.get("UI"), name=_text(p))
                           for p in art.iterfind("PublicationTypeList/PublicationType")],
        mesh=[_mesh(h) for h in mc.iterfind("MeshHeadingList/MeshHeading")],
        keywords=[k for k in (_text(e) for e in mc.iterfind("KeywordList/Keyword")) if k],
        registry_ids=[a for a in (_text(e) for e in art.iterfind(
            "DataBankList/DataBank/AccessionNumberList/AccessionNumber")) if a],
    )


def _journal(journal: etree._Element | None) -> str | None:
    if journal is None:
        return None
    return _text(journal.find("ISOAbbreviation")) or _text(journal.find("Title")) or None


def _mesh(h: etree._Element) -> MeshHeading:
    d = h.find("DescriptorName")
    return MeshHeading(
        ui=d.get("UI") if d is not None else None,
        descriptor=_text(d),
        major=d is not None and d.get("MajorTopicYN") == "Y",
        qualifiers=[_text(q) for q in h.iterfind("QualifierName")],
    )


def _book_article(rec: etree._Element) -> Article:
    """A PubmedBookArticle (NCBI Bookshelf chapter): same fields where the book has them."""
    bd = rec.find("BookDocument")
    if bd is None:
        raise ParseError("PubmedBookArticle without BookDocument")
    pmid = (bd.findtext("PMID") or "").strip()
    if not pmid:
        raise ParseError("PubmedBookArticle without PMID")
    ids = {i.get("IdType"): (i.text or "").strip() for i in rec.iterfind("PubmedBookData/ArticleIdList/ArticleId")}
    ids.update({i.get("IdType"): (i.text or "").strip() for i in bd.iterfind("ArticleIdList/ArticleId")})
    return Article(
        pmid=pmid,
        doi=ids.get("doi") or None,
        pmcid=ids.get("pmc") or None,
        title=_text(bd.find("ArticleTitle")) or _text(bd.find("Book/BookTitle")),
        journal=_text(bd.find("Book/BookTitle")) or None,
        year=_year(bd.find("Book/PubDate")),
        language=[t.strip() for t in (e.text for e in bd.iterfind("Language")) if t and t.strip()],
        sections=build_sections([(a.get("Label"), a.get("NlmCategory"), _text(a))
                                 for a in bd.iterfind("Abstract/AbstractText")]),
        publication_types=[PublicationType(ui=p.get("UI"), name=_text(p))
                           for p in bd.iterfind("PublicationType")],
        keywords=[k for k in (_text(e) for e in bd.iterfind("KeywordList/Keyword")) if k],
    )


def is_rct(article: Article) -> bool:
    """Indexed as a randomized controlled trial (publication type D016449)."""
    return any(p.ui == RCT_UI for p in article.publication_types)


# --- Bio.Entrez reader -----------------------------------------------------------------------

def parse_entrez(source: Source, *, name: str | None = None) -> list[Article]:
    """Articles of an efetch response read with Bio.Entrez.read (bundled DTDs, no network).

    The same header checks as iter_records run first, so Entrez never sees an unknown
    DTD (which it would try to download) or an internal subset. gc is disabled around the
    call: cyclic GC is half of Entrez.read's cost.
    """
    from Bio import Entrez
    from Bio.Entrez.Parser import CorruptedXMLError, NotXMLError, ValidationError

    label = _source_name(source, name)
    with ExitStack() as stack:
        stream, _head_bytes = _open(source, label, stack)
        try:
            data = stream.read()
        except (OSError, EOFError) as e:
            raise ParseError(f"cannot read: {e}", source=label) from None
    _check_header(data, label, need_dtd=True)
    enabled = gc.isenabled()
    gc.disable()
    try:
        record = Entrez.read(io.BytesIO(data), validate=True, escape=True)
    except (NotXMLError, CorruptedXMLError, ValidationError, RuntimeError, ValueError) as e:
        raise ParseError(f"Bio.Entrez could not read it: {str(e).splitlines()[0]}", source=label) from None
    finally:
        if enabled:
            gc.enable()
    articles: list[Article] = []
    for rec in record.get("PubmedArticle", []):
        articles.append(_entrez_article(rec))
    for rec in record.get("PubmedBookArticle", []):
        articles.append(_entrez_book(rec))
    return articles


def _check_header(data: bytes, label: str, *, need_dtd: bool) -> None:
    """Run the root/DOCTYPE checks on the first element of `data` (parsing stops there)."""
    context = etree.iterparse(io.BytesIO(data), events=("start",), resolve_entities=False,
                              no_network=True, load_dtd=False, huge_tree=False)
    try:
        for _event, elem in context:
            _check_document(elem, label)
            if need_dtd and not elem.getroottree().docinfo.doctype:
                raise ParseError("no DOCTYPE: Bio.Entrez needs the PubMed DTD", source=label, line=1)
            return
    except etree.XMLSyntaxError as e:
        raise _syntax_error(e, label, data[:512]) from None
    raise ParseError("not XML: empty input", source=label, line=1)


def _etext(value: object) -> str:
    """An Entrez string (escape=True: markup literal, text escaped) -> its plain text."""
    s = str(value)
    if "<" not in s and "&" not in s:
        return s.strip()
    frag = etree.fromstring(f"<x>{s}</x>".encode("utf-8"),
                            etree.XMLParser(resolve_entities=False, no_network=True, recover=False))
    return "".join(frag.itertext()).strip()


def _eattr(value: object, key: str) -> str | None:
    return getattr(value, "attributes", {}).get(key)


def _entrez_year(pubdate: dict) -> int | None:
    y = str(pubdate.get("Year", "")).strip()
    if y.isdigit():
        return int(y)
    m = re.search(r"\b(\d{4})\b", str(pubdate.get("MedlineDate", "")))
    return int(m.group(1)) if m else None


def _entrez_article(rec: dict) -> Article:
    mc = rec["MedlineCitation"]
    art = mc.get("Article", {})
    ids = {_eattr(i, "IdType"): _etext(i) for i in rec.get("PubmedData", {}).get("ArticleIdList", [])}
    doi = ids.get("doi") or next(
        (_etext(e) for e in art.get("ELocationID", []) if _eattr(e, "EIdType") == "doi"), None)
    journal = art.get("Journal", {})
    abstract = art.get("Abstract", {}).get("AbstractText", [])
    registry = [
        _etext(a) for db in art.get("DataBankList", []) for a in db.get("AccessionNumberList", [])
    ]
    return Article(
        pmid=_etext(mc["PMID"]),
        doi=doi or None,
        pmcid=ids.get("pmc") or None,
        title=_etext(art.get("ArticleTitle", "")) or _etext(art.get("VernacularTitle", "")),
        journal=_etext(journal.get("ISOAbbreviation", "")) or _etext(journal.get("Title", "")) or None,
        year=_entrez_year(journal.get("JournalIssue", {}).get("PubDate", {})),
        language=[t for t in (_etext(x) for x in art.get("Language", [])) if t],
        sections=build_sections([(_eattr(a, "Label"), _eattr(a, "NlmCategory"), _etext(a)) for a in abstract]),
        publication_types=[PublicationType(ui=_eattr(p, "UI"), name=_etext(p))
                           for p in art.get("PublicationTypeList", [])],
        mesh=[MeshHeading(
            ui=_eattr(h["DescriptorName"], "UI"), descriptor=_etext(h["DescriptorName"]),
            major=_eattr(h["DescriptorName"], "MajorTopicYN") == "Y",
            qualifiers=[_etext(q) for q in h.get("QualifierName", [])],
        ) for h in mc.get("MeshHeadingList", [])],
        keywords=[k for kl in mc.get("KeywordList", []) for k in (_etext(x) for x in kl) if k],
        registry_ids=[r for r in registry if r],
    )


def _entrez_book(rec: dict) -> Article:
    bd = rec["BookDocument"]
    ids = {_eattr(i, "IdType"): _etext(i) for i in rec.get("PubmedBookData", {}).get("ArticleIdList", [])}
    ids.update({_eattr(i, "IdType"): _etext(i) for i in bd.get("ArticleIdList", [])})
    book = bd.get("Book", {})
    abstract = bd.get("Abstract", {}).get("AbstractText", [])
    return Article(
        pmid=_etext(bd["PMID"]),
        doi=ids.get("doi") or None,
        pmcid=ids.get("pmc") or None,
        title=_etext(bd.get("ArticleTitle", "")) or _etext(book.get("BookTitle", "")),
        journal=_etext(book.get("BookTitle", "")) or None,
        year=_entrez_year(book.get("PubDate", {})),
        language=[t for t in (_etext(x) for x in bd.get("Language", [])) if t],
        sections=build_sections([(_eattr(a, "Label"), _eattr(a, "NlmCategory"), _etext(a)) for a in abstract]),
        publication_types=[PublicationType(ui=_eattr(p, "UI"), name=_etext(p))
                           for p in bd.get("PublicationType", [])],
        keywords=[k for kl in bd.get("KeywordList", []) for k in (_etext(x) for x in kl) if k],
    )
