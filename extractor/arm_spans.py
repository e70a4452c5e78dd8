"""Where a sentence names one of the trial's arms: `find_arm(text, frame)` gives the spans of
every arm name and alias (longest first, no overlaps), by literal comparison where the terms
allow it and a cached pattern otherwise."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from .design_rules import has_case_folds

if TYPE_CHECKING:
    from .design import Frame

__all__ = ["find_arm"]




def _matcher(fr: Frame) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[tuple[str, bool], ...] | None]]:
    """The alternatives find_arm matches, longest term first: (regex, arm name, the term's
    ASCII words lower-cased, its case-kept words, its words for _find_literal), the words
    serving as a literal pre-check. The last is None for a term _find_literal cannot read (a
    non-ASCII word, or one after the first that starts with "-")."""
    terms: list[tuple[str, str]] = []
    for a in fr.arms:
        for t in [a.name, *a.aliases]:
            if len(t) >= 2:
                terms.append((t, a.name))
    terms.sort(key=lambda x: -len(x[0]))
    out = []
    for t, name in terms:
        words, folded, exact, literal = [], [], [], []
        for w in t.split():  # abbreviations ("ZA", "PemOx", the "A" of "group A") keep their case
            esc = re.escape(w)
            if re.search(r"[A-Z]", w[1:]) or (len(w) <= 3 and w.isupper()):
                words.append("(?-i:" + esc + ")")
                exact.append(w)
                literal.append((w, True))
            else:
                words.append(esc)
                if w.isascii():
                    folded.append(w.lower())
                literal.append((w.lower(), False))
        simple = t.isascii() and not any(w.startswith("-") for w, _ in literal[1:])
        out.append((r"[\s-]+".join(words), name, tuple(folded), tuple(exact), tuple(literal) if simple else None))
    return out


# after an arm's term: "-based", " alone", " group"; "placebo-controlled" names no arm
_ARM_TAIL = (r"(?:-(?:based|containing|combination|alone|treated))?"
             r"(?:[\s-]+(?:combination|alone|monotherapy|therapy|treatment|regimen))?"
             r"(?:[\s-]+(?:group|arm|cohort)s?)?(?![\w-])")


_ARM_TAIL_AT = re.compile("(?i)" + _ARM_TAIL)


@lru_cache(maxsize=1024)
def _arm_pattern(alts: tuple[str, ...]) -> re.Pattern[str]:
    """One alternation of arm terms (group a<i> = the i-th), compiled once per distinct set."""
    body = "|".join(rf"(?P<a{i}>{alt})" for i, alt in enumerate(alts))
    return re.compile(r"(?i)(?<![\w])(?:the\s+)?(?:" + body + r")" + _ARM_TAIL)


def _term_end(words: tuple[tuple[str, bool], ...], text: str, low: str, q: int) -> int:
    r"""Where a term's words, joined by [\s-]+, end if they start at q, else -1 (case kept for
    the words marked so). No word but the first starts with "-", so the run is taken whole."""
    n = len(text)
    for k, (w, exact) in enumerate(words):
        if k:
            r = q
            while r < n and (text[r].isspace() or text[r] == "-"):
                r += 1
            if r == q:
                return -1
            q = r
        if not (text.startswith(w, q) if exact else low.startswith(w, q)):
            return -1
        q += len(w)
    return q


def _find_literal(text: str, low: str, kept: list[tuple[tuple[str, bool], ...]], names: list[str]) -> list[tuple[int, int, str]]:
    r"""_arm_pattern(kept terms).finditer(text) without compiling it: the same leftmost-first
    matches, for ASCII terms in a text without the characters (?i) folds onto ASCII letters.

    A match starts at a term's first word or at the "the\s+" before it; at such a start the
    pattern tries "the" + each term in order, then each term alone, each followed by _ARM_TAIL."""
    n = len(text)
    starts = set()
    for words in kept:
        w, exact = words[0]
        src = text if exact else low
        i = src.find(w)
        while i >= 0:
            starts.add(i)
            r = i
            while r > 0 and text[r - 1].isspace():
                r -= 1
            if r < i and r >= 3 and low.startswith("the", r - 3):
                starts.add(r - 3)
            i = src.find(w, i + 1)
    out: list[tuple[int, int, str]] = []
    pos = 0
    for p in sorted(starts):
        if p < pos or p and (text[p - 1].isalnum() or text[p - 1] == "_"):  # (?<![\w])
            continue
        heads = []
        if low.startswith("the", p) and p + 3 < n and text[p + 3].isspace():
            q = p + 3
            while q < n and text[q].isspace():
                q += 1
            heads.append(q)
        heads.append(p)
        hit = next(((e.end(), name) for q in heads for words, name in zip(kept, names)
                    if (end := _term_end(words, text, low, q)) >= 0 and (e := _ARM_TAIL_AT.match(text, end))), None)
        if hit:
            out.append((p, hit[0], hit[1]))
            pos = hit[0]
    return out


def find_arm(text: str, frame: Frame) -> list[tuple[int, int, str]]:
    """Every place in `text` that names an arm: (start, end, arm name), longest first, no overlaps.

    Only the terms whose every word occurs in `text` are tried: a term that cannot match
    changes no match of an alternation. Those are matched by _find_literal, or, when it cannot
    read them, by a pattern compiled (and cached) for them alone."""
    if frame._terms is None:
        frame._terms = _matcher(frame)
    low = text.lower()
    check = not has_case_folds(text)  # else the literal pre-check could drop a term (?i) matches
    kept = [(alt, name, literal) for alt, name, folded, exact, literal in frame._terms
            if not check or all(w in low for w in folded) and all(w in text for w in exact)]
    if not kept:
        return []
    if check and all(literal is not None for _, _, literal in kept):
        return _backbones(text, _find_literal(text, low, [literal for _, _, literal in kept], [name for _, name, _ in kept]))
    pat = _arm_pattern(tuple(alt for alt, _, _ in kept))
    out = []
    for m in pat.finditer(text):
        idx = next(int(k[1:]) for k, v in m.groupdict().items() if v is not None)
        out.append((m.start(), m.end(), kept[idx][1]))
    return _backbones(text, out)


_PLUS = re.compile(r"\s*(?:plus|\+|combined\s+with)\s*")
_JOIN = re.compile(r"\s*/\s*")  # "XELIRI/FOLFIRI": two aliases of one backbone


def _backbones(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Drop a shared backbone named before another arm: in "the X plus placebo group" X (an alias
    of the "X plus Y" arm) is the placebo arm's backbone, not a mention of the X plus Y arm."""
    if len(spans) < 2:
        return spans
    spans = sorted(spans)
    keep = [True] * len(spans)
    for i in range(len(spans) - 2, -1, -1):
        (start, end, arm), (nxt, _, other) = spans[i], spans[i + 1]
        if not _in_backbone(text[start:end], arm):
            continue  # "the necitumumab plus X group": the add-on arm itself, named in full
        keep[i] = not (other != arm and _PLUS.fullmatch(text, end, nxt)
                       or other == arm and not keep[i + 1] and _JOIN.fullmatch(text, end, nxt))
    return [sp for sp, k in zip(spans, keep) if k]


def _in_backbone(term: str, arm: str) -> bool:
    """Whether `term` names the part of `arm` before its "plus" ("XELIRI" of "XELIRI/FOLFIRI plus Y")."""
    joiner = _PLUS.search(arm)
    words = term.lower().split()
    return joiner is not None and bool(words) and words[-1] in arm[:joiner.start()].lower()
