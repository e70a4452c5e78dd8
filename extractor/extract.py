"""Article -> (Trial, [Measurement]): every outcome number of an abstract, attributed.

mentions.py finds and types the numbers of a sentence; design.py frames the trial (arms,
registry ids); this module walks the sentences that can hold a result and decides, for each
number, its kind (a ratio, a median, a rate), its population (a sentence-initial frame
holding until replaced, or an inline one) and the landmark time of a rate, with outcomes.py
naming its endpoint and arms.py its arm or comparison. Cue words are data in
rules/attribution.json and rules/endpoints.json.
"""
from __future__ import annotations

import re

from . import design
from .arms import acronym_spans, arm_acronyms, assign_arms, comparison, label_spans, uniq
from .attribution import RATE_CODES, SURVIVAL, Context, Item, attribution_rules, may_match
from .consistency import check
from .mentions import Mention, find_mentions
from .models import Article, Measurement, Trial
from .nlp import Hit, find_endpoints, is_response, sentences
from .outcomes import (MEDIAN_OTHER, abbrev_hits, death_like, endpoint_after, nearest_before, outcome_abbrevs,
                       outcome_at, rate_endpoint, rate_names, ratio_endpoint, score_named)
from .text import WHITESPACE, fold_case, normalise

__all__ = ["extract"]


_WORDNUM = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
            "nine": 9, "ten": 10, "twelve": 12, "eighteen": 18, "twenty-four": 24, "thirty": 30,
            "sixty": 60, "ninety": 90}


_GATE = re.compile(r"\d")


_DURATION = re.compile(r"(?i)duration|durable")


_RATE_WORD = re.compile(r"(?i)\brates?\b|probabilit|estimate")


# precompiled: a module-level re.sub/search with a pattern string looks it up in re's cache each call
_TIME_AFTER_CUE = re.compile(r"\d|\b(?:at|after|within|by|follow)")
_SIGN_SPACE = re.compile(r"([<>\u2264\u2265=])\s+")
_LOWER_WORD = re.compile(r"[a-z]+")
_DIGITS = re.compile(r"\d+")


def _timepoint(m: re.Match[str]) -> str:
    n = m.group("n") or m.group("n2")
    unit = m.group("unit") or (m.group("unit2") or "").rstrip("s")
    if m.group("wn"):
        n, unit = m.group("wn"), "week"
    num = _WORDNUM.get(n.lower(), None) if n else None
    val = num if num is not None else n
    try:
        plural = float(val) != 1
    except (TypeError, ValueError):
        plural = True
    return f"{val} {unit.lower()}{'s' if plural else ''}"


def _clean_pop(p: str) -> str:
    return WHITESPACE.sub(" ", p).strip(" ,;:.")


def _frame_population(sent: str) -> str | None:
    for pat in attribution_rules().frames:
        m = pat.search(sent)
        if m:
            return _clean_pop(m.group("pop"))
    return None


def _is_result(sent: str, folded: str, m: Mention) -> bool:
    """Drop follow-up times and time points, unless a median cue governs the duration closely
    ("a median survival of 7.9 months" is a result, "survival at 12 months" is not).
    `folded` is fold_case(sent)."""
    if "follow_up" in m.flags or "adjective" in m.flags or "difference" in m.flags:
        return False
    lo = max(0, m.value_start - 40)
    if may_match("non_result_before", folded, lo, m.value_start) and \
            attribution_rules().non_result_before.search(sent, lo, m.value_start):
        return False  # "number needed to treat, 9.4 [95% CI, 5.4-35.5]": not a ratio or a rate
    if "timepoint" not in m.flags:
        return True
    if m.type != "duration":
        return False
    window = sent[max(0, m.value_start - 45):m.value_start]
    cue = None
    for c in attribution_rules().median_cue.finditer(window):
        cue = c
    return cue is not None and not _TIME_AFTER_CUE.search(window[cue.end():])


def _subgroup_label(sent: str, m: Mention, hits: list[Hit], spans: list[tuple[int, int, str]]) -> str | None:
    """The short subgroup name written right before a ratio ("A1C >8.5%: HR 1.64")."""
    r = attribution_rules()
    at = m.cue_start if m.cue_start is not None else m.value_start
    lo = max(0, at - 70)
    lab = None
    for b in [lo, *(x.end() for x in r.subgroup_boundary.finditer(sent, lo, at))][::-1]:
        cand = r.subgroup_label.match(sent[:at], b)  # nearest boundary first
        if cand and not r.label_block.search(cand.group("label")):
            lab = cand
            break
    group = "label"
    if lab is None:
        lab = r.subgroup_label_after.match(sent, m.end)  # "compared with 0.96, 0.72-1.27, in nonusers"
    if lab is None:
        return None
    label = lab.group(group).strip()
    a, b = lab.start(group), lab.end(group)
    if r.label_block.search(label) or len(label.split()) > 6:
        return None
    if any(a <= h.start < b for h in hits) or any(a <= s < b for s, _, _ in spans) \
            or outcome_at(sent, hits, a, b):  # "relapse (HR 2.0)": a factor or an endpoint, no subgroup
        return None
    return _SIGN_SPACE.sub(r"\1", label)  # "> Q1" is written ">Q1" in names


_CLAUSE_BREAK = re.compile(r"(?i)\b(?:whereas|while|but|although|however)\b")


def extract(article: Article) -> tuple[Trial, list[Measurement]]:
    """The trial facts and every attributed outcome measurement of one article."""
    fr = design.frame(article)
    trial = fr.trial
    arms = [a.name for a in fr.arms]
    raw = article.abstract
    text = normalise(raw)
    r = attribution_rules()
    ctx = Context()
    ctx.acronyms = arm_acronyms(normalise(article.title) + "\n" + text, fr)
    ctx.outcome_abbrevs = outcome_abbrevs(text, ctx.acronyms) if "(" in text else {}
    titled = [h.code for h in find_endpoints(normalise(article.title))] if _GATE.search(raw) else []
    ctx.endpoint = next((c for c in titled if c in SURVIVAL or c in RATE_CODES), None)  # last resort
    folded = fold_case(text)
    out: list[Measurement] = []
    seen: set[tuple] = set()
    for sec in article.sections:
        if sec.label and r.skip_sections.search(sec.label.strip()):
            end = sec.offset + len(sec.text)
            primary = r.primary_endpoint.search(text, sec.offset, end) \
                if may_match("primary_endpoint", folded, sec.offset, end) else None
            if primary:  # "The primary end point was PFS": the default (over the title's)
                named = [h.code for h in find_endpoints(text[primary.end():primary.end() + 80])]
                if named and (named[0] in SURVIVAL or named[0] in RATE_CODES):
                    ctx.endpoint = named[0]
            continue
        base = sec.offset
        sec_text = text[base:base + len(sec.text)]
        for s0, e0 in sentences(sec_text):
            s, e = base + s0, base + e0
            sent = text[s:e]
            if "95%" in sent or "95 %" in sent or "95 percent" in sent:
                ctx.ci95 = True
            pop = _frame_population(sent)
            if pop is not None:
                ctx.population = pop
            if not _GATE.search(sent):
                if may_match("endpoint_words", folded, s, e) and r.endpoint_words.search(sent):  # "Overall survival was longer. The HR was 0.77"
                    named = [h.code for h in find_endpoints(sent) if h.code in SURVIVAL or h.code in RATE_CODES]
                    if named:
                        ctx.endpoint = named[-1]
                continue
            mentions = find_mentions(sent)
            if not mentions:
                continue
            items = _attribute(sent, mentions, ctx, fr, arms)
            for it in items:
                for arm, pop in [(a, p) for a in [it.arm, *it.extra_arms]
                                 for p in [it.population, *it.extra_populations]]:
                    meas = _measurement(article, raw, s, e, it, arm, pop, ctx)
                    if meas is None:
                        continue
                    key = (meas.kind, meas.endpoint, meas.arm, tuple(meas.comparison or ()), meas.value,
                           meas.ci_low, meas.ci_high, meas.population, meas.timepoint)
                    if key in seen:
                        continue
                    seen.add(key)
                    out.append(meas)
    return trial, out


def _ratio_item(sent: str, m: Mention, hits: list[Hit], ctx: Context) -> Item | None:
    if m.value_start >= 2 and sent[m.value_start - 1] == "-" and sent[m.value_start - 2].isalpha():
        return None  # "YKL-40": a name, not a ratio
    return Item(m, m.ratio_kind or "hazard_ratio", ratio_endpoint(sent, m, hits, ctx))


def _median_item(sent: str, m: Mention, mentions: list[Mention], hits: list[Hit], ctx: Context) -> Item | None:
    """A duration is a median result when a median cue (or a survival phrase over a "vs" list)
    governs it and nothing between says follow-up, age or dose."""
    r = attribution_rules()
    before = sent[:m.value_start]
    if r.duration_threshold.search(sent, max(0, m.value_start - 30), m.value_start):
        return None  # "23% of responses lasted 6 months or more": a threshold, not a median
    cue = None
    for c in r.median_cue.finditer(before):
        cue = c
    ep_hit = nearest_before(hits, m.value_start)
    if cue is None and not (ep_hit and ep_hit.code in SURVIVAL and m.group is not None):
        return None
    if cue is not None and r.median_pre_block.search(sent, max(0, cue.start() - 12), cue.start()):
        return None  # "recurrence developed at a median of 35 months": when, not how long
    w0 = cue.end() if cue else ep_hit.start  # type: ignore[union-attr]
    first = min([x.start for x in mentions if x.start >= w0] or [m.value_start])
    if r.median_block.search(sent, w0, first):
        return None  # "Median follow-up was 27.9 months ... and 24.8 months"
    w0 = max([w0, *(x.end for x in mentions if x is not m and x.end <= m.start)])
    window = sent[w0:m.value_start]  # the words between, not another value's CI
    if r.median_block.search(window) and not (ep_hit and (cue is None or ep_hit.start > cue.start())):
        return None
    code = ep_hit.code if ep_hit and ep_hit.code in SURVIVAL else None
    if code is None and ep_hit and ep_hit.code in ("ORR", "CR") and _DURATION.search(
            sent, max(0, ep_hit.start - 30), ep_hit.end):
        code = "DOR"
    if code is None:
        tm = MEDIAN_OTHER.search(before)
        if tm:
            code = "other:" + ("time " + tm["to"] if tm["to"] else tm["dur"]).lower().strip()
        elif cue is not None and ctx.endpoint in SURVIVAL and not ep_hit and set(
                _LOWER_WORD.findall(sent[cue.end():m.value_start].lower())) <= r.median_carry_words:
            code = ctx.endpoint  # "(median, 3.8 v 1.9 months)" after "PFS was prolonged"
    return Item(m, "median", code) if code else None


def _rate_item(sent: str, m: Mention, mentions: list[Mention], hits: list[Hit]) -> Item | None:
    """A percentage is a rate when an outcome governs it and no cue says it is something else
    (baseline make-up, a reduction, a named adverse event, a survey response ...)."""
    r = attribution_rules()
    list_end = max((x.end for x in mentions if m.group is not None and x.group == m.group), default=m.end)
    code, hit, gov = rate_endpoint(sent, m, hits, 0, list_end)
    if code is None:
        return None
    gov_end = hit.end if hit is not None and hit.end <= m.start else m.start
    between = sent[gov_end:m.start]
    if r.rate_block.search(between) or r.rate_after.search(sent[m.end:m.end + 60]) \
            or r.rate_stat_block.search(sent, max(0, m.start - 80), m.start) \
            or (hit is not None and r.pre_hit_block.search(sent, max(0, hit.start - 30), hit.start)):
        return None  # "a 25% reduction", "at baseline", "the median percentage of days"
    if hit is not None and code == "OS" and death_like(sent, hit):
        code = "other:death"
    if code.startswith("other:") and (r.outcome_block.search(sent, 0, m.start)
                                      or r.outcome_block_near.match(sent, m.end)):
        return None
    if code == "AE3" and (r.individual_ae.search(between) or (hit is not None and not (
            r.ae3_head.match(sent[hit.end:]) or r.ae3_tail.search(sent[max(0, hit.start - 40):hit.start])))):
        return None  # "grade 3 renal toxicity (9% vs 3%)": a named event, not all grade >=3 AEs
    timepoint = None
    first = min((x.start for x in mentions if m.group is not None and x.group == m.group), default=m.start)
    lo = max(0, (hit.start if hit is not None else min(gov, first)) - 30)  # "the 12-month <outcome> rate"
    region = sent[lo:m.start]  # the list's, not each value's
    values = [(x.value_start, x.end) for x in mentions if x.type == "duration" and "timepoint" not in x.flags]
    for x in r.landmark.finditer(region):
        if any(a <= lo + x.start() < b for a, b in values):
            continue  # "7.1 months and 30% for arm A": a median's value, not the rate's time point
        if not r.landmark_block.search(region[:x.start()]):  # "under the age of 60 years"
            timepoint = _timepoint(x)
    if timepoint is None:  # "51.5% vs. 46.2% at five years": the landmark after the list
        gap = r.landmark_after.match(sent, list_end)
        x = r.landmark.match(sent, gap.end()) if gap else None
        if x is not None and x.group("n2") or x is not None and x.group("wn"):
            timepoint = _timepoint(x)
    if code in SURVIVAL and timepoint is None and not _RATE_WORD.search(sent, max(0, m.start - 80), m.start):
        return None  # "survival improved in 30%": not a landmark rate
    return Item(m, "rate", code, timepoint=timepoint)


def _population(sent: str, m: Mention, inline: list[tuple[int, str]], kept: list[Mention],
                ctx: Context) -> str | None:
    """An inline population before the value, else one right after its list, else the frame."""
    before = [p for pos, p in inline if pos < m.start]
    if before:
        return before[-1]
    later = [p for pos, p in inline if pos > m.end and ";" not in sent[m.end:pos]
             and not _CLAUSE_BREAK.search(sent, m.end, pos)  # "(HR ..), whereas in N0 disease (HR ..)"
             and not any(m.end < x.start < pos and x.type != m.type for x in kept)]
    return later[0] if later else ctx.population


def _inline_populations(sent: str) -> tuple[list[tuple[int, str]], list[tuple[int, int, str]]]:
    """The populations a sentence names inline, as (position, name), and those a count owns
    ("9 of the 15 patients with X died"), as (start, end, name)."""
    r = attribution_rules()
    framed = _frame_population(sent) is not None
    found = [x for x in r.inline_pop.finditer(sent) if x.start() > 0 or not framed or x.group("pop5")]
    inline = [(x.start(), _clean_pop(x.group("pop") or x.group("pop2") or x.group("pop3") or x.group("pop4")))
              for x in found if not x.group("pop5")]  # a sentence-initial one is the frame
    owned = [(x.start(), x.end(), _clean_pop(x.group("pop5"))) for x in found if x.group("pop5")]
    return inline, owned


def _attribute(sent: str, mentions: list[Mention], ctx: Context, fr: design.Frame,
               arms: list[str]) -> list[Item]:
    """Every result of one sentence with its endpoint, population, arm or comparison."""
    r = attribution_rules()
    hits = find_endpoints(sent)
    if ctx.outcome_abbrevs:  # "the SRR was": an outcome the abbreviation's definition named
        hits = sorted(hits + [h for h in abbrev_hits(sent, ctx.outcome_abbrevs)
                              if not any(x.start < h.end and h.start < x.end for x in hits)], key=lambda h: h.start)
    ratio_spans = [(m.cue_start if m.cue_start is not None else m.start, m.end) for m in mentions if m.type == "ratio"]
    hits = [h for h in hits if h.cue or not any(a <= h.start < b for a, b in ratio_spans)
            or r.ratio_own_endpoint.search(sent, max(0, h.start - 25), h.start)]  # "the HR for OS was"
    hits = [h for h in hits if not score_named(sent, h) and not (  # "IgG3 responses": immune, not tumour
        is_response(h.code) and r.immune_response.search(sent, max(0, h.start - 40), h.start))]
    folded = fold_case(sent)
    kept = [m for m in mentions if not m.not_reached and _is_result(sent, folded, m)]
    items: list[Item] = []
    last_endpoint: str | None = None
    pops: tuple[list[tuple[int, str]], list[tuple[int, int, str]]] | None = None
    for m in kept:
        if m.type == "ratio":
            it = _ratio_item(sent, m, hits, ctx)
        elif m.type == "duration":
            it = _median_item(sent, m, mentions, hits, ctx)
        elif m.type == "percent":
            it = _rate_item(sent, m, mentions, hits)
        else:
            it = None
        if it is None or it.endpoint is None:
            continue
        if it.endpoint in SURVIVAL or it.endpoint in RATE_CODES:
            last_endpoint = it.endpoint
        if pops is None:
            pops = _inline_populations(sent)
        inline, owned = pops
        it.population = next((p for a, b, p in owned if a <= m.start < b), None) \
            or _population(sent, m, inline, kept, ctx)  # "9 of the 15 patients with X died": its own
        items.append(it)
    if not items:  # most sentences with numbers (2,484 of 3,866 in 2,000 bench records): no arms needed
        return items
    spans = design.find_arm(sent, fr)
    spans = sorted(spans + [sp for sp in acronym_spans(sent, ctx.acronyms) + label_spans(sent, fr)
                            if not any(a < sp[1] and sp[0] < b for a, b, _ in spans)])
    spans_free = [sp for sp in spans if not any(a <= sp[0] and sp[1] <= b for a, b in ratio_spans)]
    bounds = [m for m in mentions if m.not_reached or m in kept]
    ratios = [it for it in items if it.kind not in ("median", "rate")]
    if len(ratios) >= 2:  # subgroup listings: "history of X (HR 1.95 ...) versus no history of X (0.99 ...)"
        for it in ratios:
            if endpoint_after(sent, it.mention, hits) is not None:
                continue  # "X (HR ..) and Y (HR ..) were associated with Z": risk factors, not subgroups
            label = _subgroup_label(sent, it.mention, hits, spans)
            if label:
                it.population = label
    _endpoint_lists(sent, items, hits, spans_free)
    _landmark_lists(sent, items, arms)
    assign_arms(sent, items, spans_free, fr, bounds)
    listed = [it for it in items if it.listed_population]
    for it in items:  # "5% and 19% among A and B, respectively, as compared with 0% with placebo"
        if not it.listed_population and any(x.endpoint == it.endpoint and x.mention.end < it.mention.start
                                             and x.arm != it.arm for x in listed):
            pops = uniq([x.population for x in listed if x.population])
            it.population, it.extra_populations = pops[0], pops[1:]
    if len(arms) >= 2:  # a rate that no arm claims is pooled over arms: SCHEMA does not annotate it
        items = [it for it in items if it.kind != "rate" or it.arm is not None]
    else:  # an outcome known only from "<name> rates" is a trial outcome when arms compare it
        opened = {f"other:{n}" for _, n in rate_names(sent)}
        items = [it for it in items if it.kind != "rate" or it.endpoint not in opened]
    for it in items:
        if it.kind not in ("median", "rate"):
            it.comparison = comparison(sent, it.mention, spans, fr, items)
    if last_endpoint is not None:
        ctx.endpoint = last_endpoint
    return items


def _endpoint_run(sent: str, hits: list[Hit]) -> list[Hit]:
    """The first run of two or more endpoints joined by "and" or commas ("PFS and OS", "median
    survival and 1-year survival rates")."""
    for i in range(len(hits) - 1):
        run = [hits[i]]
        for h in hits[i + 1:]:
            if not attribution_rules().endpoint_join.fullmatch(sent, run[-1].end, h.start):
                break
            run.append(h)
        if len(run) >= 2:
            return run
    return []


def _value_lists(items: list[Item], spans: list[tuple[int, int, str]]) -> list[tuple[list[Item], list[str]]]:
    """Runs of medians/rates (a ratio after a run joins it), each with the arms named between it
    and the next run: a new run starts at a new mention group, after a ratio or after an arm
    phrase ("7.1 months and 30% for arm A and 8.9 months and 37% for arm B": two runs)."""
    out: list[tuple[list[Item], list[str]]] = []
    for it in items:
        prev = out[-1][0][-1] if out else None
        between = [sp[2] for sp in spans if prev is not None and prev.mention.end <= sp[0] and sp[1] <= it.mention.start]
        if out and between:
            out[-1][1].extend(between)
        if it.kind not in ("median", "rate"):
            if not out:
                return []
            out[-1][0].append(it)
        elif out and not between and prev is not None and prev.kind in ("median", "rate") \
                and prev.mention.group == it.mention.group:
            out[-1][0].append(it)
        else:
            out.append(([it], []))
    if out:
        last = out[-1][0][-1].mention.end
        out[-1][1].extend(sp[2] for sp in spans if sp[0] >= last)
    return out


def _endpoint_lists(sent: str, items: list[Item], hits: list[Hit], spans: list[tuple[int, int, str]]) -> None:
    """k endpoints listed, then their values: "median PFS and OS were 5.1 and 10.2 months"
    (value i is endpoint i); "... were 6.5 and 7.5 months (HR ...) and 22.8 and 24.5 months
    (HR ...), respectively" (list i, with its ratio, is endpoint i); "5.5 and 19.8 months with A
    and 4.1 and 17.5 months with B" (in each arm's list, value i is endpoint i). Not when
    another endpoint is named among the values: then they say whose they are."""
    run = _endpoint_run(sent, hits)
    values = [it for it in items if it.mention.start > run[-1].end] if run else []
    if not values or any(run[-1].end < h.start < values[-1].mention.start for h in hits) \
            or any(it.endpoint != run[-1].code for it in values):
        return
    k = len(run)
    lists = _value_lists(values, spans)
    measures = [[x for x in g if x.kind in ("median", "rate")] for g, _ in lists]
    if len(lists) == k and all(len(ms) >= 2 for ms in measures) and not any(a for _, a in lists[:-1]):
        for (g, _), h in zip(lists, run):
            for it in g:
                it.endpoint = h.code
    elif len(lists) >= 2 and all(len(ms) == k == len(g) and len(a) == 1 for ms, (g, a) in zip(measures, lists)):
        for ms, (_, a) in zip(measures, lists):
            for it, h in zip(ms, run):
                it.endpoint, it.arm = h.code, a[0]
    elif len(lists) == 1 and len(measures[0]) == k == len(lists[0][0]):
        for it, h in zip(measures[0], run):
            it.endpoint = h.code


def _landmark_lists(sent: str, items: list[Item], arms: list[str]) -> None:
    """"1-, 2-, and 3-year survival rates of 38%, 12% and 2% versus 45%, 12% and 6%": time
    points in order, then arms in order when the list holds one run per arm."""
    for tl in attribution_rules().landmark_list.finditer(sent):
        nums = _DIGITS.findall(tl.group("nums"))
        unit = tl.group("unit").lower()
        k = len(nums)
        nxt = sent.find(";", tl.end())
        stop = nxt if nxt >= 0 else len(sent)
        rates = [it for it in items if it.kind == "rate" and tl.end() <= it.mention.start < stop]
        if k < 2 or not rates or len(rates) % k:
            continue
        runs = len(rates) // k
        for i, it in enumerate(rates):
            n = nums[i % k]
            it.timepoint = f"{n} {unit}{'' if n == '1' else 's'}"
            if runs > 1 and runs == len(arms):
                it.arm, it.extra_arms = arms[i // k], []


def _measurement(article: Article, raw: str, s: int, e: int, it: Item, arm: str | None,
                 population: str | None, ctx: Context) -> Measurement | None:
    m = it.mention
    ci_level = m.ci_level
    if ci_level is None and m.ci_low is not None and ctx.ci95:
        ci_level = 95.0
    unit = m.unit if it.kind == "median" else ("%" if it.kind == "rate" else None)
    flags, log_value, se = check(it.kind, m.value, m.ci_low, m.ci_high, ci_level, m.p_value, m.n, m.n_total)
    sec = article.section_at(s)
    return Measurement(
        kind=it.kind, endpoint=it.endpoint or "other:unknown", arm=arm,
        comparison=it.comparison, population=population, value=m.value, unit=unit,
        ci_low=m.ci_low, ci_high=m.ci_high, ci_level=ci_level, p_value=m.p_value,
        timepoint=it.timepoint, n=m.n, n_total=m.n_total, evidence=raw[s:e],
        section=sec.label if sec else None, start=s, end=e,
        log_value=log_value, se=se, flags=list(flags),
    )
