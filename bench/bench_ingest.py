"""`make bench`: how far bulk ingest is from the speed of just reading the XML.

Builds a baseline-sized file (default 30,000 records) by replicating the records of
../shared/corpus/real.xml.gz with fresh PMIDs (number-rich trial abstracts: a worst
case, where every record is extracted), in a temporary folder that is deleted after.
Then, in one run, times
  (a) the reference: a bare lxml iterparse over the same .xml.gz reading each record's
      PMID and abstract text;
  (b) `extractor ingest --jobs 1` and (c) `ingest --jobs 2`, each into a fresh database;
and prints wall-clock seconds, records/s, the ratio to (a) and the peak RSS (VmHWM) of
every process of the run. `--profile N` adds a cProfile of the in-process ingest path
over N records (top functions by cumulative time).

`--against DIR` times every ingest case a second time with the code of another checkout
(say `git worktree add /tmp/before main`), alternating the two, and `--rounds N` repeats
every case N times (medians shown): a before/after comparison from one run, on one set
of input files, that the machine's drift affects alike. `--jobs ''` leaves out the cases
that extract every record.

    python bench/bench_ingest.py --shared ../shared [--records 30000] [--jobs 1,2] [--profile 1000]
                                 [--against DIR] [--rounds N]
"""
from __future__ import annotations

import argparse
import copy
import cProfile
import gzip
import io
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
FIRST_PMID = 900_000_000  # far above real PMIDs


# --- the input ----------------------------------------------------------------------------

def _mask_randomization(rec: etree._Element) -> None:
    """Make a copy look like a non-trial to the --rct-only gate: no RCT publication type,
    no randomization words (a stand-in for the 98% of baseline records that are not RCTs)."""
    for pt in list(rec.iterfind("MedlineCitation/Article/PublicationTypeList/PublicationType")):
        if pt.get("UI") == "D016449":
            pt.getparent().remove(pt)
    for el in rec.iter("ArticleTitle", "AbstractText"):
        for node in (el, *el.iterdescendants()):
            for attr in ("text", "tail"):
                v = getattr(node, attr)
                if v and "andom" in v:
                    setattr(node, attr, v.replace("andom", "ndmor"))


def build(real: Path, out: Path, n: int, rct_share: float = 1.0, first_pmid: int = FIRST_PMID) -> int:
    """Write n records (real.xml.gz's, replicated with fresh PMIDs) to out (.xml.gz); with
    rct_share < 1, every other copy but that share is masked as a non-trial."""
    raw = gzip.decompress(real.read_bytes())
    root = etree.fromstring(raw)
    header = raw[: raw.index(b"<PubmedArticleSet")]
    records = [r for r in root if r.tag == "PubmedArticle"]
    with gzip.open(out, "wb", compresslevel=6) as f:
        f.write(header + b"<PubmedArticleSet>\n")
        for i in range(n):
            rec = copy.deepcopy(records[i % len(records)])
            pmid = str(first_pmid + i)
            rec.find("MedlineCitation/PMID").text = pmid
            for a in rec.iterfind("PubmedData/ArticleIdList/ArticleId"):
                if a.get("IdType") == "pubmed":
                    a.text = pmid
            if int((i + 1) * rct_share) == int(i * rct_share):
                _mask_randomization(rec)
            f.write(etree.tostring(rec) + b"\n")
        f.write(b"</PubmedArticleSet>\n")
    return len(records)


def reference(path: Path) -> int:
    """(a) a bare streaming pass: each record's PMID and abstract text, then free it."""
    n = 0
    with gzip.open(path, "rb") as f:
        for _event, rec in etree.iterparse(f, tag="PubmedArticle", resolve_entities=False, no_network=True):
            rec.findtext("MedlineCitation/PMID")
            "".join("".join(t.itertext()) for t in rec.iterfind("MedlineCitation/Article/Abstract/AbstractText"))
            n += 1
            rec.clear()
            while rec.getprevious() is not None:
                del rec.getparent()[0]
    return n


# --- running and measuring ----------------------------------------------------------------

def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return out


def _hwm_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run(cmd: list[str], cwd: Path = ROOT) -> tuple[float, float, dict[int, int], str]:
    """Wall seconds, CPU seconds (user + sys of the whole process tree), peak RSS (kB)
    per process of the tree, stdout. CPU seconds do not depend on what else the machine
    is running; wall seconds do. `python -m extractor` runs the code of `cwd`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        for p in _tree(proc.pid):
            kb = _hwm_kb(p)
            if kb:
                peaks[p] = max(peaks.get(p, 0), kb)
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out}")
    return seconds, cpu, peaks, out.strip()


def profile(path: Path, n: int, tmp: Path) -> str:
    """cProfile of the in-process ingest path (jobs=1) over the first n records."""
    from extractor import store
    from extractor.parallel import ingest_paths

    part = tmp / "profile.xml"
    with gzip.open(path, "rb") as f:
        root = etree.Element("PubmedArticleSet")
        for i, (_e, rec) in enumerate(etree.iterparse(f, tag="PubmedArticle")):
            if i >= n:
                break
            root.append(copy.deepcopy(rec))
    part.write_bytes(etree.tostring(root))
    db = store.open_db(tmp / "profile.db")
    prof = cProfile.Profile()
    prof.enable()
    ingest_paths(db, [part], jobs=1)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
    return buf.getvalue()


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the ../shared folder")
    ap.add_argument("--records", type=int, default=30_000)
    ap.add_argument("--jobs", default="1,2", help="comma-separated --jobs values to time")
    ap.add_argument("--rct-share", type=float, default=0.02, metavar="F",
                    help="also time `ingest --jobs 2 --rct-only` on a file where only this share of the "
                         "records are trials (the baseline has about 2%%); 0 skips it")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="also cProfile N records in-process")
    ap.add_argument("--against", metavar="DIR", help="also time every ingest case with the code of this "
                                                     "checkout, alternating with this one")
    ap.add_argument("--rounds", type=int, default=1, metavar="N", help="time every case N times (medians)")
    ap.add_argument("--reference-only", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_only:
        t0 = time.perf_counter()
        n = reference(Path(args.reference_only))
        print(f"{n} records in {time.perf_counter() - t0:.2f} s")
        return
    real = Path(args.shared) / "corpus" / "real.xml.gz"
    if not real.is_file():
        raise SystemExit(f"{real}: not found (pass --shared)")
    codes = [("", ROOT)]
    if args.against:
        other = Path(args.against).resolve()
        if not (other / "extractor" / "__main__.py").is_file():
            raise SystemExit(f"{other}: not a checkout of this project (no extractor/__main__.py)")
        codes.append(("[against] ", other))
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        data = tmp / "bench.xml.gz"
        t0 = time.perf_counter()
        distinct = min(build(real, data, args.records), args.records)
        print(f"input: {args.records:,} records ({distinct:,} distinct abstracts, fresh PMIDs), "
              f"{data.stat().st_size / 1e6:.1f} MB gzipped, built in {time.perf_counter() - t0:.1f} s")
        mixed = [tmp / "mixed1.xml.gz", tmp / "mixed2.xml.gz"]
        cases: list[tuple[str, list[Path], list[str]]] = [
            (f"ingest --jobs {j}", [data], ["--jobs", str(j)]) for j in [int(x) for x in args.jobs.split(",") if x]]
        if args.rct_share > 0:
            for k, m in enumerate(mixed):
                build(real, m, args.records, args.rct_share, first_pmid=FIRST_PMID + (k + 1) * 10_000_000)
            share = f"{args.rct_share:.0%} trials"
            cases += [(f"ingest --jobs 1 --rct-only, {share}, 1 file", mixed[:1], ["--jobs", "1", "--rct-only"]),
                      (f"ingest --jobs 2 --rct-only, {share}, 1 file", mixed[:1], ["--jobs", "2", "--rct-only"]),
                      (f"ingest --jobs 2 --rct-only, {share}, 2 files", mixed, ["--jobs", "2", "--rct-only"])]
        py = sys.executable
        load0 = _load()
        timings: dict[str, list[tuple[float, float, dict[int, int], str]]] = {}
        order = ["(a) reference: lxml iterparse, PMID + abstract"]
        for _round in range(args.rounds):
            timings.setdefault(order[0], []).append(run([py, __file__, "--reference-only", str(data)]))
            for label, files, opts in cases:
                for tag, code in codes:
                    db = tmp / "case.db"
                    key = tag + label
                    if key not in order:
                        order.append(key)
                    timings.setdefault(key, []).append(
                        run([py, "-m", "extractor", "ingest", *opts, "--db", str(db), *map(str, files)], cwd=code))
                    for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                        f.unlink(missing_ok=True)
        n_of = {tag + label: args.records * len(files) for label, files, _o in cases for tag, _c in codes}
        rows = []
        for key in order:
            runs = timings[key]
            peaks: dict[int, int] = {}
            for _s, _c, p, _o in runs:  # peak per process position (main first), over the rounds
                for i, kb in enumerate(kb for _pid, kb in sorted(p.items())):
                    peaks[i] = max(peaks.get(i, 0), kb)
            out = runs[-1][3]
            rows.append((key, n_of.get(key, args.records), _median([r[0] for r in runs]),
                         _median([r[1] for r in runs]), peaks, out.splitlines()[-1] if out else ""))
        ref = rows[0]
        print(f"load average before/after: {load0} / {_load()}")
        if args.rounds > 1:
            print(f"medians of {args.rounds} rounds")
        print(f"\n{'case':59} {'records':>8} {'wall s':>8} {'rec/s':>8} {'x ref':>7} {'cpu s':>8} {'x ref':>7}  "
              "peak RSS MB per process")
        for label, n, s, cpu, peaks, _out in rows:
            rss = ", ".join(f"{kb / 1024:.0f}" for _i, kb in sorted(peaks.items()))
            scale = n / args.records
            print(f"{label:59} {n:8} {s:8.1f} {n / s:8.0f} {s / (ref[2] * scale):7.1f} {cpu:8.1f} "
                  f"{cpu / (ref[3] * scale):7.1f}  {rss}")
        print()
        for label, *_rest, out in rows:
            print(f"{label}: {out}")
        full = 1274 * 30_000
        for label, n, s, cpu, _p, _out in rows[1:]:
            print(f"extrapolated to 1,274 x 30,000 records, {label}: "
                  f"{full / (n / s) / 3600:,.1f} h at this wall rate, {full * cpu / n / 3600:,.1f} CPU-hours")
        if args.profile:
            print(f"\ncProfile, in-process ingest of {args.profile} records (cumulative):")
            print(profile(data, args.profile, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
