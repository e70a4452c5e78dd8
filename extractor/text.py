"""Normalisation that keeps character offsets, so spans found in the result point into the original.

Every replacement is one character for one character: a span (start, end) found in
`normalise(text)` is the same span in `text`. Regexes then see one decimal mark, one dash
and one space instead of the dozen Unicode variants journals print.
"""
from __future__ import annotations

import re

# shared precompiled patterns: runs of white space, and of white space or hyphens (word gaps)
WHITESPACE = re.compile(r"\s+")
WORD_GAP = re.compile(r"[\s-]+")

# decimal marks printed between digits (Lancet "0·38")
_DECIMAL_DOTS = "\u00b7\u2219\u22c5\u2027\u02d9\u0387"
# minus signs, hyphens and dashes -> "-"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u2043\u02d7"
# spaces of every width (and zero-width ones, kept as a space so offsets stay) -> " "
_SPACES = "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u202f\u205f\u3000\ufeff\t"

_TABLE = {ord(c): "-" for c in _DASHES}
_TABLE.update({ord(c): " " for c in _SPACES})
_TABLE.update({
    0x2a7d: "\u2264",  # slanted less-than-or-equal -> <=
    0x2a7e: "\u2265",  # slanted greater-than-or-equal -> >=
    0x2266: "\u2264",
    0x2267: "\u2265",
    0xff1c: "<", 0xff1e: ">", 0xff1d: "=",
    0xff0c: ",", 0xff1b: ";", 0xff1a: ":", 0xff05: "%", 0x066a: "%",
    0xff08: "(", 0xff09: ")", 0xff3b: "[", 0xff3d: "]",
    0x00d7: "\u00d7",  # multiplication sign kept (1.2 x 10-5)
    0x2032: "'", 0x2019: "'", 0x2018: "'",
})
_TABLE.update({ord(c): str(i) for i, c in enumerate("\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19")})

_DOT_BETWEEN_DIGITS = re.compile(r"(?<=\d)[" + _DECIMAL_DOTS + r"](?=\d)")
_HAS_DOT = re.compile("[" + _DECIMAL_DOTS + "]")
# any character normalise changes: most sentences (and every re-normalised one) hold none
_CHANGED = re.compile("[" + re.escape("".join(map(chr, _TABLE)) + _DECIMAL_DOTS) + "]")
# the characters _TABLE replaces: an abstract holds a few, so replacing each found is ~4x faster
# than str.translate, which looks every character up
_IN_TABLE = re.compile("[" + re.escape("".join(map(chr, _TABLE))) + "]")


def _replacement(m: re.Match[str]) -> str:
    return _TABLE[ord(m.group())]


def normalise(text: str) -> str:
    """Replace Unicode dashes, spaces, decimal dots and full-width signs, char for char.

    The result always has the length of `text`: offsets found in it are offsets in `text`.
    """
    if not _CHANGED.search(text):
        return text
    out = _IN_TABLE.sub(_replacement, text)  # text.translate(_TABLE)
    if _HAS_DOT.search(out):
        out = _DOT_BETWEEN_DIGITS.sub(".", out)
    assert len(out) == len(text)
    return out


# ---------------------------------------------------------------- literal search without a regex
# Per-arm patterns ("(?<![\w-])" + re.escape(name)) are new for every abstract: compiling them
# costs more than the search, and they push the rule patterns out of re's 512-entry cache.

# A-Z, and the four other characters a case-insensitive `re` matches to an ASCII letter
# (tests/test_text.py recomputes this set from `re` itself)
_FOLD = str.maketrans({**{chr(c): chr(c + 32) for c in range(65, 91)},
                       "\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def fold_case(text: str) -> str:
    """`text` with every character re.IGNORECASE equates with an ASCII letter made that
    lower-case letter (same length): an ASCII needle.lower() found in it is a case-insensitive
    match. Other characters may be lower-cased too (they stay non-ASCII)."""
    if text.isascii():  # most texts: lower() is the same
        return text.lower()
    if "\u0130" in text:  # its lower() is two characters: offsets would move
        return text.translate(_FOLD)
    # lower() makes the Kelvin sign "k" and leaves no other ASCII letter than translate would;
    # far faster than translate, which looks every character up
    return text.lower().replace("\u0131", "i").replace("\u017f", "s")


def _wordish(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or ch == "-"


def literal_spans(needle: str, text: str, *, folded: str | None = None,
                  word_end: bool = False) -> list[tuple[int, int]]:
    r"""The spans of re.finditer(r"(?<![\w-])" + re.escape(needle) [+ r"(?![\w-])"], text [, re.I]).

    Case-insensitive when `folded` (fold_case(text)) is given; `needle` must then be ASCII.
    """
    if not needle:
        raise ValueError("empty needle")
    hay, pat = (text, needle) if folded is None else (folded, needle.lower())
    out: list[tuple[int, int]] = []
    i = hay.find(pat)
    while i >= 0:
        j = i + len(pat)
        if (i == 0 or not _wordish(text[i - 1])) and (not word_end or j == len(text) or not _wordish(text[j])):
            out.append((i, j))
            i = hay.find(pat, j)
        else:
            i = hay.find(pat, i + 1)
    return out
