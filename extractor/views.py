"""SQL views behind `table`, `meta` and `export --format meta` (data only, applied by store.ensure_shape).

report.py reads these views, so sqlite3, Datasette or pandas users get the same rows as
the CLI. Both pick one ratio per (trial, population, endpoint[, kind]) the same way:
with a comparison first, then unflagged, then with a CI, then the first written.
"""
from __future__ import annotations

RATIO_KINDS_SQL = "('hazard_ratio', 'odds_ratio', 'risk_ratio')"

# z for the stated CI level; an unusual level gives NULL (no SE rather than a wrong one).
_Z = """CASE WHEN m.ci_level IS NULL OR m.ci_level = 95 THEN 1.959963984540054
         WHEN m.ci_level = 90 THEN 1.6448536269514722
         WHEN m.ci_level = 99 THEN 2.5758293035489004
         WHEN m.ci_level = 80 THEN 1.2815515655446004
         WHEN m.ci_level = 97.5 THEN 2.241402727604947
         WHEN m.ci_level = 98 THEN 2.3263478740408408
         WHEN m.ci_level = 99.9 THEN 3.2905267314918945 END"""

_PICK_ORDER = "(m.comparison IS NULL), (m.flags != '[]'), (m.ci_low IS NULL)"

# One pass over measurements (no join on a derived table: that was quadratic at 20,000
# trials): rank the ratios of each (pmid, population, endpoint), then aggregate the group.
_RATIO_COL = "max(CASE WHEN is_ratio AND pick = 1 THEN {0} END) AS {1}"

EVIDENCE_TABLE = f"""
WITH ranked AS (
    SELECT m.*, (m.kind IN {RATIO_KINDS_SQL}) AS is_ratio, ROW_NUMBER() OVER (
        PARTITION BY m.pmid, COALESCE(m.population, ''), m.endpoint, (m.kind IN {RATIO_KINDS_SQL})
        ORDER BY {_PICK_ORDER},
                 CASE m.kind WHEN 'hazard_ratio' THEN 0 WHEN 'risk_ratio' THEN 1 ELSE 2 END, m.idx
    ) AS pick
    FROM measurements m
),
grp AS (
    SELECT m.pmid, m.population, m.endpoint, min(m.idx) AS first_idx,
           group_concat(DISTINCT m.kind) AS kinds,
           group_concat(CASE WHEN m.kind = 'median' THEN COALESCE(m.arm, 'all') || ': '
                        || printf('%g', m.value) || COALESCE(' ' || m.unit, '') END, '; ') AS medians,
           group_concat(CASE WHEN m.kind = 'rate' THEN COALESCE(m.arm, 'all') || ': '
                        || printf('%g', m.value) || COALESCE(m.unit, '')
                        || COALESCE(' at ' || m.timepoint, '') END, '; ') AS rates,
           {_RATIO_COL.format("m.kind", "ratio_kind")}, {_RATIO_COL.format("m.value", "ratio")},
           {_RATIO_COL.format("m.ci_low", "ci_low")}, {_RATIO_COL.format("m.ci_high", "ci_high")},
           {_RATIO_COL.format("m.ci_level", "ci_level")}, {_RATIO_COL.format("m.p_value", "p_value")},
           {_RATIO_COL.format("m.comparison", "comparison")}, {_RATIO_COL.format("m.evidence", "ratio_evidence")},
           max(m.flags != '[]') AS flagged,
           json_group_array(json_object(
               'idx', m.idx, 'kind', m.kind, 'arm', m.arm, 'comparison', json(m.comparison),
               'value', m.value, 'unit', m.unit, 'ci_low', m.ci_low, 'ci_high', m.ci_high,
               'p_value', m.p_value, 'timepoint', m.timepoint, 'evidence', m.evidence,
               'start', m.start, 'end', m."end", 'flags', json(m.flags))) AS cells
    FROM (SELECT * FROM ranked ORDER BY pmid, COALESCE(population, ''), endpoint, idx) m
    GROUP BY m.pmid, COALESCE(m.population, ''), m.endpoint
)
SELECT g.pmid, a.title, a.journal, a.year,
       COALESCE(NULLIF(t.registration, '[]'), a.registry_ids) AS registration,
       COALESCE(t.arms, '[]') AS arms, g.population, g.endpoint, g.kinds, g.medians,
       g.ratio_kind, g.ratio, g.ci_low, g.ci_high, g.ci_level, g.p_value,
       g.comparison, g.ratio_evidence, g.rates, g.flagged, g.cells
FROM grp g
JOIN articles a ON a.pmid = g.pmid
LEFT JOIN trials t ON t.pmid = g.pmid
ORDER BY a.year, g.pmid, g.first_idx
"""

META_INPUT = f"""
WITH r AS (
    SELECT m.pmid, m.idx, m.kind, m.endpoint, m.population, m.comparison, m.value,
           m.ci_low, m.ci_high, m.ci_level, m.p_value, m.evidence, m.flags,
           COALESCE(m.log_value, CASE WHEN m.value > 0 THEN ln(m.value) END) AS yi,
           COALESCE(m.se, CASE WHEN m.ci_low > 0 AND m.ci_high > m.ci_low
                          THEN (ln(m.ci_high) - ln(m.ci_low)) / (2 * {_Z}) END) AS sei,
           ROW_NUMBER() OVER (
               PARTITION BY m.pmid, COALESCE(m.population, ''), m.endpoint, m.kind
               ORDER BY {_PICK_ORDER}, m.idx
           ) AS pick
    FROM measurements m WHERE m.kind IN {RATIO_KINDS_SQL}
)
SELECT r.pmid, a.title, a.journal, a.year,
       COALESCE(NULLIF(t.registration, '[]'), a.registry_ids) AS registration,
       r.kind, r.endpoint, r.population, r.comparison, r.value, r.ci_low, r.ci_high,
       r.ci_level, r.p_value, r.yi, r.sei, r.sei * r.sei AS vi, r.flags,
       (r.flags != '[]') AS flagged, r.evidence, r.idx
FROM r
JOIN articles a ON a.pmid = r.pmid
LEFT JOIN trials t ON t.pmid = r.pmid
WHERE r.pick = 1
ORDER BY a.year, r.pmid, r.idx
"""

REPORT_VIEWS: dict[str, str] = {"evidence_table": EVIDENCE_TABLE, "meta_input": META_INPUT}
