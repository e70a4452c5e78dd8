"""Frame an abstract: the trial's arms (short names and aliases, experimental first) and the
cohorts METHODS announce, with the facts of facts.py.

Attribution needs to know, before it reads any number, which groups the abstract compares
and how the text names them; this module answers that from the title and METHODS, with
every vocabulary and cue pattern kept as data in rules/design.json (design_rules.py).
arm_spans.find_arm finds the arms in a sentence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .arm_spans import find_arm
from .design_rules import Cue, DesignRules, finditer_at, lowered, rules
from .facts import allocation_ratio, n_randomized, phase, registrations, says_randomized, sentences_of
from .models import Article, Trial
from .text import WHITESPACE, WORD_GAP

__all__ = ["Arm", "DesignRules", "Frame", "allocation_ratio", "find_arm", "frame", "n_randomized", "phase",
           "registrations", "rules"]


@dataclass
class Arm:
    """One compared group: its short name, other ways the text names it, and its role."""

    name: str
    aliases: list[str] = field(default_factory=list)
    experimental: bool = True


@dataclass
class Frame:
    """What attribution needs to know about the trial before reading its numbers."""

    trial: Trial
    arms: list[Arm]
    populations: list[str] = field(default_factory=list)
    # find_arm's terms (built on first use): regex, arm name, pre-check words, literal words (see _matcher)
    _terms: list[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[tuple[str, bool], ...] | None]] | None = field(
        default=None, repr=False, compare=False)


_ABBR = re.compile(r"\(([A-Z][A-Za-z0-9/+-]{0,11}|[a-z]?[A-Z]{2,}[A-Za-z0-9/+-]{0,8})(?:\)|[;,]\s)")  # "(mEOC+P; dosing ...)"


_LABEL = re.compile(r"(?i)[(\[;,]\s*((?:arm|group|cohort)\s+[A-Z0-9]{1,2})\s*[)\];,]")


_DOSE = re.compile(r"(?i)\b\d+(?:[.\u00b7]\d+)?\s*(?:mg|g|\u03bcg|\u00b5g|mcg|ml|IU|Gy)(?:/(?:kg|ml|day|d))?\b")


@dataclass
class _Cand:
    name: str
    aliases: list[str]
    dose: str | None = None
    control: bool = False


_PARENTHETICAL = re.compile(r"\s*\([^()]*\)?")


_DOSING_DETAIL = re.compile(r"\s*:.*$")  # "A (n = 40): either 40000 IU ..."


_LINK_WORDS = re.compile(r"(?i)\b(?:to|either|receive|or|and)\b")


_TWO_LETTERS = re.compile(r"[A-Za-z]{2}")


_LEAD_WORD = re.compile(r"(?i)^(?:to|either|receive|with|the|an?|in|or|and|our|their|of)\s+")


_TRAIL_WORD = re.compile(r"(?i)\s+(?:and|or|plus|with|in|of|the|a|at|to|on|group|arm)$")


_NOT_ABBR = re.compile(r"(?i)arm|group|n|[A-Z]")  # fullmatch: a label word or one letter


_CAPITALISED = re.compile(r"[A-Z][a-z]{2,}(?:-[A-Z]?[a-z]+)*")  # fullmatch: "Pemetrexed-Cisplatin"


def _clean(part: str) -> _Cand:
    """A raw arm phrase -> short name, the aliases it defines ("(PemOx)", "(arm A)"), its dose."""
    name, aliases, dose, control = _cleaned(part)
    return _Cand(name, list(aliases), dose, control)


@lru_cache(maxsize=1024)
def _cleaned(part: str) -> tuple[str, tuple[str, ...], str | None, bool]:
    """_clean's fields, cached: the same phrase comes back from several cues and sections."""
    comp = rules()
    aliases = [m.group(1) for m in _LABEL.finditer(part + ")")]
    abbrs = [m.group(1) for m in _ABBR.finditer(part) if not comp.abbr_not.match(m.group(1))]
    dose = _DOSE.search(part)
    s = synonymized = _synonyms(part)
    for strip in comp.arm_strip_first:
        if strip.may_match(s):
            s = strip.pattern.sub("", s)
    s = comp.arm_tail.sub("", s)
    control = _is_control(_PARENTHETICAL.sub("", s))
    for strip in comp.arm_strip:
        s = (strip.pattern.sub(" ", s) if strip.may_match(s) else s).strip()
    s = _DOSING_DETAIL.sub("", s)
    if not _TWO_LETTERS.search(_LINK_WORDS.sub("", s)):
        s = _dose_kept(synonymized)  # the dose is the arm ("2 x 8 Gy")
    s = _PARENTHETICAL.sub("", s)  # remaining parentheticals: abbreviations, kept as aliases
    s = WHITESPACE.sub(" ", s).strip(" ,;:-")
    for _ in range(2):
        before = s
        s = _LEAD_WORD.sub("", s)
        s = _TRAIL_WORD.sub("", s).strip(" ,;:-")
        if s == before:
            break  # a second round would change nothing either
    for a in abbrs:
        if a.lower() not in {x.lower() for x in aliases} and not _NOT_ABBR.fullmatch(a):
            aliases.append(a)
    s = " ".join(w.lower() if _CAPITALISED.fullmatch(w) else w for w in s.split())
    return s, tuple(aliases), dose.group(0) if dose else None, control


def _dose_kept(s: str) -> str:
    """An arm phrase with everything but its dose stripped ("2 x 8 Gy" when the dose is the arm)."""
    comp = rules()
    for strip in comp.arm_strip_first[1:]:
        if strip.may_match(s):
            s = strip.pattern.sub("", s)
    return comp.arm_tail.sub("", s)


def _synonyms(s: str) -> str:
    """`s` with rules().arm_synonyms applied ("A combined with B" -> "A plus B")."""
    for syn in rules().arm_synonyms:
        if syn.may_match(s):
            s = syn.pattern.sub(syn.replacement, s)
    return s


_NOT_A_NAME = re.compile(r"(?i)(?:this|these|that|which|patients?|participants?|subjects?|we|our|their|its|it|them|"
                         r"one|two|three|four|five|p\b|ci\b|hr\b|median|months?|years?|weeks?|days?)\b")  # match


_DOSE_NAME = re.compile(r"(?i)^\d+(?:[.,]\d+)?(?:\s*(?:x\s*\d+(?:[.,]\d+)?\s*)?(?:Gy|mg|g|ml|IU)\b|-[a-z]{2,})")


@lru_cache(maxsize=1024)
def _plausible(name: str) -> bool:
    words = name.split()
    if not words or len(words) > 6 or len(name) < 2:
        return False
    if _NOT_A_NAME.match(name):
        return False
    if name[0].isdecimal() and not _DOSE_NAME.search(name):  # re.match(r"\d", name)
        return False
    if rules().arm_not_names.search(name):
        return False
    return bool(_TWO_LETTERS.search(name))


_BRACKETS = re.compile(r"[()\[\]]")


_HIDE = str.maketrans({",": "\0", ";": "\1", " ": "\2", ".": "\3"})


@lru_cache(maxsize=256)
def _protect(span: str) -> str:
    """Hide separators inside parentheses/brackets so "(arm A, 159; arm B)" is not split."""
    if "(" not in span and "[" not in span:
        return span
    out, depth, last = [], 0, 0
    for m in _BRACKETS.finditer(span):
        seg = span[last:m.start()]
        out.append(seg.translate(_HIDE) if depth else seg)
        depth = depth + 1 if m.group() in "([" else max(0, depth - 1)
        out.append(m.group())
        last = m.end()
    seg = span[last:]
    out.append(seg.translate(_HIDE) if depth else seg)
    return "".join(out)


def _unprotect(s: str) -> str:
    return s.replace("\0", ",").replace("\1", ";").replace("\2", " ").replace("\3", ".")


_LAST_OR = re.compile(r"(?i)\s(?:or|versus|vs\.?)\s(?!.*\s(?:or|versus|vs\.?)\s)")


_TWO_GROUPS = re.compile(r"(?i)^(?P<a>(?:(?:an?|the)\s+[^,;]+?|.+?\b(?:group|arm)(?:\s*\([^()]*\))?))\s*,?\s+and\s+"
                         r"(?P<b>(?:an?|the)\s+[^,;]+?\b(?:group|arm)s?\b.*)$")


_WITH_OR_WITHOUT = re.compile(r"(?i)^(?P<base>.+?)\s+with\s+or\s+without\s+(?P<x>[^,;]+)")


_LIST_INTRO = re.compile(r"(?i)\b(?:regimens|groups|arms|treatments|strategies|conditions|interventions|options)\s*$")


def _split_arms(span: str, short_forms: bool = False) -> list[_Cand]:
    comp = rules()
    two = _TWO_GROUPS.match(span)
    if two:  # "an experimental group (X) and a control group (Y)"
        span = two.group("a") + " or " + two.group("b")
    labelled = _labelled_arms(span) or _dose_arms(span)
    if labelled:
        return labelled
    text = _protect(span)
    wow = _WITH_OR_WITHOUT.match(text)
    if wow:  # "six cycles of gemtabine and cisplatin with or without necitab"
        base, x = _clean(_unprotect(wow.group("base"))), _clean(_unprotect(wow.group("x")))
        if _plausible(base.name) and _plausible(x.name):
            return [_Cand(f"{x.name} plus {base.name}", x.aliases, None, False),
                    _Cand(f"{base.name} alone", base.aliases, None, True)]
    m = comp.arm_either.match(text)
    parts: list[str]
    if m:
        base = _clean(_unprotect(m.group("base"))).name
        parts = [p for p in comp.arm_sep.split(m.group("rest")) if p and p.strip()]
        cands = [_clean(_unprotect(p)) for p in parts]
        for c in cands:
            if base and _plausible(base) and c.name:
                c.name = f"{c.name} plus {base}"
    else:
        colon = text.find(":")
        if colon > 0 and comp.arm_sep.search(text[:colon]) and not _LIST_INTRO.search(text[:colon]):
            text = text[:colon]  # "A (n = 40) versus B (n = 40): either 40000 IU or 20000 IU"
        end = comp.arm_list_end.search(text)
        if end and comp.arm_sep.search(text[:end.start()]):
            text = text[:end.start()]  # "A (AC), B (BC), or C (ABC) every 3 weeks for four or six cycles, ..."
        last = _LAST_OR.search(text)
        if last and "," in text[last.end():]:
            text = text[:text.index(",", last.end())]  # "A or B, starting at 50 mg, ..."
        parts = [p for p in comp.arm_sep.split(text) if p and p.strip()]
        cands = [_clean(_unprotect(p)) for p in parts]
    out = []
    for c in cands:
        if short_forms and not _plausible(c.name) and c.aliases and _plausible(c.aliases[0]) and len(c.name.split()) > 6:
            c.name, c.aliases = c.aliases[0], c.aliases[1:]  # a long description known by its short form
        if _plausible(c.name):
            out.append(c)
    return out


def _dose_arms(span: str) -> list[_Cand]:
    """'3.75 or 7.5 mg of (a depot form of) drugrelin': one drug at two doses, named with each."""
    m = rules().dose_list.match(span)
    if not m:
        return []
    drug = re.split(r"(?i)\bof\s+", _clean(m.group("drug")).name)[-1].split()
    name = drug[-1] if len(drug) > 3 else " ".join(drug)
    if not _plausible(name) or not re.search(r"[A-Za-z]{3}", name):
        return []
    unit = m.group("unit")
    return [_Cand(f"{name} {d} {unit}", [f"{d} {unit}"], f"{d} {unit}") for d in (m.group("d1"), m.group("d2"))]


def _labelled_arms(span: str) -> list[_Cand]:
    """'A (5 mg), B and C every 3 weeks (ABC group; n = 40) or no treatment (control group)': each
    parenthesised group label closes one arm and names it, however many drugs the arm lists."""
    comp = rules()
    labels = list(comp.arm_labels.finditer(span))
    if len(labels) < 2:
        return []
    out, start = [], 0
    for m in labels:
        name = m.group("name").strip()
        if comp.group_generic.match(name) or comp.group_org.search(name) or not _plausible(name):
            return []
        part = _clean(span[start:m.start()])
        short = _plausible(part.name) and len(part.name.split()) <= 4
        control = part.control or _is_control(name)
        if short and comp.role_label.match(name) and not comp.strict_control.match(part.name):
            # "docetaxel (control arm)": a role is no name; the regimen is (SCHEMA: drug or regimen)
            out.append(_Cand(part.name, [f"{name} {m.group('kind')}", *part.aliases], part.dose, control))
        else:
            out.append(_Cand(name, ([part.name] if short else []) + part.aliases, part.dose, control))
        start = m.end()
    return out if len({c.name.lower() for c in out}) == len(out) else []


_TITLE_SEP = re.compile(r"(?i)\s(?:versus|vs\.?|v\.?|(?:as\s+)?compared\s+(?:with|to)|in\s+comparison\s+(?:with|to)|"
                        r"with\s+or\s+without|with\s+vs\.?\s+without|or)\s")


_WITH = re.compile(r"(?i)\swith\s")


_PAIR_SEP = {sep: re.compile(r"(?i)\s+" + sep + r"\s+") for sep in ("and", "with", "to")}


_PAIR_INTRO = re.compile(r"(?i)\b(?:of|with|between)\s+")


_TITLE_PIECE_END = re.compile(r":\s|(?<!\bvs)(?<!\bv)\.\s")


_TITLE_PAIR = re.compile(r"(?i)(?P<a>[^:;]+?)\s+(?P<sep>versus|vs\.?|v\.?|(?:as\s+)?compared\s+(?:with|to)|"
                         r"in\s+comparison\s+(?:with|to)|with\s+or\s+without|with\s+vs\.?\s+without|or)\s+(?P<b>[^:;]+)")


_TITLE_COMPARES = re.compile(r"(?i)\s(?:versus|vs\.?|compared|comparison)\s")


_TITLE_COMPARED_PAIR = re.compile(r"(?i)(?P<a>[^:;]+?)\s+(?P<sep>versus|vs\.?|(?:as\s+)?compared\s+(?:with|to)|"
                                  r"in\s+comparison\s+(?:with|to))\s+(?P<b>[^:;]+)")


_ARM_INTRO = re.compile(r"(?i)\b(?:of|with|treated\s+with|receiving|comparing|between|after|following)\s+")


_WITH_TAIL = re.compile(r"(?i)\s+with\s+.*$")


_OR = re.compile(r"(?i)\s+or\s+")


_FACTOR = re.compile(r"(?i)\bwith\s+or\s+without\s+(?P<x>[^:;]+)")


def _title_arms(title: str) -> list[_Cand]:
    """'A versus B in ...', 'A or B for ...', 'X with or without Y': the arms a title names."""
    for kind, cue in rules().title_cues:
        m = cue.search(title)
        if not m:
            continue
        if kind == "placebo":
            x = _clean(m.group("arms"))
            if _plausible(x.name):
                return [x, _Cand("placebo", [], None, True)]
        else:
            span = m.group("arms")
            sep = "and" if " and " in span else "with" if _WITH.search(span) else "to"
            pair = _PAIR_SEP[sep].split(span, maxsplit=1)
            pair[0] = _PAIR_INTRO.split(pair[0])[-1]  # "effects of premedication with A"
            arms = [c for c in map(_clean, pair) if _plausible(c.name)]
            if len(arms) == 2:
                return arms
    comp = rules()
    for piece in _TITLE_PIECE_END.split(title):
        piece = piece.strip()
        if not _TITLE_SEP.search(piece):
            continue  # cheap pre-check: the search below is quadratic in the title's length
        m = _TITLE_PAIR.search(piece)
        if m and m.group("sep").lower() == "or" and _TITLE_COMPARES.search(piece):
            m = _TITLE_COMPARED_PAIR.search(piece)
        if not m or m.group("sep").lower() == "or" and comp.title_or_not_list.search(piece):
            continue  # "stage II or III", "on or after": the "or" joins no arms
        a = _synonyms(comp.title_prefix.sub("", m.group("a")))
        tail = _ARM_INTRO.split(a)[-1]
        a = tail if " or " not in tail else _WITH_TAIL.sub("", a)
        if " or " in a and m.group("sep").lower() != "or":  # "A or B in comparison with C": three arms
            arms = [c for c in map(_clean, _OR.split(a) + [comp.arm_tail.sub("", m.group("b"))])
                    if _plausible(c.name)]
            if len(arms) >= 3:
                return arms
        b = comp.arm_tail.sub("", m.group("b"))
        if "without" in m.group("sep").lower():
            y = _clean(b)
            if not _plausible(y.name):
                continue
            return [y, _Cand("no " + y.name, [], None, True)]
        if m.group("sep").lower() == "or":
            arms = [c for c in (_clean(a), _clean(b)) if _plausible(c.name)]
        else:
            ca, cb = _clean(a), _clean(_WITH_TAIL.sub("", b))
            words_b = cb.name.split()
            if comp.shared_head.match(ca.name) and len(words_b) >= 2 and comp.shared_head.match(words_b[0]):
                # "Standard-dose versus high-dose radiotherapy": the head is shared; the text may
                # name each arm by its modifier alone ("intensive compared with standard ...")
                ca.aliases += [ca.name, f"{ca.name} {words_b[1]}"]
                cb.aliases += [words_b[0], f"{words_b[0]} {words_b[1]}"]
                ca.name = " ".join([ca.name, *words_b[1:]])
            arms = [c for c in (ca, cb) if _plausible(c.name)]
            factor = _FACTOR.search(m.group("b"))
            if factor and len(arms) == 2:  # a factorial design: two more arms
                x = _clean(factor.group("x"))
                if _plausible(x.name):
                    arms += [x, _Cand("no " + x.name, [], None, True)]
        if len(arms) >= 2:
            return arms
    return []


def _label_arms(text: str) -> list[_Cand]:
    """Last fallback: groups known only by label ("Group A", "arm 2", "group II")."""
    found = list(rules().label_groups.finditer(text))
    labels = sorted({m.group(1) for m in found}, key=lambda x: (len(x), x) if not x.isdigit() else (0, x))
    words = [m.group(0).split()[0].lower() for m in found]
    word = max(("group", "arm"), key=words.count)  # the word the abstract uses: "arm A", "group 2"
    return [_Cand(f"{word} {x}", []) for x in labels] if 2 <= len(labels) <= 6 else []


_TWO_NAMES = re.compile(r"(?i)\b(?:or|versus|vs)\b")


_CAPS_ABBR = re.compile(r"\b([A-Z][A-Z0-9/-]{1,9})\b")


@lru_cache(maxsize=64)
def _group_mentions(text: str) -> tuple[tuple[str, str | None], ...]:
    """The "the X group" names of one text that may be arms, each with the last abbreviation of
    its parenthesis; cached, as _arms reads METHODS, then often every section, for them."""
    comp = rules()
    out = []
    low = lowered(text)
    if not any(map(low.__contains__, comp.group_keywords)):
        return ()
    for m in comp.group_mention.finditer(text):
        name = m.group("name").strip()
        if _TWO_NAMES.search(name):
            continue  # "the treatment or control group": two groups
        if comp.group_org.search(name):
            continue
        if comp.group_generic.match(name) or not _plausible(name) and not name[:1].isdecimal():  # re.match(r"\d")
            continue
        abbr = _CAPS_ABBR.findall(m.group("inner") or "")
        out.append((name, abbr[-1] if abbr else None))
    return tuple(out)


def _group_arms(sections: list[tuple[str | None, str]]) -> list[_Cand]:
    """Fallback: the groups the text names as "the X group" / "the X arm" ("(ABBR, N=65)" kept)."""
    found: dict[str, _Cand] = {}
    for _, text in sections:
        for name, abbr in _group_mentions(text):
            key = name.lower()
            if key not in found:
                found[key] = _Cand(name, [abbr] if abbr else [], None, _is_control(name))
            elif abbr and abbr not in found[key].aliases:
                found[key].aliases.append(abbr)
    cands = list(found.values())
    for c in cands:  # "(FOBT alone, n = 382)" and "(FOBT plus a reminder)": a shared word is no abbreviation
        c.aliases = [a for a in c.aliases if sum(a in o.aliases for o in cands) == 1]
    return cands if len(cands) >= 2 else []


@lru_cache(maxsize=1024)
def _is_control(name: str) -> bool:
    return bool(rules().control.search(name)) and not rules().experimental.search(name)


_WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1024)
def _tokens(name: str) -> frozenset[str]:
    filler = rules().filler
    return frozenset(w for w in _WORD.findall(name.lower()) if w not in filler and len(w) > 2)


_COMPARE_SEP = re.compile(r"(?i)\s+(?:versus|vs\.?|compared\s+with|compared\s+to)\s+")


_WERE_COMPARED = re.compile(r"(?i)\s+(?:were|was)\s+(?=compared\s+(?:with|to)\s)")


_POPULATION_TAIL = re.compile(r"(?i)\s+(?:in|among|for|who|when)\s+.*$")


_COMPARE_WEAK = re.compile(r"(?i)\s+(?:with|to)\s+")


_COMPARE_OVER = re.compile(r"(?i)\s+over\s+")


def _compare_arms(span: str) -> list[_Cand]:
    """'A with B in 500 patients' / 'A versus B or C': split at the comparison word."""
    span = _synonyms(span)  # "A combined with B versus B alone": the "with" is not the comparison
    span = _WERE_COMPARED.sub(" ", span)  # "A were compared with B"
    parts = _COMPARE_SEP.split(span, maxsplit=1)
    if len(parts) != 2:
        over = _COMPARE_OVER.split(span, maxsplit=1)  # "favoring A over B"
        found = _compare_sides(*over) if len(over) == 2 else []
        if len(found) >= 2:
            return found
        parts = _COMPARE_WEAK.split(span, maxsplit=1)
    if len(parts) != 2:
        return []
    return _compare_sides(*parts)


def _compare_sides(a: str, b: str) -> list[_Cand]:
    b = _POPULATION_TAIL.sub("", b)
    b = _protect(b).split(",")[0]  # "with those of study S9, with identical criteria, staging, ...": one arm
    side_a = _split_arms(a) if "," not in _protect(a) else [_clean(a)]
    return [c for c in side_a if _plausible(c.name)] + _split_arms(_unprotect(b))


def _cue_arms(sections: list[tuple[str | None, str]], cues: list[Cue], compare: bool = False) -> list[list[_Cand]]:
    """Every arm list the cue sentences of `sections` announce, in text order."""
    out = []
    for _, text in sections:
        low_text = lowered(text)  # a cue whose keywords the section lacks can skip all its sentences
        active = [cue for cue in cues if any(map(low_text.__contains__, cue.keywords))]
        if not active:
            continue
        for _, sent in sentences_of(text):
            sent = _protect(sent)
            low = lowered(sent)
            for cue in active:
                if not any(map(low.__contains__, cue.keywords)):
                    continue
                found = finditer_at(cue.pattern, sent, low, cue.starts) if cue.starts else cue.pattern.finditer(sent)
                for m in found:
                    span = _unprotect(m.group("arms"))
                    cand = _compare_arms(span) if compare else _split_arms(span)
                    more = None if compare else rules().semicolon_list.match(sent, m.end("arms"))
                    if more and len(cand) == 1:  # "A (DC); B (DCb); or C (VC)": one arm a clause
                        rest = re.split(r";\s*(?:or\s+|and\s+)?", _unprotect(more.group("rest")))
                        cand += [c for c in map(_clean, rest) if _plausible(c.name)]
                    if len(cand) >= 2:
                        out.append(cand)
    return out


_UNITS = re.compile(r"(?i)\b(?:mg|g|ml|gy|cgy|iu|x|kg|mcg|\u00b5g|\u03bcg|mmol|%)(?=\W|$)")


_LETTER = re.compile(r"[A-Za-z]")


def _support(cands: list[_Cand], text: str, results: str = "", low: str | None = None) -> float:
    """How well a candidate arm list fits the abstract: names used in the text, short names
    (`low`: text.lower(), when the caller has it)."""
    if len(cands) < 2:
        return -1.0
    low = lowered(text) if low is None else low
    dose_only = [not _LETTER.search(_UNITS.sub("", c.name)) for c in cands]
    score = -0.5 * len(cands) if any(dose_only) and not all(dose_only) else 0.0
    for c in cands:
        toks = _tokens(c.name) or {c.name.lower()}
        used = sum(1 for t in toks if low.count(t) >= 2) / len(toks)
        if any(text.count(a) >= 2 for a in c.aliases if len(a) >= 2):
            used = max(used, 1.0) + 0.2  # "arm A", "(PemOx)": defined names the text then uses
        if len(c.name.split()) >= 2 and WORD_GAP.sub(" ", c.name.lower()) in results:
            used += 0.3  # RESULTS use this very phrase: the name the abstract gives the group
        score += used - 0.25 * max(0, len(c.name.split()) - 3)
    return score / len(cands)


_METHOD_LABEL = re.compile(r"(?i)method|design|patient|participant|intervention|setting|procedure|material|^unlabell?ed$")


_FRAMING_NOT = re.compile(r"(?i)result|finding|conclusion|interpretation|discussion")  # labels that frame no arms


_RESULTS_LABEL = re.compile(r"(?i)result|finding")


_ALONE = re.compile(r"(?i)\s+(?:alone|only)$")


_ALONE_END = re.compile(r"(?i)\s(?:alone|only)$")


_ROLE_ALIAS = re.compile(r"(?i)(?:arm|group|cohort)\s")  # match: "arm A", "group 2"


_ROLE_TAIL = re.compile(r"(?i)\s(?:arm|group|cohort)$")  # "control arm": a role


def _arms(article: Article, abstract: str, body: str) -> list[Arm]:
    """The trial's arms; `abstract` is article.abstract, `body` the title, a newline and the abstract."""
    comp = rules()
    title = article.title or ""
    secs = [(s.label, s.text) for s in article.sections]
    method = [lab is None or bool(_METHOD_LABEL.search(lab)) for lab, _ in secs]  # ("UNLABELLED": the whole abstract)
    methods = [x for x, is_method in zip(secs, method) if is_method]
    rest = [x for x, is_method in zip(secs, method) if not is_method]
    # (list, prior): a randomization sentence of METHODS is the best source, then the title
    options: list[tuple[list[_Cand], float]] = []
    from_methods = _cue_arms(methods, comp.arm_cues)
    options += [(o, 0.4 - 0.02 * i) for i, o in enumerate(from_methods)]
    options += [(o, 0.25 - 0.02 * i) for i, o in enumerate(_cue_arms(rest, comp.arm_cues))]
    from_title = _title_arms(title)
    # a randomization list the title confirms ("A with or without X" and "A" / "A plus X" with
    # their doses and short forms) names the arms better than the title's fragments
    options = [(o, prior + 0.3 if _agrees(from_title, o) is not None else prior) for o, prior in options]
    options += [(from_title, 0.9 if len(from_title) >= 4 and re.search(r"(?i)factorial", body) else 0.3)]
    framing = [x for x in secs if not _FRAMING_NOT.search(x[0] or "")]
    framed = _cue_arms(framing, comp.compare_cues, compare=True)
    randomized = from_methods  # read only, before any candidate is changed
    options += [(o, (0.7 if _add_on(o, randomized) else 0.1) - 0.02 * i) for i, o in enumerate(framed)]
    reporting = [x for x in secs if x not in framing]  # RESULTS compare outcomes as often as arms: a last resort
    options += [(o, -0.4 - 0.02 * i) for i, o in enumerate(_cue_arms(reporting, comp.compare_cues, compare=True))]
    options += [(_group_arms(methods) or _group_arms(secs), 0.0)]
    options += [(_historical_arms(body), 0.3)]
    options += [(o, 0.3) for o in _described_groups(methods)]
    options += [(o, 0.4) for o in _listed_interventions(secs)]
    results = WORD_GAP.sub(" ", " ".join(t for lab, t in secs if _RESULTS_LABEL.search(lab or "")).lower())
    body_low = lowered(body)
    scored = [(_support(o, body, results, body_low) + prior, -i, o) for i, (o, prior) in enumerate(options) if len(o) >= 2]
    found = max(scored, key=lambda x: (x[0], x[1]))[2] if scored else _label_arms(body) or _single_arm(title, abstract, body)
    for i in _agrees(from_title, found) or []:
        found[i].control = True  # the arm without the title's "with or without X" is the reference
    bare = lambda n: _ALONE.sub("", WORD_GAP.sub(" ", n.lower()))  # noqa: E731
    controls = [bare(c.name) for o, _ in options for c in o if c.control]
    for c in found:  # "our standard 10 x 3 Gy" in PURPOSE marks the control of the METHODS list
        low = bare(c.name)
        c.control = c.control or any(k == low or k.endswith(" " + low) for k in controls)
    # same drug at several doses: keep the doses in the names when RESULTS report them apart
    names = [c.name.lower() for c in found]
    results = " ".join(t for lab, t in rest) or abstract
    for c in found:
        if names.count(c.name.lower()) > 1 and c.dose and c.dose not in c.name:
            num = re.match(r"[\d.,]+", c.dose)
            if num and re.search(r"(?<![\d.])" + re.escape(num.group()) + r"\s*(?:mg|g|\u03bcg|\u00b5g|mcg|ml|IU)\b", results):
                c.name = f"{c.name} {c.dose}"
    generic = {"standard", "control", "intervention", "experimental", "conventional", "usual"}
    found = [c for c in found if not (c.name.lower() in generic and any(
        o is not c and o.name.lower().startswith(c.name.lower() + " ") for o in found))]  # "standard" + "standard treatment"
    _name_add_on(found, body)
    seen: dict[str, _Cand] = {}
    for c in found:
        key = c.name.lower()
        if key in seen:
            seen[key].aliases.extend(a for a in c.aliases if a not in seen[key].aliases)
        else:
            seen[key] = c
    for c in seen.values():
        long = _long_form(c.name, body)
        if long:  # "ZA" defined as "zoledronic acid (ZA)": the name carries both
            c.aliases = [c.name, *c.aliases]
            c.name = long
    arms = []
    for c in seen.values():
        label = next((a for a in c.aliases if _ROLE_ALIAS.match(a)), None)
        abbr = next((a for a in c.aliases if not _ROLE_ALIAS.match(a) and not _ROLE_TAIL.search(a)), None)
        name = f"{c.name} ({abbr})" if abbr and abbr.lower() not in c.name.lower() else c.name
        if label:
            name = f"{label} ({name})"
        aliases = ([c.name] if name != c.name else []) + [a for a in c.aliases]
        arms.append(Arm(name=name, aliases=aliases, experimental=not (c.control or _is_control(c.name))))
    if len(arms) >= 2 and not any(a.experimental for a in arms):
        for a in arms:  # "an observation group and a control group": the one not a plain control is tested
            a.experimental = not rules().strict_control.match(a.name)
    _name_roles(arms, body)
    arms = _order(arms, title, abstract)
    _add_aliases(arms, body)
    return arms


@lru_cache(maxsize=32)
def _role_pattern(role: str) -> re.Pattern[str]:
    return re.compile(rules().role_regimen.replace("ROLE", re.escape(role)))


def _role_regimen(role: str, text: str) -> str | None:
    """The regimen the text gives a role ('an experimental ... regimen of A plus B'), if one."""
    m = _role_pattern(role).search(text)
    return WHITESPACE.sub(" ", m.group("x")) if m else None


_ROLE_NAME = re.compile(r"(?i)(?P<role>experimental|investigational|standard|conventional|control)"
                        r"(?:\s+(?:treatment|regimen|therapy|arm|group))?")  # fullmatch


def _name_roles(found: list[Arm], body: str) -> None:
    """'experimental treatment' vs 'standard treatment': name each by the regimen the text gives it."""
    for c in found:
        m = _ROLE_NAME.fullmatch(c.name)
        x = _role_regimen(m.group("role"), body) if m else None
        if m and x:
            c.aliases.append(c.name)
            c.name = f"{m.group('role').lower()} ({x})"


_CAPITALISED_WORD = re.compile(r"[A-Z][a-z]+")  # fullmatch


def _name_add_on(found: list[_Cand], body: str) -> None:
    """'X alone' beside a bare 'X' (a cut 'X with Y'): the bare arm is X plus what the text adds."""
    alone = {_ALONE.sub("", c.name).lower() for c in found if _ALONE_END.search(c.name)}
    for c in found:
        if c.name.lower() not in alone:
            continue
        for m in re.finditer(r"(?i)(?<!\w)" + re.escape(c.name) + r"(?!\w)", body):
            tail = rules().add_on_tail.match(body, m.end())
            if tail:
                extra = WHITESPACE.sub(" ", tail.group("extra")).strip()
                extra = " ".join(w.lower() if _CAPITALISED_WORD.fullmatch(w) else w for w in extra.split())
                c.name = f"{c.name} plus {extra}"
                break


def _add_on(compared: list[_Cand], randomized: list[list[_Cand]]) -> bool:
    """'A plus X vs. A alone' framing a 'randomized to X or placebo' on a background A: the
    compared regimens are the arms the RESULTS name (combination vs. monotherapy)."""
    if len(compared) != 2:
        return False
    with_x, without = _tokens(compared[0].name), _tokens(compared[1].name)
    shared = with_x & without
    for o in randomized:
        tested = [c for c in o if not _is_control(c.name)]
        if len(o) == 2 and len(tested) == 1 and shared:
            x = _tokens(tested[0].name)
            if x and x <= with_x and not x & without:
                return True
    return False


def _listed_interventions(sections: list[tuple[str | None, str]]) -> list[list[_Cand]]:
    """An INTERVENTIONS section that is the arm list itself: 'A (n = 34) or B (B1; n = 70)'."""
    comp = rules()
    out = []
    for label, text in sections:
        if not label or not comp.list_section.label.search(label):
            continue
        for _, sent in sentences_of(text):
            if len(comp.list_section.count.findall(sent)) >= 2:
                cands = _split_arms(sent.rstrip(". "), short_forms=True)
                if len(cands) >= 2:
                    out.append(cands)
    return out


def _described_groups(sections: list[tuple[str | None, str]]) -> list[list[_Cand]]:
    """'Two datasets were compared: pooled patients from trials A and B (drug X 80 mg, n = 405),
    and the control arm of study C (regimen Y, n = 61)': each group's treatment is in its
    parenthesis, before its count."""
    comp = rules()
    out = []
    for _, text in sections:
        if not any(map(lowered(text).__contains__, comp.described_keywords)):
            continue  # no sentence of it opens the list
        for _, sent in sentences_of(text):
            low = lowered(sent)
            gate = comp.described_gate.search(sent) if any(map(low.__contains__, comp.described_keywords)) else None
            if not gate:
                continue
            cands, start = [], gate.end()
            for m in comp.described_arm.finditer(sent, gate.end()):
                c = _clean(m.group("arm"))
                c.control = c.control or bool(re.search(r"(?i)\bcontrol\s+(?:arm|group|cohort)\b", sent[start:m.start()]))
                cands.append(c)  # "patients from the control arm of study C (regimen Y, n = 61)"
                start = m.end()
            cands = [c for c in cands if _plausible(c.name)]
            if len(cands) >= 2 and len({c.name.lower() for c in cands}) == len(cands):
                out.append(cands)
    return out


def _historical_arms(text: str) -> list[_Cand]:
    """'this phase II trial (S9504) ... compared with those of the predecessor study (S9019)':
    a one-arm trial read against an earlier trial; the trial's own name is the first arm."""
    comp = rules()
    if "(" not in text:
        return []
    own = comp.historical_own.search(text) if comp.historical_require.search(text) else None
    earlier = comp.historical_other.search(text) if own else None
    if not own or not earlier or own.group("id") == earlier.group("id"):
        return []
    return [_Cand(own.group("id"), []), _Cand(earlier.group("id"), [], None, True)]


def _single_arm(title: str, abstract: str, text: str) -> list[_Cand]:
    """A single-arm study: the one treatment every patient received, when the text (title, a
    newline, abstract) says so ("a phase 2, single-arm trial", or no randomization) and names it again."""
    comp = rules()
    if says_randomized(sentences_of(text)) and not comp.single_arm_gate.search(text):
        return []  # randomized, unless only a future or earlier trial is ("a randomized trial is warranted")
    low = lowered(text)
    title_low = lowered(title)
    best: tuple[float, int, _Cand] | None = None
    sources = {"title": (title, title_low), "abstract": (abstract, lowered(abstract))}
    for i, (src, cue, starts) in enumerate(comp.single_arm_cues):
        where, where_low = sources[src]
        for m in finditer_at(cue, where, where_low, starts) if starts else cue.finditer(where):
            c = _clean(m.group("arm"))
            toks = _tokens(c.name)
            if not toks or not _plausible(c.name) or c.control or comp.single_arm_not.search(c.name):
                continue
            uses = min(low.count(t) for t in toks)
            if uses < 2:
                continue  # a treatment named once is not what the abstract reports on
            key = (uses + (1 if all(t in title_low for t in toks) else 0), -i, c)
            if best is None or key[:2] > best[:2]:
                best = key
    return [best[2]] if best else []


_NO_X = re.compile(r"(?i)no\s+(.+)$")  # match: "no X"


def _agrees(title: list[_Cand], listed: list[_Cand]) -> list[int] | None:
    """A title "A with or without X" and a list of as many arms, each title arm one listed arm
    (a listed name holds its words, or, for "no X", lacks X): the listed arms without X, else None."""
    if len(title) < 2 or len(title) != len(listed) or not any(c.name.lower().startswith("no ") for c in title):
        return None
    toks = [_tokens(c.name) for c in listed]
    used: set[int] = set()
    without = []
    for c in title:
        neg = _NO_X.match(c.name)
        want = _tokens(neg.group(1) if neg else c.name)
        if not want:
            return None
        hits = [i for i, t in enumerate(toks) if i not in used and (not want & t if neg else want <= t)]
        if neg and len(hits) != 1 or not neg and len(hits) < 1:
            return None
        used.add(hits[0])
        if neg:
            without.append(hits[0])
    return without


_SHORT_FORM = re.compile(r"[A-Z][A-Za-z0-9/-]{1,7}")  # fullmatch: an abbreviation _long_form may expand


@lru_cache(maxsize=256)
def _long_form(abbr: str, text: str) -> str | None:
    """The words an abbreviation stands for when the text defines it: "zoledronic acid (ZA)"."""
    if not _SHORT_FORM.fullmatch(abbr) or sum(ch.isupper() for ch in abbr) < 2:
        return None
    if f"({abbr})" not in text:
        return None  # the pattern below needs it literally; compiling one per abbreviation costs more
    letters = [ch.lower() for ch in abbr if ch.isalpha() and ch.isupper()]
    for phrase in _definitions(abbr, text):
        words = phrase.split()
        for k in range(1, len(words) + 1):
            tail = words[-k:]
            initials = [w[0].lower() for part in tail for w in part.split("-") if w]
            if initials == letters:
                return " ".join(tail)
    return None


_DEFINED = re.compile(r"((?:[\w-]+\s+){0,5}[\w-]+)\s*\(")


def _definitions(abbr: str, text: str) -> list[str]:
    r"""Group 1 of each re.finditer(r"((?:[\w-]+\s+){0,5}[\w-]+)\s*\(ABBR\)", text), in order.

    A match lies in the run of word, space and hyphen characters before a literal "(ABBR)" (the
    "(" is the run's first other character), so the pattern is tried only in that run, up to that
    "(": the same words, with one pattern for every abbreviation instead of one compiled for each."""
    lit = f"({abbr})"
    out: list[str] = []
    pos, q = 0, text.find(lit)
    while q >= 0:
        run = q
        while run > pos and (text[run - 1].isalnum() or text[run - 1] in "_-" or text[run - 1].isspace()):
            run -= 1  # [\w\s-] as re reads them: str.isalnum() or "_", str.isspace(), "-"
        m = _DEFINED.search(text, run, q + 1)
        if m:
            out.append(m.group(1))
            pos = q + len(lit)
        q = text.find(lit, max(q + 1, pos))
    return out


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _word_at(word: str, text: str) -> int:
    """Where `word` (word characters only) first stands as a whole word in `text`, else -1:
    re.search(r"\b" + re.escape(word) + r"\b") without compiling a pattern per arm word."""
    i = text.find(word)
    while i >= 0:
        j = i + len(word)
        if (i == 0 or not _is_word_char(text[i - 1])) and (j == len(text) or not _is_word_char(text[j])):
            return i
        i = text.find(word, i + 1)
    return -1


_CAPS_WORD = re.compile(r"[A-Z][A-Za-z0-9/-]+")


def _order(arms: list[Arm], title: str, text: str = "") -> list[Arm]:
    """Experimental first: title order when the title names the arms, controls last."""
    tl = title.lower()

    toks = {id(a): _tokens(a.name) for a in arms}

    def pos(a: Arm) -> int:  # where the title first names this arm by a word no other arm has
        others = set().union(*(t for k, t in toks.items() if k != id(a)))
        mine = (toks[id(a)] - others) or toks[id(a)]
        ps = [p for p in (_word_at(t, tl) for t in mine) if p >= 0]
        for abbr in _CAPS_WORD.findall(a.name):  # the title spells out "ALND"
            long = _long_form(abbr, text) if abbr.lower() in mine else None
            if long and long.lower() in tl:
                ps.append(tl.index(long.lower()))
        return min(ps) if ps else 10**6

    if sum(1 for a in arms if pos(a) < 10**6) >= 2:
        idx = {id(a): i for i, a in enumerate(arms)}
        arms = sorted(arms, key=lambda a: (pos(a), idx[id(a)]))
    return sorted(arms, key=lambda a: not a.experimental)


_GROUP_PHRASE = re.compile(r"(?i)\b((?:[\w/+-]+\s+){0,2}?[\w/+-]+)[\s-]+(?:group|arm)s?\b(?!\s+(?-i:[A-Z0-9]{1,2}|I{1,3}|IV)\b)")


_GROUP_WORD = re.compile(r"(?i)group|arm")


_GROUP_WORD_LOW = re.compile("group|arm")  # the same in a lower-cased text (no letter of them folds under (?i))


_PHRASE_RUN = re.compile(r"[\w/+\s-]*")


def _phrase_char(c: str) -> bool:
    r"""[\w/+\s-] as re reads it (\w is str.isalnum() or "_", \s is str.isspace())."""
    return c.isalnum() or c in "_/+-" or c.isspace()


def _group_phrases(text: str) -> list[re.Match[str]]:
    r"""_GROUP_PHRASE.finditer(text), tried only near each "group"/"arm" instead of at every position.

    A match is made of [\w/+\s-] characters only, and before its "group"/"arm" (or any such word
    inside it) come at most three space-separated chunks and a run of spaces and hyphens; so the
    earliest possible start is three chunks back from the first such word not yet passed, and the
    match ends within that run of characters: the same matches, in the same order."""
    out: list[re.Match[str]] = []
    pos = 0
    low = lowered(text)
    words, where = (_GROUP_WORD_LOW, low) if len(low) == len(text) else (_GROUP_WORD, text)  # offsets kept?
    while word := words.search(where, pos):
        i = word.start()
        while i > pos and (text[i - 1].isspace() or text[i - 1] == "-"):
            i -= 1
        for chunk in range(3):
            while i > pos and not text[i - 1].isspace() and _phrase_char(text[i - 1]):
                i -= 1
            while chunk < 2 and i > pos and text[i - 1].isspace():
                i -= 1
        end = _PHRASE_RUN.match(text, word.start()).end()
        m = _GROUP_PHRASE.search(text, i, end)
        if m:
            out.append(m)
            pos = m.end()
        else:
            pos = end
    return out


_LEADING_FILLER = re.compile(r"(?i)^(?:(?:the|in|of|to|with|for|and|a|or|than|vs|versus)\s+)+")


_CONTROL_ROLE = re.compile(r"(?i)(?:control|placebo|usual[- ]care|comparator|reference)")  # fullmatch


_TESTED_ROLE = re.compile(r"(?i)(?:intervention|interventional|experimental|active)")  # fullmatch


_NOT_ONE_GROUP = re.compile(r"(?i)\b(?:versus|vs|or|than|compared|and\s+\w+\s+(?:group|arm)s)\b")


def _add_aliases(arms: list[Arm], text: str) -> None:
    """Distinctive words of each name, and "the X group" phrases of the text (title, a newline,
    abstract) that contain them."""
    if not arms:
        return
    toks = [_tokens(a.name) for a in arms]
    distinct = []
    for i, a in enumerate(arms):
        others = set().union(*(t for j, t in enumerate(toks) if j != i))
        distinct.append(toks[i] - others)
        for t in sorted(distinct[i]):
            if t.isdigit() or t in rules().alias_stop or len(t) < 4 and not t.isalpha():
                continue  # "180" (a dose) would also name "180 patients"; "lung", "high" name no arm alone
            if t not in {x.lower() for x in a.aliases} and t != a.name.lower():
                a.aliases.append(t)
    controls = [a for a in arms if not a.experimental]
    experimentals = [a for a in arms if a.experimental]
    for m in _group_phrases(text):
        phrase = _LEADING_FILLER.sub("", m.group(1))
        low = phrase.lower()
        if _CONTROL_ROLE.fullmatch(phrase) and len(controls) == 1:
            target = controls[0]
        elif _TESTED_ROLE.fullmatch(phrase) and len(experimentals) == 1 and controls:
            target = experimentals[0]
        else:
            hits = [a for a, d in zip(arms, distinct) if any(_word_at(x, low) >= 0 for x in d)]
            if len(hits) != 1:
                continue
            target = hits[0]
        alias = _LEADING_FILLER.sub("", m.group(0)).strip()
        keys = distinct[arms.index(target)] | {"control", "placebo", "usual", "comparator", "reference",
                                                "intervention", "interventional", "experimental", "active"}
        words = alias.split()
        first = next((i for i, w in enumerate(words) if any(k in w.lower() for k in keys)), 0)
        alias = " ".join(words[first:])  # "whilst the control group" -> "control group"
        if _NOT_ONE_GROUP.search(alias):
            continue  # "bandage versus arm", "treatment and placebo groups": not one group
        if alias.lower() != target.name.lower() and alias not in target.aliases and len(alias) <= 60:
            target.aliases.append(alias)


def _populations(text: str) -> list[str]:
    low = lowered(text)
    for keywords, pat in rules().populations:
        m = pat.search(text) if any(map(low.__contains__, keywords)) else None
        if m:
            return [g.strip() for g in m.groups() if g]
    return []


_NOT_DESIGN = re.compile(r"(?i)result|finding|conclusion|interpretation")  # sections n_randomized's weakest cues skip


def frame(article: Article) -> Frame:
    """The design facts of one abstract, from its title, METHODS and registry list."""
    text = article.abstract
    body = article.title + "\n" + text  # built once: several rules lower-case and search it
    sections = [(s.label, s.text) for s in article.sections]
    arms = _arms(article, text, body)
    trial = Trial(
        registration=registrations(body, article.registry_ids),
        phase=phase(article.title, sections),
        n_randomized=n_randomized(text, "\n".join(
            s.text for s in article.sections if not _NOT_DESIGN.search(s.label or ""))),
        arms=[a.name for a in arms],
        allocation_ratio=allocation_ratio(text),
    )
    return Frame(trial=trial, arms=arms, populations=_populations(text))
