"""parse.py: every Article field on our fixtures, both readers agreeing, and each bad input refused."""
from __future__ import annotations

import gzip
import io
import socket
from pathlib import Path

import pytest

from extractor import parse
from extractor.errors import ParseError
from extractor.models import Deletion
from extractor.parse import ParsedArticle, iter_records, parse_bytes, parse_entrez, parse_record_xml


@pytest.fixture(scope="module")
def efetch(fixtures_dir: Path) -> dict:
    return {a.pmid: a for a in parse_bytes((fixtures_dir / "efetch_trials.xml").read_bytes())}


@pytest.fixture(scope="module")
def baseline(fixtures_dir: Path) -> list:
    return list(iter_records(fixtures_dir / "baseline_sample.xml.gz"))


# --- fields --------------------------------------------------------------------------------

def test_efetch_has_every_record_in_order(fixtures_dir: Path) -> None:
    pmids = [r.article.pmid for r in iter_records(fixtures_dir / "efetch_trials.xml")]
    assert pmids == ["99900001", "99900002", "99900003", "99900004", "99900005", "99900006"]


def test_pmid_is_medline_citation_pmid_not_comment_or_reference(efetch: dict) -> None:
    assert "99900091" not in efetch and "99900099" not in efetch  # CommentsCorrections / Reference PMIDs


def test_doi_from_article_id_list_not_references(efetch: dict) -> None:
    assert efetch["99900001"].doi == "10.5555/jfo.2024.0001"
    assert efetch["99900006"].doi == "10.5555/fmp.2021.0006"  # ArticleIdList only, no ELocationID


def test_doi_only_in_elocation_id(efetch: dict) -> None:
    assert efetch["99900002"].doi == "10.5555/ilo.2023.0002"  # the pii ELocationID is not taken


def test_no_doi_anywhere(efetch: dict) -> None:
    assert efetch["99900005"].doi is None


def test_pmcid(efetch: dict) -> None:
    assert efetch["99900001"].pmcid == "PMC9990001"
    assert efetch["99900002"].pmcid is None


def test_title_keeps_inline_markup_as_text(efetch: dict) -> None:
    assert efetch["99900001"].title == "Zanotinib versus Placebo in Advanced KRTX-Mutant Thyroid Carcinoma (ZEN-1)."


def test_journal_prefers_iso_abbreviation_then_title(efetch: dict) -> None:
    assert efetch["99900001"].journal == "J Fict Oncol"
    assert efetch["99900003"].journal == "Invented clinical research reports"


def test_year_from_pubdate_or_medline_date(efetch: dict, baseline: list) -> None:
    assert efetch["99900001"].year == 2024
    assert efetch["99900002"].year == 2023  # <MedlineDate>2023 Jan-Feb</MedlineDate>
    by = {r.article.pmid: r.article for r in baseline if isinstance(r, ParsedArticle)}
    assert by["99900008"].year == 2019  # "Winter 2019-2020": the first year


def test_languages(efetch: dict) -> None:
    assert efetch["99900003"].language == ["eng", "spa"]


def test_structured_sections_with_label_category_and_offsets(efetch: dict) -> None:
    a = efetch["99900001"]
    assert [(s.label, s.category) for s in a.sections] == [
        ("BACKGROUND", "BACKGROUND"), ("METHODS", "METHODS"), ("RESULTS", "RESULTS"),
        ("CONCLUSIONS", "CONCLUSIONS")]
    for s in a.sections:
        assert a.abstract[s.offset:s.offset + len(s.text)] == s.text
    assert a.sections[0].offset == 0
    assert a.sections[1].offset == len(a.sections[0].text) + 1  # sections joined by "\n"
    assert "Copyright" not in a.abstract  # CopyrightInformation is not abstract text
    results = a.sections[2]
    i = a.abstract.index("0.52")
    assert a.section_at(i) == results


def test_lancet_labels_kept_as_written(efetch: dict) -> None:
    a = efetch["99900002"]
    assert [(s.label, s.category) for s in a.sections][2] == ("Findings", "RESULTS")
    assert "0·61" in a.abstract  # middle dots are left to the extractor's normalisation


def test_unstructured_abstract_is_one_unlabelled_section(efetch: dict) -> None:
    a = efetch["99900003"]
    assert len(a.sections) == 1 and a.sections[0].label is None and a.sections[0].category is None
    assert "75 mg/m2" in a.abstract and "Cmax" in a.abstract  # <sup>2</sup>, C<sub>max</sub>


def test_entities_and_mathml_become_plain_text(efetch: dict) -> None:
    text = efetch["99900006"].abstract
    assert "lactate & heart rate" in text and "P < 0.01" in text and "r = 0.77" in text
    assert "<" not in text.replace("P < 0.01", "")  # no tag survives
    assert "V" in text and "mml" not in text


def test_record_without_abstract(efetch: dict) -> None:
    a = efetch["99900005"]
    assert a.sections == [] and a.abstract == ""
    assert a.title.startswith("Kinase inhibitors")


def test_publication_types_with_ui_and_rct_flag(efetch: dict) -> None:
    a = efetch["99900001"]
    assert ("D016449", "Randomized Controlled Trial") in [(p.ui, p.name) for p in a.publication_types]
    assert parse.is_rct(a)
    assert not parse.is_rct(efetch["99900005"])


def test_mesh_headings(efetch: dict) -> None:
    mesh = {m.descriptor: m for m in efetch["99900001"].mesh}
    thyroid = mesh["Thyroid Neoplasms"]
    assert thyroid.ui == "D013964" and thyroid.major
    assert thyroid.qualifiers == ["drug therapy", "mortality"]
    assert not mesh["Humans"].major


def test_keywords_keep_markup_as_text(efetch: dict) -> None:
    assert efetch["99900001"].keywords == ["kinase inhibitor", "KRTX mutation"]


def test_registry_ids_from_data_bank_list(efetch: dict) -> None:
    assert efetch["99900001"].registry_ids == ["NCT09990001"]
    assert efetch["99900004"].registry_ids == ["NCT09990004", "2099-000004-12"]
    assert efetch["99900003"].registry_ids == []  # the NCT id only in text is the extractor's job


def test_baseline_gz_records_then_deletions(baseline: list) -> None:
    kinds = [(type(r).__name__, r.pmid if isinstance(r, Deletion) else r.article.pmid) for r in baseline]
    assert kinds == [("ParsedArticle", "99900007"), ("ParsedArticle", "99900008"),
                     ("ParsedArticle", "99900009"), ("Deletion", "99900005"), ("Deletion", "99900077")]


def test_book_article(baseline: list) -> None:
    book = baseline[2].article
    assert book.title == "Chapter 3: Follow-up schedules." and book.journal == "Handbook of invented thyroid care"
    assert book.year == 2020 and [s.label for s in book.sections] == ["SUMMARY"]


# --- inputs ---------------------------------------------------------------------------------

def test_gzip_told_by_magic_bytes_from_every_source_kind(fixtures_dir: Path, tmp_path: Path) -> None:
    gz = (fixtures_dir / "baseline_sample.xml.gz").read_bytes()
    renamed = tmp_path / "looks_plain.xml"
    renamed.write_bytes(gz)
    expected = [r for r in iter_records(fixtures_dir / "baseline_sample.xml.gz")]
    for source in (gz, renamed, str(renamed), io.BytesIO(gz), open(renamed, "rb")):
        assert list(iter_records(source)) == expected
    plain = gzip.decompress(gz)
    assert list(iter_records(plain)) == expected


def test_raw_xml_is_the_record_and_parses_back(fixtures_dir: Path) -> None:
    for rec in iter_records(fixtures_dir / "efetch_trials.xml"):
        assert rec.xml.startswith(b"<PubmedArticle>") and rec.xml.endswith(b"</PubmedArticle>")
        assert parse_record_xml(rec.xml) == rec.article


def test_streaming_releases_processed_records(fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays flat: after each record nothing before it is left in the tree (what the
    root still holds is the parser's read-ahead, bounded by its buffer, not the file)."""
    one = (fixtures_dir / "efetch_trials.xml").read_bytes()
    start, end = one.index(b"<PubmedArticle>"), one.rindex(b"</PubmedArticle>") + len(b"</PubmedArticle>")
    big = one[:start] + one[start:end] * 100 + one[end:]
    sizes: list[int] = []
    release = parse._release

    def spy(elem) -> None:
        release(elem)
        assert elem.getprevious() is None and len(elem) == 0
        sizes.append(len(elem.getparent()))

    monkeypatch.setattr(parse, "_release", spy)
    n = sum(1 for _ in iter_records(big))
    assert n == 600 and max(sizes) < 50


# --- the two readers agree --------------------------------------------------------------------

def _lxml(path: Path) -> list:
    return [r.article for r in iter_records(path) if isinstance(r, ParsedArticle)]


@pytest.mark.parametrize("name", ["efetch_trials.xml", "baseline_sample.xml.gz"])
def test_entrez_and_lxml_identical_on_fixtures(fixtures_dir: Path, name: str) -> None:
    assert parse_entrez(fixtures_dir / name) == _lxml(fixtures_dir / name)


def test_entrez_and_lxml_identical_on_real_samples(shared_dir: Path) -> None:
    ncbi = shared_dir / "reference" / "ncbi"
    files = sorted(ncbi.glob("pubmed*.xml")) + [ncbi / "pubmedsample_2019.xml.gz",
                                                 shared_dir / "corpus" / "dev.xml"]
    n = 0
    for path in files:
        ours = _lxml(path)
        assert parse_entrez(path) == ours, path.name
        n += len(ours)
    assert n > 250


# --- bad input -------------------------------------------------------------------------------

BROKEN = {
    "not_xml.txt": "not XML",
    "html_error.html": "HTML page",
    "truncated.xml": "truncated",
    "truncated.xml.gz": "cannot read",
    "xxe.xml": "refused",
    "billion_laughs.xml": "refused",
    "unknown_dtd.xml": "unknown DTD",
    "wrong_root.xml": "root element <eSearchResult>",
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_bad_input_is_one_line_parse_error_with_file_and_position(fixtures_dir: Path, name: str,
                                                                   no_network: None) -> None:
    path = fixtures_dir / "broken" / name
    with pytest.raises(ParseError) as e:
        list(iter_records(path))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)) and BROKEN[name] in msg
    if not name.endswith(".gz"):
        assert e.value.line is not None


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_entrez_reader_refuses_the_same_without_network(fixtures_dir: Path, name: str, no_network: None) -> None:
    with pytest.raises(ParseError) as e:
        parse_entrez(fixtures_dir / "broken" / name)
    assert "\n" not in str(e.value)


def test_entity_bomb_never_expands(fixtures_dir: Path) -> None:
    with pytest.raises(ParseError):
        parse_bytes((fixtures_dir / "broken" / "billion_laughs.xml").read_bytes())


def test_truncated_file_yields_whole_records_before_the_break(fixtures_dir: Path) -> None:
    got = []
    with pytest.raises(ParseError):
        for r in iter_records(fixtures_dir / "broken" / "truncated.xml"):
            got.append(r.article.pmid)
    assert got == ["99900001", "99900002"]


_PROLOGUE = b'<?xml version="1.0"?>\n'


@pytest.mark.parametrize("data, expected", [
    (_PROLOGUE + b"<eSearchResult><Count>3</Count><IdList></eSearchResult>", "root element <eSearchResult>"),
    (_PROLOGUE + b"<!--" + b"padding " * 2000 + b"-->\n<eSearchResult><Count/></eSearchResult>",
     "root element <eSearchResult>"),
    (_PROLOGUE + b"<!--" + b"padding " * 2000 + b"-->\n<html><body><p>busy</body></html>", "an HTML page"),
    (b"<PubmedArticleSet><PubmedArticle><MedlineCitation/></PubmedArticle></PubmedArticleSet>", "without PMID"),
])
def test_wrong_root_is_named_whatever_follows_it(data: bytes, expected: str) -> None:
    """The root is checked before the rest is read: a wrong root is reported as such even
    when the document breaks later or its start tag comes after a long prologue."""
    with pytest.raises(ParseError, match=expected):
        list(iter_records(data))


def test_only_children_of_the_root_are_records() -> None:
    data = (b"<PubmedArticleSet><Other><PubmedArticle><MedlineCitation><PMID>5</PMID></MedlineCitation>"
            b"</PubmedArticle></Other><DeleteCitation><PMID>6</PMID></DeleteCitation>"
            b"<PubmedArticleSet/></PubmedArticleSet>")
    assert list(iter_records(data)) == [Deletion(pmid="6")]


def test_missing_file_and_empty_input() -> None:
    with pytest.raises(ParseError, match="cannot open"):
        list(iter_records("/nonexistent/file.xml"))
    with pytest.raises(ParseError):
        list(iter_records(b""))


@pytest.mark.parametrize("doctype, expected", [
    ('<!DOCTYPE PubmedArticleSet [ <!ENTITY % ext SYSTEM "http://127.0.0.1:9/x.dtd"> %ext; ]>', "refused"),
    ('<!DOCTYPE PubmedArticleSet [ ]>', "unknown DTD"),
    ('<!DOCTYPE PubmedArticleSet SYSTEM "http://127.0.0.1:9/pubmed_250101.dtd">', "unknown DTD"),
    ('<!DOCTYPE html>', "unknown D"),
])
def test_other_doctype_tricks_refused_by_both_readers(doctype: str, expected: str, no_network: None) -> None:
    data = f'<?xml version="1.0"?>\n{doctype}\n<PubmedArticleSet></PubmedArticleSet>'.encode()
    for reader in (parse_bytes, parse_entrez):
        with pytest.raises(ParseError, match=expected):
            reader(data)


def test_no_doctype_is_fine_for_lxml_but_entrez_needs_the_dtd() -> None:
    assert parse_bytes(b"<PubmedArticleSet></PubmedArticleSet>") == []
    with pytest.raises(ParseError, match="no DOCTYPE"):
        parse_entrez(b"<PubmedArticleSet></PubmedArticleSet>")


@pytest.mark.parametrize("name", ["efetch_trials.xml", "baseline_sample.xml.gz"])
def test_fixtures_are_valid_under_ncbis_dtd(fixtures_dir: Path, name: str) -> None:
    """Our fixtures follow pubmed_250101.dtd exactly (the copy biopython bundles, read locally)."""
    from Bio import Entrez
    from lxml import etree

    data = (fixtures_dir / name).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    dtd = etree.DTD(str(Path(Entrez.__path__[0]) / "DTDs" / "pubmed_250101.dtd"))
    tree = etree.fromstring(data, etree.XMLParser(load_dtd=False, no_network=True, resolve_entities=False))
    assert dtd.validate(tree), dtd.error_log.filter_from_errors()
