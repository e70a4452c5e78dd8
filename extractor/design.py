"""Frame an abstract: the trial's design facts (registry ids, phase, size, arms, cohorts).

Attribution needs to know, before it reads any number, which groups the abstract compares
and how the text names them; this module answers that from the title and METHODS, with
every vocabulary and cue pattern kept as data in rules/design.json.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from .models import Article, Trial
from .rules import load_rules

__all__ = ["Arm", "Frame", "frame", "find_arm", "registrations", "phase", "n_randomized", "rules"]


# ---------------------------------------------------------------- rules (validated data)
class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Registry(_Rule):
    name: str
    pattern: str
    format: str
    examples: list[tuple[str, list[str]]]


class PhaseRule(_Rule):
    pattern: str
    phase: str
    examples: list[tuple[str, bool]]


class SkipRule(_Rule):
    pattern: str
    examples: list[tuple[str, bool]]


class CountRule(_Rule):
    pattern: str
    weight: int
    nonrandomized_only: bool
    examples: list[tuple[str, int | None]]


class ValueRule(_Rule):
    pattern: str
    examples: list[tuple[str, str]]


class ListRule(_Rule):
    pattern: str
    examples: list[tuple[str, list[str]]]


class DesignRules(_Rule):
    registries: list[Registry]
    phases: list[PhaseRule]
    phase_skip: SkipRule
    number_words: dict[str, int]
    person_words: list[str]
    n_randomized: list[CountRule]
    n_list_guard: str
    n_list_guard_examples: list[tuple[str, bool]]
    allocation: ValueRule
    arm_list_cues: list[ValueRule]
    arm_separators: str
    arm_tail_cut: str
    arm_strip: list[str]
    control_words: str
    experimental_words: str
    filler_words: list[str]
    population_cues: list[ListRule]


@dataclass(frozen=True)
class _Compiled:
    registries: list[tuple[re.Pattern[str], str]]
    phases: list[tuple[re.Pattern[str], str]]
    phase_skip: re.Pattern[str]
    counts: list[tuple[re.Pattern[str], int, bool]]
    n_list_guard: re.Pattern[str]
    number_words: dict[str, int]
    allocation: re.Pattern[str]
    arm_cues: list[re.Pattern[str]]
    arm_sep: re.Pattern[str]
    arm_tail: re.Pattern[str]
    arm_strip: list[re.Pattern[str]]
    control: re.Pattern[str]
    experimental: re.Pattern[str]
    filler: frozenset[str]
    populations: list[re.Pattern[str]]


@lru_cache(maxsize=1)
def rules() -> _Compiled:
    """design.json, validated and compiled once (a bad pattern fails here, not mid-corpus)."""
    r = load_rules("design", DesignRules)
    words = sorted(r.number_words, key=len, reverse=True)
    alt = "|".join(words)
    num = (r"(?<![\d.,:/<>\u2264\u2265+-])(?<![<>\u2264\u2265][\s\xa0])(?:\d{1,3}(?:[,\s\xa0]\d{3})+(?!\d)|\d+)"
           r"(?![\d:%]|[.,]\d|\s?%)|\b(?:(?:" + alt
           + r")(?:[\s-]+(?:and\s+)?(?:" + alt + r"))*)\b")
    num = "(?:" + num + ")"
    person = "(?:" + "|".join(map(re.escape, r.person_words)) + ")"
    return _Compiled(
        registries=[(re.compile(g.pattern), g.format) for g in r.registries],
        phases=[(re.compile(p.pattern, re.I), p.phase) for p in r.phases],
        phase_skip=re.compile(r.phase_skip.pattern, re.I),
        counts=[(re.compile(c.pattern.replace("NUM", num).replace("PERSON", person)), c.weight,
                 c.nonrandomized_only) for c in r.n_randomized],
        n_list_guard=re.compile(r.n_list_guard.replace("NUM", num)),
        number_words=r.number_words,
        allocation=re.compile(r.allocation.pattern),
        arm_cues=[re.compile(c.pattern) for c in r.arm_list_cues],
        arm_sep=re.compile(r.arm_separators),
        arm_tail=re.compile(r.arm_tail_cut),
        arm_strip=[re.compile(s) for s in r.arm_strip],
        control=re.compile(r.control_words),
        experimental=re.compile(r.experimental_words),
        filler=frozenset(r.filler_words),
        populations=[re.compile(p.pattern) for p in r.population_cues],
    )


# ---------------------------------------------------------------- public types
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
    _matcher: re.Pattern[str] | None = field(default=None, repr=False, compare=False)


# ---------------------------------------------------------------- registry ids, phase, size
def registrations(text: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Registry ids named in `text` and in `extra` (DataBankList), normalised as the gold writes them."""
    found: list[tuple[int, str]] = []
    for src_i, src in enumerate([text, *extra]):
        for pat, fmt in rules().registries:
            for m in pat.finditer(src):
                found.append((src_i * 10**9 + m.start(), fmt.format(*m.groups())))
    out: list[str] = []
    for _, rid in sorted(found):
        if rid not in out:
            out.append(rid)
    return out


def _sentences(text: str) -> list[tuple[int, str]]:
    """Rough sentence split that keeps offsets ("vs." and "e.g." do not end a sentence)."""
    out, start = [], 0
    for m in re.finditer(r"(?<!\bvs)(?<!\bv)(?<!\be\.g)(?<!\bi\.e)(?<!\bet al)[.;!?](?=\s+[A-Z0-9(\[])|\n", text):
        out.append((start, text[start:m.end()]))
        start = m.end()
    if start < len(text):
        out.append((start, text[start:]))
    return [(s + len(t) - len(t.lstrip()), t.strip()) for s, t in out if t.strip()]


def phase(title: str, sections: list[tuple[str | None, str]]) -> str | None:
    """The trial's own phase: the title's first, else the first body mention not about another trial."""
    comp = rules()
    for label, text in [(None, title), *sections]:
        if label and re.search(r"(?i)conclusion|interpretation|discussion", label):
            continue
        for _, sent in _sentences(text):
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


def _to_int(token: str, words: dict[str, int]) -> int | None:
    token = token.strip().lower()
    if re.fullmatch(r"\d{1,3}(?:[,\s\xa0]\d{3})+|\d+", token):
        return int(re.sub(r"\D", "", token))
    total = current = 0
    for w in re.split(r"[\s-]+", token):
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


def n_randomized(text: str, design_text: str | None = None) -> int | None:
    """Total randomized (else enrolled, else treated) when the abstract states it as one number.

    A count followed by "and N to/were ..." is one arm of a list, not the total: skipped.
    Weakest cues ("in 560 patients") are read only in `design_text` (not RESULTS) when given.
    """
    comp = rules()
    randomized = any(re.search(r"(?i)\brandomi[sz]|\brandomly\b", s) and not comp.phase_skip.search(s)
                     for _, s in _sentences(text))
    best: tuple[int, int, int] | None = None
    for pat, weight, nonrandomized_only in comp.counts:
        if nonrandomized_only and randomized:
            continue
        for m in pat.finditer(text if weight >= 0 or design_text is None else design_text):
            n = _to_int(next(g for g in m.groups() if g), comp.number_words)
            if n is None or n < 6 or comp.n_list_guard.match(text, m.end(m.lastindex or 1)):
                continue
            key = (weight, -m.start(1), n)
            if best is None or key[:2] > best[:2]:
                best = key
    return best[2] if best else None


def allocation_ratio(text: str) -> str | None:
    m = rules().allocation.search(text)
    return re.sub(r"\s", "", m.group(1)) if m else None


# ---------------------------------------------------------------- arms
_ABBR = re.compile(r"\(([A-Z][A-Za-z0-9/+-]{0,11}|[a-z]?[A-Z]{2,}[A-Za-z0-9/+-]{0,8})\)")
_LABEL = re.compile(r"(?i)[(\[;,]\s*((?:arm|group|cohort)\s+[A-Z0-9]{1,2})\s*[)\];,]")


def _clean(part: str) -> tuple[str, list[str]]:
    """A raw arm phrase -> (short name, aliases it defines: "(PemOx)", "(arm A)")."""
    comp = rules()
    aliases = [m.group(1) for m in _LABEL.finditer(part + ")")]
    abbrs = [m.group(1) for m in _ABBR.finditer(part)]
    s = comp.arm_tail.sub("", part)
    for pat in comp.arm_strip:
        s = pat.sub(" ", s).strip()
    s = re.sub(r"\s*\((?:[^()]*)\)", "", s)  # remaining parentheticals (abbreviations kept as aliases)
    s = re.sub(r"\s+", " ", s).strip(" ,;:-")
    s = re.sub(r"(?i)^(?:to|either|receive|with|the)\s+", "", s)
    s = re.sub(r"(?i)\s+(?:and|or|plus|with|in|of|the|a|at|to)$", "", s).strip(" ,;:-")
    name = s
    for a in abbrs:
        if a.lower() not in {x.lower() for x in aliases} and not re.fullmatch(r"(?i)arm|group|n", a):
            aliases.append(a)
    return name, aliases


def _plausible(name: str) -> bool:
    words = name.split()
    if not words or len(words) > 6 or len(name) < 2:
        return False
    if re.match(r"(?i)(?:this|these|that|which|patients?|participants?|we|our|their|its|it|them|one|two|three|\d)\b", name):
        return False
    return bool(re.search(r"[A-Za-z]{2}", name))


def _split_arms(span: str) -> list[tuple[str, list[str]]]:
    comp = rules()
    # protect parentheses/brackets from splitting
    depth, protected = 0, []
    for ch in span:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        protected.append("\0" if depth and ch in ",;" else ch)
    text = "".join(protected)
    parts = [p.replace("\0", ",") for p in comp.arm_sep.split(text) if p and p.strip()]
    out = []
    for p in parts:
        name, aliases = _clean(p)
        if _plausible(name):
            out.append((name, aliases))
    return out


def _title_arms(title: str) -> list[tuple[str, list[str]]]:
    t = re.split(r":\s", title)
    for piece in t:
        m = re.search(r"(?i)(?:^|\b(?:of|with|effect of|efficacy of|comparing|comparison of|trial of|study of)\s+)"
                      r"(?P<a>[^:;]+?)\s+(?:versus|vs\.?|v\.?|compared with|compared to|or|with or without)\s+"
                      r"(?P<b>[^:;]+)", piece)
        if not m:
            continue
        a = m.group("a")
        a = re.sub(r"(?i)^.*\b(?:of|with|comparing)\s+", "", a) if re.search(r"(?i)\b(?:of|comparing)\s", a) else a
        b = m.group("b")
        with_or_without = re.search(r"(?i)with or without", m.group(0)[len(m.group("a")):len(m.group(0)) - len(b)])
        arms = _split_arms(a + " versus " + b)
        if with_or_without and arms:
            arms = [arms[-1], ("no " + arms[-1][0], [])]
        if len(arms) >= 2:
            return arms
    return []


def _is_control(name: str) -> bool:
    return bool(rules().control.search(name)) and not rules().experimental.search(name)


def _tokens(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", name.lower()) if w not in rules().filler and len(w) > 2}


def _arms(article: Article) -> list[Arm]:
    comp = rules()
    title = article.title or ""
    methods = [s for s in article.sections if s.label is None or re.search(
        r"(?i)method|design|patient|participant|intervention|setting|procedure|material", s.label or "")]
    others = [s for s in article.sections if s not in methods]
    found: list[tuple[str, list[str]]] = []
    for secs in (methods, others):
        for s in secs:
            for _, sent in _sentences(s.text):
                for cue in comp.arm_cues[:1]:
                    m = cue.search(sent)
                    if m:
                        cand = _split_arms(m.group("arms"))
                        if len(cand) >= 2:
                            found = cand
                            break
                if found:
                    break
            if found:
                break
        if found:
            break
    from_title = _title_arms(title)
    if not found or (from_title and len(from_title) >= len(found) and _worse(found, from_title)):
        found = from_title or found
    if not found:
        for s in [*article.sections]:
            for _, sent in _sentences(s.text):
                for cue in comp.arm_cues[1:]:
                    m = cue.search(sent)
                    if m:
                        cand = _split_arms(m.group("arms"))
                        if len(cand) >= 2:
                            found = cand
                            break
                if found:
                    break
            if found:
                break
    # dedupe by name, keep order
    seen: dict[str, tuple[str, list[str]]] = {}
    for name, al in found:
        key = name.lower()
        if key in seen:
            seen[key][1].extend(a for a in al if a not in seen[key][1])
        else:
            seen[key] = (name, list(al))
    arms = [Arm(name=n, aliases=al, experimental=not _is_control(n)) for n, al in seen.values()]
    arms = _order(arms, title)
    _add_aliases(arms, article)
    return arms


def _worse(a: list[tuple[str, list[str]]], b: list[tuple[str, list[str]]]) -> bool:
    """True when arm list `a` (METHODS) looks noisier than `b` (title): longer names on average."""
    la = sum(len(n.split()) for n, _ in a) / len(a)
    lb = sum(len(n.split()) for n, _ in b) / len(b)
    return la > lb + 1.5


def _order(arms: list[Arm], title: str) -> list[Arm]:
    """Experimental first: title order when the title names the arms, controls last."""
    tl = title.lower()

    def pos(a: Arm) -> int:
        toks = _tokens(a.name)
        ps = [tl.find(t) for t in toks if tl.find(t) >= 0]
        return min(ps) if ps else 10**6

    if sum(1 for a in arms if pos(a) < 10**6) >= 2:
        idx = {id(a): i for i, a in enumerate(arms)}
        arms = sorted(arms, key=lambda a: (pos(a), idx[id(a)]))
    return sorted(arms, key=lambda a: not a.experimental)


def _add_aliases(arms: list[Arm], article: Article) -> None:
    """Distinctive words of each name, and "the X group" phrases of the text that contain them."""
    if not arms:
        return
    toks = [_tokens(a.name) for a in arms]
    for i, a in enumerate(arms):
        others = set().union(*(t for j, t in enumerate(toks) if j != i)) if len(arms) > 1 else set()
        for t in sorted(toks[i] - others):
            if t not in {x.lower() for x in a.aliases} and t != a.name.lower():
                a.aliases.append(t)
    text = article.title + "\n" + article.abstract
    controls = [a for a in arms if not a.experimental]
    experimentals = [a for a in arms if a.experimental]
    for m in re.finditer(r"(?i)\b((?:[\w/+-]+\s+){0,2}?[\w/+-]+)[\s-]+(?:group|arm)s?\b", text):
        phrase = m.group(1)
        low = phrase.lower()
        if re.fullmatch(r"(?i)(?:the\s+)?(?:control|placebo|usual[- ]care|comparator|reference)", phrase) and len(controls) == 1:
            target = controls[0]
        elif re.fullmatch(r"(?i)(?:the\s+)?(?:intervention|experimental|treatment|active|study)", phrase) and len(experimentals) == 1 and controls:
            target = experimentals[0]
        else:
            hits = [a for a, t in zip(arms, toks) if any(re.search(r"\b" + re.escape(x) + r"\b", low) for x in t - set().union(*(u for u in toks if u is not t)))]
            if len(hits) != 1:
                continue
            target = hits[0]
        alias = re.sub(r"(?i)^(?:the|in|of|to|with|for|and|a)\s+", "", m.group(0)).strip()
        if alias.lower() != target.name.lower() and alias not in target.aliases and len(alias) <= 60:
            target.aliases.append(alias)


def _populations(text: str) -> list[str]:
    for pat in rules().populations:
        m = pat.search(text)
        if m:
            return [g.strip() for g in m.groups() if g]
    return []


# ---------------------------------------------------------------- entry points
def frame(article: Article) -> Frame:
    """The design facts of one abstract, from its title, METHODS and registry list."""
    text = article.abstract
    sections = [(s.label, s.text) for s in article.sections]
    arms = _arms(article)
    trial = Trial(
        registration=registrations(article.title + "\n" + text, article.registry_ids),
        phase=phase(article.title, sections),
        n_randomized=n_randomized(text, "\n".join(
            s.text for s in article.sections if not re.search(r"(?i)result|finding|conclusion|interpretation", s.label or ""))),
        arms=[a.name for a in arms],
        allocation_ratio=allocation_ratio(text),
    )
    return Frame(trial=trial, arms=arms, populations=_populations(text))


def _matcher(fr: Frame) -> re.Pattern[str] | None:
    terms: list[tuple[str, str]] = []
    for a in fr.arms:
        for t in [a.name, *a.aliases]:
            if len(t) >= 2:
                terms.append((t, a.name))
    if not terms:
        return None
    terms.sort(key=lambda x: -len(x[0]))
    alts = []
    for i, (t, _) in enumerate(terms):
        body = re.escape(t).replace(r"\ ", r"[\s-]+")
        if re.search(r"[A-Z]", t[1:]) or (len(t) <= 3 and t.isupper()):
            body = "(?-i:" + body + ")"
        alts.append(rf"(?P<a{i}>{body})")
    pat = (r"(?i)(?<![\w])(?:the\s+)?(?:" + "|".join(alts) + r")"
           r"(?:-(?:based|containing|combination|alone|treated))?"
           r"(?:[\s-]+(?:combination|alone|monotherapy|therapy|treatment|regimen))?"
           r"(?:[\s-]+(?:group|arm|cohort)s?)?(?![\w])")
    fr._terms = [n for _, n in terms]  # type: ignore[attr-defined]
    return re.compile(pat)


def find_arm(text: str, frame: Frame) -> list[tuple[int, int, str]]:
    """Every place in `text` that names an arm: (start, end, arm name), longest first, no overlaps."""
    if frame._matcher is None:
        frame._matcher = _matcher(frame)
    if frame._matcher is None:
        return []
    names: list[str] = frame._terms  # type: ignore[attr-defined]
    out = []
    for m in frame._matcher.finditer(text):
        idx = next(int(k[1:]) for k, v in m.groupdict().items() if v is not None)
        out.append((m.start(), m.end(), names[idx]))
    return out
