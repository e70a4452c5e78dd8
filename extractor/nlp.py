"""The word side of extraction: one blank English spaCy pipeline with the endpoint matchers.

Built once, lazily (`pipeline()`), from rules/endpoints.json, so importing the package
costs nothing and every caller shares the same matchers. Numbers are not found here
(regexes over normalised text do that); spaCy only names the words around them.
Sentences are split by a regex that keeps offsets. Measured on the dev corpus against
spaCy's sentencizer: the same sentences in 304 of 318 sections (the rest differ on an
opening bracket, "(Funded by ...", and stops after mixed-case words that spaCy does
not split, as in "greater in PVpM. The"), 5.6 times faster.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import field_validator

from .errors import RuleError
from .rules import Rule, load_rules

__all__ = ["Hit", "EndpointRules", "endpoint_rules", "pipeline", "find_endpoints", "is_response", "sentences", "check_examples"]


_Rule = Rule  # rule-file models reject unknown keys


class EndpointRule(_Rule):
    code: str
    phrases: list[str]
    examples: list[tuple[str, str]]

    @field_validator("code")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in CODES and not (v.startswith("other:") and len(v) > 6):
            raise ValueError(f"unknown endpoint code {v!r}")
        return v


class RatioCue(_Rule):
    phrase: str
    code: str


class QualifiedResponse(_Rule):
    """A bare "response" right after a named measure ("ACR20 response", "MDA response rates")
    is that measure's response, not a tumour's objective response: other:<measure> response.
    Response criteria and imaging ("RECIST response", "PET response") keep ORR."""

    generic: list[str]
    measure: str  # the word just before the phrase, matched at the end of the text before it
    keep: list[str]
    threshold: str  # a score threshold ("ACR20", "PASI 75") is named by attribution's score_outcome
    examples: list[tuple[str, str]]


class EndpointRules(_Rule):
    endpoints: list[EndpointRule]
    ratio_cues: list[RatioCue]
    cue_examples: list[tuple[str, str]]
    qualified_response: QualifiedResponse


CODES = ("PFS", "OS", "DFS", "EFS", "RFS", "MFS", "TTP", "DOR", "ORR", "CR", "PCR", "DCR", "AE3")


@dataclass(frozen=True)
class Hit:
    """An endpoint phrase in a text: its span, code, and whether it is a ratio cue ("for death")."""

    start: int
    end: int
    code: str
    cue: bool


@lru_cache(maxsize=1)
def endpoint_rules() -> EndpointRules:
    return load_rules("endpoints", EndpointRules)


def _is_abbreviation(phrase: str) -> bool:
    """Short forms (OS, pCR, DoR) are matched case-sensitively: "os" or "cr" in prose is not one."""
    return " " not in phrase and "-" not in phrase and sum(c.isupper() for c in phrase) >= 2


@lru_cache(maxsize=1)
def _phrase_parts() -> list[tuple[bool, str, frozenset[str]]] | None:
    """For every phrase: whether it is matched exactly, its anchor, and every ASCII run of its
    tokens ("grade" of "≥grade"), lower-cased for the LOWER matcher: a token's runs are in the
    text too. None when some phrase has no ASCII character (case folding could then defeat a
    substring test)."""
    nlp = pipeline()[0]
    out: list[tuple[bool, str, frozenset[str]]] = []
    rules = endpoint_rules()
    for phrase in [p for e in rules.endpoints for p in e.phrases] + [c.phrase for c in rules.ratio_cues]:
        toks = [run for t in nlp.make_doc(phrase) for run in re.findall(r"[!-~]+", t.text)]
        if not toks:
            return None
        best = _anchor_run(toks)
        if _is_abbreviation(phrase):
            out.append((True, best, frozenset(toks)))
        else:
            out.append((False, best.lower(), frozenset(t.lower() for t in toks)))
    return out


def _anchor_run(runs: list[str]) -> str:
    """The run a phrase is found by: the longest with a letter (the rarest, roughly)."""
    return max(runs, key=lambda t: (any(c.isalpha() for c in t), len(t)))


@lru_cache(maxsize=1)
def _reaches() -> dict[tuple[bool, str], tuple[int, int]]:
    """(exact, anchor) -> how far a match of a phrase with that anchor can extend before and
    after it, in characters: the phrase's tokens (as long in the text, where lower-casing keeps
    the length) with at most one space between two."""
    nlp = pipeline()[0]
    rules = endpoint_rules()
    out: dict[tuple[bool, str], tuple[int, int]] = {}
    for phrase in [p for e in rules.endpoints for p in e.phrases] + [c.phrase for c in rules.ratio_cues]:
        exact = _is_abbreviation(phrase)
        toks = [t.text if exact else t.lower_ for t in nlp.make_doc(phrase)]
        anchor = _anchor_run([run for t in toks for run in re.findall(r"[!-~]+", t)])
        anchor = anchor if exact else anchor.lower()
        for k, tok in enumerate(toks):
            i = tok.find(anchor)
            while i >= 0:
                before = sum(len(x) + 1 for x in toks[:k]) + i
                after = len(tok) - i - len(anchor) + sum(len(x) + 1 for x in toks[k + 1:])
                b0, a0 = out.get((exact, anchor), (0, 0))
                out[(exact, anchor)] = (max(b0, before), max(a0, after))
                i = tok.find(anchor, i + 1)
    return out


@lru_cache(maxsize=1)
def _anchors() -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """One token of every phrase (lower-cased for the LOWER matcher, as written for the exact
    one): a text that holds none of them cannot match, so it need not be tokenized."""
    parts = _phrase_parts()
    if parts is None:
        return None
    return (tuple(sorted({a for ex, a, _ in parts if not ex})), tuple(sorted({a for ex, a, _ in parts if ex})))


_Groups = tuple[tuple[str, tuple[frozenset[str], ...]], ...]


@lru_cache(maxsize=1)
def _groups() -> tuple[re.Pattern[str], _Groups, re.Pattern[str], _Groups]:
    """The phrases by anchor (lower-cased, exact), each with a regex that finds any anchor."""
    parts = _phrase_parts() or []
    lower: dict[str, set[frozenset[str]]] = {}
    exact: dict[str, set[frozenset[str]]] = {}
    for ex, anchor, runs in parts:
        (exact if ex else lower).setdefault(anchor, set()).add(runs)

    def gate(index: dict[str, set[frozenset[str]]]) -> re.Pattern[str]:
        return re.compile("|".join(re.escape(a) for a in sorted(index, key=len, reverse=True)) or "(?!)")

    def groups(index: dict[str, set[frozenset[str]]]) -> _Groups:
        return tuple((a, tuple(sorted(index[a], key=sorted))) for a in sorted(index))

    return gate(lower), groups(lower), gate(exact), groups(exact)


def _anchored(text: str) -> list[tuple[int, int]]:
    """Around each place `text` holds the anchor of a phrase that may match it (one lacking
    none of its runs), the span a match holding it would lie in: every match lies in one.
    Empty for most texts (26,789 of the 30,925 that extraction asks about in the bench
    corpus), which then need no tokenizing."""
    _, lower, exact_gate, exact = _groups()
    reaches = _reaches()
    low = text.lower()
    out: list[tuple[int, int]] = []
    # a text holds a lower-case anchor 1 time in 4: testing each (`in`) beats searching their
    # alternation (1.5x); the case-kept ones are rarer, their alternation first
    for src, gate, groups, ex in ((low, None, lower, False), (text, exact_gate, exact, True)):
        if gate is not None and not gate.search(src):
            continue
        for anchor, alts in groups:
            if anchor in src and any(all(r in src for r in runs) for runs in alts):
                before, after = reaches[(ex, anchor)]
                i = src.find(anchor)
                while i >= 0:
                    out.append((max(0, i - before), min(len(text), i + len(anchor) + after)))
                    i = src.find(anchor, i + 1)
    return out


def _windows(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Disjoint stretches of `text` that hold `spans`, each from the start of a
    whitespace-delimited chunk to the end of one. The tokenizer splits each chunk on its own,
    so a stretch has the same tokens as the whole text has there."""
    n = len(text)
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        while s > 0 and not text[s - 1].isspace():
            s -= 1
        while s < e and text[s].isspace():
            s += 1
        while e < n and not text[e].isspace():
            e += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


@lru_cache(maxsize=1)
def pipeline() -> tuple[Any, Any, Any, dict[int, tuple[str, bool]]]:
    """(nlp, lower-case PhraseMatcher, case-sensitive PhraseMatcher, label -> (code, is_cue))."""
    import spacy
    from spacy.attrs import LOWER
    from spacy.matcher import PhraseMatcher

    nlp = spacy.blank("en")
    # The matchers compare ORTH and LOWER only, and the tokenizer reads no lexeme attribute:
    # every other getter (shape, like_num, like_url, is_stop ...) ran for each new token
    # string (each number of each abstract), a third of find_endpoints' time.
    nlp.vocab.lex_attr_getters = {LOWER: nlp.vocab.lex_attr_getters[LOWER]}
    lower, exact = PhraseMatcher(nlp.vocab, attr="LOWER"), PhraseMatcher(nlp.vocab, attr="ORTH")
    labels: dict[int, tuple[str, bool]] = {}
    rules = endpoint_rules()
    entries = [(e.code, p, False) for e in rules.endpoints for p in e.phrases]
    entries += [(c.code, c.phrase, True) for c in rules.ratio_cues]
    for code, phrase, cue in entries:
        key = f"{'cue' if cue else 'ep'}:{code}"
        labels[nlp.vocab.strings.add(key)] = (code, cue)
        target = exact if _is_abbreviation(phrase) else lower
        target.add(key, [nlp.make_doc(phrase)])
    return nlp, lower, exact, labels


def find_endpoints(text: str) -> list[Hit]:
    """Endpoint phrases and ratio cues in `text`, longest first where they overlap, in text order."""
    if _anchors() is None:  # no pre-check: tokenize every text
        return list(_matched(text))
    return list(_endpoints(text))


@lru_cache(maxsize=8192)
def _endpoints(text: str) -> tuple[Hit, ...]:
    """find_endpoints, kept per text: extraction asks about the same sentence several times
    (Hits are frozen; each caller gets a list of its own). Only the stretches around the
    anchors are tokenized: a sentence's numbers and most of its words are never looked up."""
    spans = _anchored(text)
    if not spans:
        return ()
    if len(text.lower()) != len(text):  # anchor offsets (found lower-cased) are not the text's
        return _matched(text)
    hits = [h for s, e in _windows(text, spans) for h in _phrase_hits(text[s:e], s)]
    return tuple(_qualified(text, h, hits) for h in hits)


def _matched(text: str) -> tuple[Hit, ...]:
    """The phrase matches of `text`, tokenized whole."""
    hits = _phrase_hits(text, 0)
    return tuple(_qualified(text, h, hits) for h in hits)


def _phrase_hits(text: str, offset: int) -> list[Hit]:
    """The phrase matches of `text` (tokenized), longest first where they overlap, in text
    order, as Hits at `offset` + their position in `text`."""
    nlp, lower, exact, labels = pipeline()
    doc = nlp.make_doc(text)
    spans = []
    for match_id, s, e in [*lower(doc), *exact(doc)]:
        spans.append((s, e, match_id))
    spans.sort(key=lambda x: (-(x[1] - x[0]), x[0]))
    taken: set[int] = set()
    out: list[Hit] = []
    for s, e, match_id in spans:
        if any(i in taken for i in range(s, e)):
            continue
        taken.update(range(s, e))
        code, cue = labels[match_id]
        out.append(Hit(offset + doc[s].idx, offset + doc[e - 1].idx + len(doc[e - 1]), code, cue))
    out.sort(key=lambda h: h.start)
    return out


@lru_cache(maxsize=1)
def _qualifier() -> tuple[frozenset[str], re.Pattern[str], frozenset[str], re.Pattern[str]]:
    q = endpoint_rules().qualified_response
    return frozenset(g.lower() for g in q.generic), re.compile(q.measure), frozenset(q.keep), re.compile(q.threshold)


def _qualified(text: str, h: Hit, hits: list[Hit]) -> Hit:
    """`h` renamed other:<measure> response when it is a bare response after a named measure."""
    if h.code != "ORR":
        return h
    generic, measure, keep, threshold = _qualifier()
    if text[h.start:h.end].lower() not in generic:
        return h
    m = measure.search(text, max(0, h.start - 40), h.start)
    if m is None or m.group(1) in keep or threshold.search(m.group(1)):
        return h
    if any(x.end > m.start(1) and x.start < h.start for x in hits if x is not h):
        return h  # the word before is itself an endpoint phrase
    return Hit(h.start, h.end, f"other:{m.group(1).lower()}{_RESPONSE}", h.cue)


_RESPONSE = " response"


def is_response(code: str) -> bool:
    """A response endpoint: tumour (ORR, CR) or a named measure's (other:<measure> response)."""
    return code in ("ORR", "CR") or code.startswith("other:") and code.endswith(_RESPONSE)


_ABBREV = ("vs", "v", "e.g", "i.e", "al", "approx", "no", "fig", "ca", "resp", "incl", "pts")
# a stop before a capital (or the end), or a newline; the class comes first so that the
# search skips to those characters (1.45x faster than the alternation "[.!?](?=...)|\n")
_BOUNDARY = re.compile(r"[.!?\n](?:(?<=\n)|(?=\s+[A-Z0-9(\[]|\s*$))")
_WORD_BEFORE = re.compile(r"[A-Za-z.]+$")


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`: a stop before a capital, or a newline.

    "vs." "e.g." "et al." never end one; decimals have no space after their point, so
    "P<.001. Grade 3" and "P=0.005). 12-month" end where they should.
    """
    out: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.group() != "\n":
            word = _WORD_BEFORE.search(text, max(0, m.start() - 8), m.start())
            if word and word.group().lower().rstrip(".") in _ABBREV:
                continue
        end = m.end() if m.group() != "\n" else m.start()
        if text[start:end].strip():
            s = start + (len(text[start:end]) - len(text[start:end].lstrip()))
            out.append((s, end))
        start = m.end()
    if text[start:].strip():
        s = start + (len(text[start:]) - len(text[start:].lstrip()))
        out.append((s, len(text.rstrip())))
    return out


def check_examples() -> None:
    """Run every example of rules/endpoints.json (RuleError on the first that fails)."""
    rules = endpoint_rules()
    for e in rules.endpoints:
        for text, want in e.examples:
            got = [h.code for h in find_endpoints(text)]
            if want not in got:
                raise RuleError(f"rules/endpoints.json: {text!r} should name {want}, got {got}")
    for text, want in rules.cue_examples:
        got = [h.code for h in find_endpoints(text) if h.cue]
        if got != [want]:
            raise RuleError(f"rules/endpoints.json: cue {text!r} should name {want}, got {got}")
    for text, want in rules.qualified_response.examples:
        got = [h.code for h in find_endpoints(text)]
        if got != [want]:
            raise RuleError(f"rules/endpoints.json: qualified_response {text!r} should name {want}, got {got}")
