"""The trial facts a frame reports beside its arms: registry ids, phase, number randomized,
allocation ratio, each read by rules/design.json's patterns from the title, METHODS and the
registry list."""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from .design_rules import finditer_at, has_case_folds, lowered, rules
from .text import WORD_GAP

__all__ = ["allocation_ratio", "n_randomized", "phase", "registrations", "number_starts", "says_randomized", "sentences_of"]


def registrations(text: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Registry ids named in `text` and in `extra` (DataBankList), normalised as the gold writes them."""
    found: list[tuple[int, str]] = []
    for src_i, src in enumerate([text, *extra]):
        low = lowered(src)
        for hints, require, pat, fmt, upper in rules().registries:
            if not any(map(low.__contains__, hints)) or require and not require.search(src):
                continue  # the patterns start with \b or a lookbehind: slow to scan for
            for m in pat.finditer(src):
                groups = [g for g in m.groups() if g is not None]
                groups = [g.upper() for g in groups] if upper else groups
                found.append((src_i * 10**9 + m.start(), fmt.format(*groups)))
    out: list[str] = []
    for _, rid in sorted(found):
        if rid not in out:
            out.append(rid)
    return out


_SENT_END = re.compile(r"[.;!?](?<!\bvs.)(?<!\bv.)(?<!\be\.g.)(?<!\bi\.e.)(?<!\bet al.)(?=\s+[A-Z0-9(\[])|\n")


@lru_cache(maxsize=64)
def sentences_of(text: str) -> tuple[tuple[int, str], ...]:
    """Rough sentence split that keeps offsets ("vs." and "e.g." do not end a sentence).

    A newline always ends a sentence (no other split point can take it), so a text of several
    lines (an abstract: its sections joined by a newline) is the split of each line, shifted:
    the lines' splits are cached, and the sections read on their own reuse them."""
    if "\n" not in text:
        return _line_sentences(text)
    out: list[tuple[int, str]] = []
    offset = 0
    for line in text.split("\n"):
        out += [(offset + start, sent) for start, sent in _line_sentences(line)]
        offset += len(line) + 1
    return tuple(out)


@lru_cache(maxsize=256)
def _line_sentences(text: str) -> tuple[tuple[int, str], ...]:
    """sentences_of for a text without a newline."""
    out, start = [], 0
    for m in _SENT_END.finditer(text):
        end = m.end()
        if text[end - 1] == ";" and text.count("(", start, end - 1) > text.count(")", start, end - 1):
            continue  # "(N=140; 13-19 years)"
        out.append((start, text[start:end]))
        start = end
    if start < len(text):
        out.append((start, text[start:]))
    sentences = []
    for s, t in out:
        stripped = t.strip()
        if stripped:
            sentences.append((s + len(t) - len(t.lstrip()), stripped))
    return tuple(sentences)


_NOT_OWN_PHASE = re.compile(r"(?i)conclusion|interpretation|discussion")  # section labels phase() skips


def phase(title: str, sections: list[tuple[str | None, str]]) -> str | None:
    """The trial's own phase: the title's first, else the first body mention not about another trial."""
    comp = rules()
    for label, text in [(None, title), *sections]:
        if label and _NOT_OWN_PHASE.search(label) or "phase" not in lowered(text):
            continue  # no sentence of it names a phase
        for _, sent in sentences_of(text):
            if "phase" not in lowered(sent):
                continue
            hits = []
            for pat, ph in comp.phases:
                hits += [(m.start(), ph) for m in pat.finditer(sent)]
            if not hits:
                continue
            if label is not None or text is not title:
                if comp.phase_skip.search(sent):
                    continue
            return min(hits)[1]
    return None


_DIGITS = re.compile(r"\d{1,3}(?:[,\s\xa0]\d{3})+|\d+")


_NOT_DIGIT = re.compile(r"\D")


def _to_int(token: str, words: dict[str, int]) -> int | None:
    token = token.strip().lower()
    if _DIGITS.fullmatch(token):
        return int(_NOT_DIGIT.sub("", token))
    total = current = 0
    for w in WORD_GAP.split(token):
        if w == "and":
            continue
        v = words.get(w)
        if v is None:
            return None
        if v == 100:
            current = (current or 1) * 100
        elif v == 1000:
            total += (current or 1) * 1000
            current = 0
        else:
            current += v
    return total + current or None


RANDOMIZED = re.compile(r"(?i)\brandomi[sz]|\brandomly\b")


def says_randomized(sentences: Iterable[tuple[int, str]]) -> bool:
    """Whether one of `sentences` (sentences_of's) says the trial was randomized, not only a
    future or earlier one ("a randomized trial is warranted")."""
    return any(_randomized_sentence(sent) for _, sent in sentences)


@lru_cache(maxsize=1024)
def _randomized_sentence(sent: str) -> bool:
    # RANDOMIZED needs the letters "random", which no character but themselves matches under (?i)
    return "random" in lowered(sent) and bool(RANDOMIZED.search(sent)) and not rules().phase_skip.search(sent)


def n_randomized(text: str, design_text: str | None = None) -> int | None:
    """Total randomized (else enrolled, else treated) when the abstract states it as one number.

    A count followed by "and N to/were ..." is one arm of a list, not the total: skipped.
    Weakest cues ("in 560 patients") are read only in `design_text` (not RESULTS) when given.
    """
    comp = rules()
    sentences = sentences_of(text)
    randomized = says_randomized(sentences)
    design_sents = sentences if design_text is None else sentences_of(design_text)
    text_low = lowered(text)
    design_low = text_low if design_text is None else lowered(design_text)
    best: tuple[int, int, int] | None = None
    lower = {s: lowered(s) for _, s in (*sentences, *design_sents)}
    numbers: dict[str, list[int]] = {}
    cued: dict[tuple[tuple[str, ...], bool], list[tuple[int, str, str]]] = {}  # rules share their keywords
    for rule in comp.counts:
        weight = rule.weight
        if rule.nonrandomized_only and randomized or best is not None and weight < best[0]:
            continue  # a lighter cue never beats the count already found
        key = (rule.keywords, weight >= 0)  # the weakest cues read design_text only
        if key not in cued:  # no sentence holds a keyword the whole text lacks
            pool, pool_low = (sentences, text_low) if weight >= 0 else (design_sents, design_low)
            cued[key] = _holding(pool, lower, rule.keywords) if any(map(pool_low.__contains__, rule.keywords)) else []
        for start, sent, low in cued[key]:
            if best is not None and weight == best[0] and start >= -best[1]:
                break  # nor does a later one of the same weight
            if rule.require and not rule.require.search(sent):
                continue
            if rule.leading_num:  # try the pattern only where a number starts
                if sent not in numbers:
                    numbers[sent] = number_starts(sent, low)
                found = (rule.pattern.match(sent, pos) for pos in numbers[sent])
                matches = [m for m in found if m]
            elif rule.starts:
                matches = finditer_at(rule.pattern, sent, low, rule.starts)
            else:
                matches = list(rule.pattern.finditer(sent))
            for m in matches:
                n = _to_int(next(g for g in m.groups() if g), comp.number_words)
                if n is None or n < 6 or comp.n_list_guard.match(sent, m.end(m.lastindex or 1)):
                    continue
                found_at = (weight, -(start + m.start()), n)
                if best is None or found_at[:2] > best[:2]:
                    best = found_at
    return best[2] if best else None


def _holding(pool: tuple[tuple[int, str], ...], lower: dict[str, str], keywords: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """The sentences of `pool` (start, sentence, its lower-cased text) holding one of `keywords`."""
    return [(start, sent, lower[sent]) for start, sent in pool if any(map(lower[sent].__contains__, keywords))]


def number_starts(text: str, low: str) -> list[int]:
    """Where rules().number's matches begin in `text` (`low` is text.lower()), from two faster
    searches: the digits (a pattern opening with \\d, which re scans for quickly) and the spelled
    numbers (tried only where `low` holds a number word). A match of one holds only digits and
    separators, of the other only letters, spaces and hyphens: they never overlap, so together
    they are rules().number.finditer's matches."""
    comp = rules()
    out = [m.start() for m in comp.number_digits.finditer(text)]
    # a spelled number opens with a whole word that is a number word (lower() keeps every
    # character a word character or not, and the offsets, in a text without CASE_FOLDS)
    if has_case_folds(text) or not comp.number_word_set.isdisjoint(_WORD.findall(low)):
        out += [m.start() for m in finditer_at(comp.number_spelled, text, low, comp.number_word_list)]
    return sorted(out)


_WORD = re.compile(r"\w+")


_RATIO_HINT = re.compile(r":(?:(?<=\d:)|(?<=\d\s:))\s?\d")  # "digit:digit" (spaces allowed), searched for from its ":"


def allocation_ratio(text: str) -> str | None:
    """The allocation ratio as written ("2:1", "1:1:1"), else None."""
    if not _RATIO_HINT.search(text):
        return None  # the pattern's ratio needs "digit:digit"; its searched-for prefixes are slow to scan
    m = rules().allocation.search(text)
    return re.sub(r"\s", "", m.group(1)) if m else None
