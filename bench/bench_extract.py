"""Extraction speed, and a guard that a speed-up changed no output.

Times extract() alone (CPU seconds of this process, one core: time.process_time) over every
record of ../shared/corpus/real.xml.gz (and dev.xml), parsing excluded, after one warm-up call
(rules loaded, spaCy built). `--dump F` writes one JSON line per record (pmid, trial, measurements);
`--check F` compares against such a file written before a change and lists the PMIDs that differ,
so a performance edit can be shown to leave every record byte-identical.

    python bench/bench_extract.py --shared ../shared [--limit N] [--dump F | --check F] [--profile N]
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

from extractor.extract import extract
from extractor.models import Article
from extractor.parse import ParsedArticle, iter_records


def load(shared: Path, limit: int | None) -> list[Article]:
    """The articles of real.xml.gz then dev.xml (whichever exist), parsed once up front."""
    out: list[Article] = []
    for src in (shared / "corpus" / "real.xml.gz", shared / "corpus" / "dev.xml"):
        if src.exists():
            out += [r.article for r in iter_records(src) if isinstance(r, ParsedArticle)]
    return out[:limit] if limit else out


def lines(articles: list[Article]) -> tuple[list[str], float]:
    """One canonical JSON line per article, and the CPU seconds extract() took for all of them."""
    extract(articles[0])  # warm-up: rule files, compiled patterns, the spaCy pipeline
    t0 = time.process_time()
    results = [extract(a) for a in articles]
    cpu = time.process_time() - t0
    return [json.dumps([a.pmid, t.model_dump(mode="json"), [m.model_dump(mode="json") for m in ms]],
                       sort_keys=True) for a, (t, ms) in zip(articles, results)], cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--dump", type=Path, help="write the output as JSON lines")
    ap.add_argument("--check", type=Path, help="compare the output with a --dump file")
    ap.add_argument("--profile", type=int, metavar="N", help="cProfile extract() over N records instead")
    a = ap.parse_args()
    articles = load(a.shared, a.limit)
    if not articles:
        print(f"no corpus under {a.shared}/corpus", file=sys.stderr)
        return 2
    if a.profile:
        extract(articles[0])
        prof = cProfile.Profile()
        prof.runcall(lambda: [extract(x) for x in articles[:a.profile]])
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return 0
    out, cpu = lines(articles)
    chars = sum(len(x.abstract) for x in articles)
    print(f"{len(articles)} abstracts, {chars / 1e6:.1f} M chars: {cpu:.2f} s CPU, "
          f"{len(articles) / cpu:.0f} abstracts/s, {cpu / len(articles) * 1000:.2f} ms each")
    if a.dump:
        a.dump.write_text("\n".join(out) + "\n", encoding="utf-8")
    if a.check:
        want = a.check.read_text(encoding="utf-8").splitlines()
        differ = [json.loads(x)[0] for x, y in zip(out, want) if x != y]
        if len(want) != len(out) or differ:
            print(f"DIFFERENT: {len(differ)} of {len(out)} records (lines {len(out)} vs {len(want)}): "
                  f"{', '.join(differ[:10])}", file=sys.stderr)
            return 1
        print(f"identical to {a.check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
