"""Whose result a number is: the arm of a median or rate, the comparison of a ratio.

An arm phrase bound to the number ("with drug A, 7.1 months"), else the order of a "vs" list
against the arms named around it, else the trial's arm order (design.py frames the arms,
experimental first). Short forms the abstract defines for an arm ("(PCT)") name it too.
"""
from __future__ import annotations

import re

from . import design
from .attribution import PARENS, Item, attribution_rules
from .mentions import Mention
from .text import fold_case, literal_spans


_VS_GAP = re.compile(r"[\s\])]*(?:\[[^\]]*\])?[\s)\]]*(?:vs\.?|versus|v|and|compared with)\s*")


# precompiled: a module-level re.findall/search with a pattern string looks it up in re's cache each call
_LOWER_WORD = re.compile(r"[a-z0-9]+")
_ONLY_NUMBERS = re.compile(r"[\d.\s%]+")
_ALONE = re.compile(r"(?i)\balone\b")
_ONE_CHAR = re.compile(r"\b[A-Za-z0-9]\b")


def _bind(sent: str, spans: list[tuple[int, int, str]], lo: int, hi: int, m: Mention,
          used: set[int]) -> str | None:
    """The free arm phrase nearest to the value inside its own segment (lo..hi)."""
    best: tuple[int, int, str] | None = None
    for i, (s, e, name) in enumerate(spans):
        if i in used or s < lo or e > hi:
            continue
        if e <= m.start:
            if ":" in sent[e:m.start] and attribution_rules().comparator_before.search(sent, max(0, s - 60), s):
                continue  # "longer with A than with B: 12.3 weeks in the A group": B is the summary's
            d = m.start - e
        elif e <= m.value_start:  # inside the mention's head ("with X [265/4687 (5.7%)]")
            d = m.value_start - e
        elif s >= m.end:
            if _COMPARATOR.search(sent, m.end, s) or ";" in sent[m.end:s]:
                continue  # "(4.0%) than in placebo patients": that arm is the next value's
            d = s - m.end
        elif s >= m.value_end:  # inside its tail ("9.3 months in the X arm (p = 0.78)")
            d = s - m.value_end
        else:
            continue
        if best is None or d < best[0]:
            best = (d, i, name)
    if best is None:
        return None
    used.add(best[1])
    return best[2]


def _words(name: str) -> set[str]:
    return {w for w in _LOWER_WORD.findall(name.lower()) if w not in attribution_rules().filler}


def _best_arm(want: set[str], fr: design.Frame) -> str | None:
    """The trial arm a phrase names: same words first, then a longer name, then a shorter one;
    never across a negation ("not at risk" is not "at risk")."""
    best: tuple[int, str] | None = None
    neg = attribution_rules().negation
    for arm in fr.arms:
        for name in (arm.name, *arm.aliases):
            have = _words(name)
            if not have or bool(have & neg) != bool(want & neg):
                continue
            rank = 3 if have == want else 2 if want <= have else 1 if have <= want else 0
            if rank and (best is None or rank > best[0]):
                best = (rank, arm.name)
    return best[1] if best else None


def _text_arm(sent: str, m: Mention, lo: int, hi: int, fr: design.Frame) -> str | None:
    """An arm the text names next to the value ("in the X group", "arm B, 8 months") when
    design.find_arm knows no alias for it: mapped onto the trial's arm sharing its words."""
    r = attribution_rules()
    phrase, known_only = None, False
    a = r.arm_after.match(sent[m.value_end:hi])
    if a:
        phrase = a.group("arm")
    else:
        b = r.arm_before.search(sent[lo:m.value_start])
        if b:
            phrase = b.group("arm") or b.group("arm2")
        else:
            b = r.arm_before_known.search(sent[lo:m.value_start])
            if b:  # "response to X was", "and X (": only when X is one of the trial's arms
                phrase, known_only = b.group("a") or b.group("b"), True
    phrase = phrase.strip(" .,;:") if phrase else phrase
    if not phrase or r.arm_stop.match(phrase.strip()) or _ONLY_NUMBERS.fullmatch(phrase):
        return None
    want = _words(phrase)
    if not want:
        return None
    named = set().union(*(_words(t) for x in fr.arms for t in (x.name, *x.aliases)))
    if _ALONE.search(phrase) and want <= named:  # "the chemotherapy-alone group": not chemotherapy plus X
        alone = [x.name for x in fr.arms if _ALONE.search(" ".join([x.name, *x.aliases]))] \
            or [x.name for x in fr.arms if not x.experimental]
        if len(alone) == 1:
            return alone[0]
    mapped = _best_arm(want, fr)
    if mapped:
        return mapped
    if want & r.control:
        controls = [x.name for x in fr.arms if not x.experimental]
        if len(controls) == 1:
            return controls[0]
    return None if known_only else phrase.strip()


_COMPARATOR = re.compile(r"(?i)\b(?:than|versus|vs\.?|v|compared|whereas|while)\b")


_NEGATED = re.compile(r"(?i)\b(?:no|not|without|non)[\s-]*$")


_ACRONYM = re.compile(r"\s*\((?P<acr>[A-Z][A-Za-z0-9+/-]{0,7})\)")


def arm_acronyms(text: str, fr: design.Frame) -> dict[str, str]:
    """Short forms the abstract defines for an arm: "preoperative chemotherapy (PCT)" -> PCT."""
    out: dict[str, str] = {}
    folded = fold_case(text)
    for arm in fr.arms:
        for name in (arm.name, *arm.aliases):
            if len(name) < 4:
                continue
            spans = literal_spans(name, text, folded=folded) if name.isascii() else \
                [m.span() for m in re.finditer(r"(?<![\w-])" + re.escape(name), text, re.IGNORECASE)]
            for start, end in spans:
                a = _ACRONYM.match(text, end)  # most names have none: tried before the negation
                if a is None or _NEGATED.search(text, max(0, start - 12), start):
                    continue  # "no chemotherapy (NoC)" is not chemotherapy's short form
                if a.group("acr") not in ("CI", "HR", "OR", "RR", "IQR") and a.group("acr") != name:
                    out.setdefault(a.group("acr"), arm.name)
    return out


def acronym_spans(sent: str, acronyms: dict[str, str]) -> list[tuple[int, int, str]]:
    return [(s, e, arm) for acr, arm in acronyms.items() for s, e in literal_spans(acr, sent, word_end=True)]


_LABEL_TERM = re.compile(r"(?:^|\()(?:the\s+)?(?:arm|group|cohort)\s+(?P<label>[A-Z]|[1-9])\)?$", re.IGNORECASE)
_LABEL_LIST = re.compile(r"\b(?:arm|group|cohort)s?\s+(?P<labels>(?:[A-Z]|[1-9])\b(?:\s*(?:,|and|or|&|vs\.?|versus)\s*(?:[A-Z]|[1-9])\b)*)",
                         re.IGNORECASE)


def label_spans(sent: str, fr: design.Frame) -> list[tuple[int, int, str]]:
    """Arms called by their letter or number ("arm A", "arms A and B", "group 2"), whatever
    word the trial's own arm names use ("group A" in METHODS, "arm A" in RESULTS): one span per
    label, at the label, so a list keeps its order."""
    labels: dict[str, str] = {}
    for arm in fr.arms:
        for term in (arm.name, *arm.aliases):
            m = _LABEL_TERM.search(term)
            if m:
                labels.setdefault(m.group("label").upper(), arm.name)
    if len(labels) < 2:
        return []
    out = []
    for m in _LABEL_LIST.finditer(sent):
        for x in _ONE_CHAR.finditer(m.group("labels")):
            arm = labels.get(x.group().upper())
            if arm is not None and (x.group().isupper() or x.group().isdigit()):
                out.append((m.start("labels") + x.start(), m.start("labels") + x.end(), arm))
    return out


def uniq(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _comparator_last(sent: str, spans: list[tuple[int, int, str]]) -> list[str]:
    """The arms named before a value list, in the order the list gives their values: as
    written, except that an arm introduced as the comparator ("Compared with placebo, drug X
    raised the rate (40% v 20%)") comes after the others."""
    r = attribution_rules()
    names = uniq([sp[2] for sp in spans])
    comparators = uniq([sp[2] for sp in spans if r.comparator_before.search(sent, max(0, sp[0] - 60), sp[0])])
    if not comparators or len(comparators) == len(names):
        return names
    return [n for n in names if n not in comparators] + comparators


def assign_arms(sent: str, items: list[Item], spans: list[tuple[int, int, str]], fr: design.Frame,
                 all_mentions: list[Mention]) -> None:
    """Give each median and rate its arm: bound phrase, list order, or the trial's arm order."""
    values = sorted((it for it in items if it.kind in ("median", "rate") and it.arm is None),
                    key=lambda it: it.mention.start)  # landmark runs may have named theirs
    if not values:
        return
    r = attribution_rules()
    arms, populations = [a.name for a in fr.arms], fr.populations
    bounds = sorted(all_mentions, key=lambda x: x.start)

    def segment(m: Mention) -> tuple[int, int]:
        i = bounds.index(m)
        return (bounds[i - 1].end if i else 0, bounds[i + 1].start if i + 1 < len(bounds) else len(sent))

    used: set[int] = set()
    groups: dict[int, list[Item]] = {}
    for it in values:
        if it.mention.group is not None:
            groups.setdefault(it.mention.group, []).append(it)
    done: set[int] = set()
    for members in groups.values():
        if len(members) < 2 or len({it.endpoint for it in members}) > 1:
            continue  # "median PFS was 6 months and median OS 14 months": not one arm each
        if len({it.timepoint for it in members}) == len(members):
            continue  # "1-, 2-, and 3-year rates of 58%, 34% and 17%": one value per time point
        first, last = members[0].mention, members[-1].mention
        k = len(members)
        inside = [i for i, sp in enumerate(spans) if first.end <= sp[0] and sp[1] <= last.start]
        resp = any(x.mention.respectively for x in members)
        if inside and not resp:
            continue  # interleaved "8 months with A and 5 months with B": bind one by one below
        lo, hi = segment(first)[0], segment(last)[1]
        before = _comparator_last(sent, [sp for sp in spans if lo <= sp[0] and sp[1] <= first.start])
        after = uniq([sp[2] for sp in spans if sp[0] >= last.end and sp[1] <= hi])
        if resp:
            chosen = after[:k] if len(after) >= k else []
            if not chosen and not after:
                named = uniq([sp[2] for sp in spans if sp[1] <= first.start])
                chosen = named if len(named) == k else (list(arms) if len(arms) == k and not named else [])
            if not chosen and len(before) == 1:
                chosen = before * k
                if len(populations) == k:
                    for it, pop in zip(members, populations):
                        it.population, it.listed_population = pop, True
        else:
            controls = [a.name for a in fr.arms if not a.experimental]
            chosen = before[-k:] if len(before) >= k else []
            if not chosen and k == 2 and len(before) == 1 and not after and len(controls) == 1 \
                    and before[0] != controls[0] and len(arms) > 2:
                chosen = [before[0], controls[0]]  # "erlotinib (median, 2.9 v 1.9 months)"
            if not chosen and len(before) < k and not after:
                wide = _comparator_last(sent, [sp for sp in spans if sp[1] <= first.start])
                chosen = wide[-k:] if len(wide) >= k else []
            if not chosen:
                texts = [_text_arm(sent, it.mention, *segment(it.mention), fr) for it in members]
                if all(texts) and len(set(texts)) == k:
                    chosen = texts  # type: ignore[assignment]
            if not chosen and not before and len(after) == k and r.arms_after_list.match(
                    PARENS.sub("", sent[last.end:min(sp[0] for sp in spans if sp[0] >= last.end)])):
                chosen = after  # "86% and 83% (p = 0.6) for the A group and B group": in order
            if not chosen and len(arms) == k and len(before) + len(after) <= 1:
                chosen = list(arms)
        if len(chosen) == k:
            for it, name in zip(members, chosen):
                it.arm = name
                done.add(id(it))
    ghosts = [Item(x, "median") for x in all_mentions if x.not_reached]  # they claim their arm too
    for it in sorted([*values, *ghosts], key=lambda x: x.mention.start):
        if id(it) in done:
            continue
        m = it.mention
        lo, hi = segment(m)
        it.arm = _bind(sent, spans, lo, hi, m, used)
        if it.arm is None and len(arms) >= 2 and (r.both_arms.search(sent[m.end:m.end + 40])
                                                   or attribution_rules().both_groups.search(sent[:m.start])):
            it.arm, it.extra_arms = arms[0], arms[1:]  # "32% for both arms (partial response = 31%)"
        if it.arm is None:
            it.arm = _text_arm(sent, m, lo, hi, fr)
        if it.arm is None and len(arms) == 2 and not m.not_reached:
            for g in ghosts:  # "(not reached vs. 6.3 months)": the pair in the trial's order
                if g.mention.end <= m.start and _VS_GAP.fullmatch(sent[g.mention.end:m.start]):
                    it.arm = arms[1]
                elif g.mention.start >= m.end and _VS_GAP.fullmatch(sent[m.end:g.mention.start]):
                    it.arm = arms[0]
        if it.arm is None and len(arms) == 1:
            it.arm = arms[0]
    named = uniq([sp[2] for sp in spans])
    if len(named) == 1 and all(it.arm in (None, named[0]) for it in values):
        for it in values:  # "median PFS was 6.0 months and median OS 14.1 months in the X group"
            if it.arm is None and it.mention.group is not None:
                it.arm = named[0]


def _map_arm(phrase: str, fr: design.Frame) -> str:
    """The trial arm whose words contain (or are contained in) the phrase's, else the phrase."""
    want = _words(phrase)
    for arm in fr.arms:
        for name in (arm.name, *arm.aliases):
            have = _words(name)
            if want and have and (want <= have or have <= want) and len(have) >= len(want) - 1:
                return arm.name
    return phrase.strip()


def comparison_phrase(text: str, fr: design.Frame | None = None) -> list[str] | None:
    """"comparing A with A plus B" -> [A plus B, A]; "A compared with B was" / "A vs B:" -> [A, B]."""
    r = attribution_rules()
    found = None
    for pat in r.comparisons:
        for m in pat.finditer(text):
            found = m
    if found is None:
        return None
    y = found.group("y").strip()
    if "x" not in found.re.groupindex:  # "... and compared with B was 0.93": A is the previous one's
        return None if r.arm_stop.match(y) else ["", _map_arm(y, fr) if fr is not None else y]
    x = re.split(r"\bfor\s+", found.group("x"))[-1].strip()
    if r.arm_stop.match(x) or r.arm_stop.match(y):
        return None
    wx, wy = _words(x), _words(y)
    pair = [y, x] if wx and wx < wy else [x, y]
    return [_map_arm(n, fr) for n in pair] if fr is not None else pair


def _list_subject(sent: str, items: list[Item], m: Mention, ref: str) -> str | None:
    """The arm every value of a "compared with" list is set against: "44% in A compared with
    18% in B (OR 3.9) and 30% in C (OR 1.9)": the OR after C's value is A vs C."""
    values = [it for it in items if it.arm and it.kind in ("median", "rate") and it.mention.end <= m.start]
    if len(values) < 2 or values[0].arm == ref or values[-1].arm != ref:
        return None
    return values[0].arm if _COMPARATOR.search(sent, values[0].mention.end, values[-1].mention.start) else None


def comparison(sent: str, m: Mention, spans: list[tuple[int, int, str]], fr: design.Frame,
                items: list[Item]) -> list[str] | None:
    """[experimental, reference] of a ratio: the trial's pair, a "comparing A with B" phrase,
    or the arms named around it in a multi-arm trial."""
    arms = [a.name for a in fr.arms]
    head = sent[:m.value_start]
    clause = head[max(head.rfind(";"), head.rfind(". ")) + 1:]
    named = comparison_phrase(clause, fr)
    if named and not named[0]:
        prior = [it.comparison for it in items if it.comparison and it.mention.end <= m.start]
        named = [prior[-1][0], named[1]] if prior else None
    if named and (len(arms) != 2 or set(named) <= set(arms) or not set(named) & set(arms)):
        return named  # the text says which arms this ratio compares
    pair = uniq([it.arm for it in items if it.arm and it.kind in ("median", "rate")
                  and it.mention.end <= m.start and not any(
                      x.type == "ratio" and it.mention.end <= x.start < m.start for x in (i.mention for i in items))])
    if len(arms) == 2:  # the order the values were given in ("8.2 months with B versus 5.4 with A (HR 0.73)"),
        own = [sp[2] for sp in spans if (m.cue_start or m.start) <= sp[0] and sp[1] <= m.value_start]
        if own:  # unless the ratio names its reference ("HR vs. warfarin 1.01")
            return [a for a in arms if a != own[-1]] + [own[-1]]
        return pair if len(pair) == 2 and set(pair) == set(arms) else list(arms)
    if len(pair) >= 2:
        return pair[-2:]  # the arms of the values this ratio compares ("2.9 v 1.9 months; HR 0.69")
    if len(pair) == 1:
        subject = _list_subject(sent, items, m, pair[0])
        if subject:
            return [subject, pair[0]]
    if len(arms) < 2:
        return None
    before = list(dict.fromkeys(s[2] for s in spans if s[1] <= m.end + 5))
    inside = list(dict.fromkeys(s[2] for s in spans if s[0] >= (m.cue_start or m.start) and s[1] <= m.end))
    if inside:
        ref = inside[-1]
        prior = [it.arm for it in items if it.arm and it.mention.end <= m.start and it.arm != ref]
        exp = prior[-1] if prior else next((a for a in reversed(before) if a != ref), None)
        return [exp, ref] if exp else None
    if len(before) >= 2:
        pair = before[-2:]
        return sorted(pair, key=arms.index)
    if len(before) == 1:
        return [before[0], arms[-1]] if before[0] != arms[-1] else None
    return None
