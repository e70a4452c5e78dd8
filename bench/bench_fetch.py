"""Fetch benchmark: 5,000 PMIDs from the E-utilities stand-in while it enforces 10 requests/s.

Runs the whole `fetch --no-extract` flow (efetch POSTs of 200, a full parse of each
answer, articles and raw records saved to a SQLite file) and prints two times as ratios
to the ideal, requests / 10 s: the fetch ratio (until the last answer arrived; target
<= 1.15), which measures pacing, and the end-to-end ratio (until everything is parsed
and stored), which also counts this machine's CPU. It checks the stand-in never had to
answer 429. The stand-in runs in its own process, as NCBI would, so its work and its
clock do not share our interpreter. `--extract` also runs extraction inline (the default
CLI path), whose end-to-end time is then bounded by extraction, not by NCBI's rate.

    python bench/bench_fetch.py [--n 5000] [--extract]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from eutils_server import EutilsServer, make_records  # noqa: E402

from extractor.acquire import IngestStore, acquire  # noqa: E402
from extractor.fetch import EutilsClient  # noqa: E402
from extractor.store import open_db  # noqa: E402

RATE = 10.0


def serve(n: int, conn) -> None:
    """Child process: run the stand-in until told to stop, then report what it saw."""
    with EutilsServer(make_records(n), rate_with_key=RATE) as server:
        conn.send(server.url)
        conn.recv()
        conn.send((len(server.calls()), server.rate_limited, server.max_in_window()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="PMIDs to fetch")
    ap.add_argument("--extract", action="store_true", help="extract measurements inline too")
    args = ap.parse_args()
    pmids = list(make_records(args.n))
    store = IngestStore(extract=args.extract)  # build the extractor before the clock starts
    ours, theirs = mp.Pipe()
    child = mp.get_context("fork").Process(target=serve, args=(args.n, theirs), daemon=True)
    child.start()
    url = ours.recv()
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        client = EutilsClient(api_key="bench-key", email="bench@example.org", base_url=url)
        t0 = time.perf_counter()
        summary = acquire(db, client, pmids, store=store)
        elapsed = time.perf_counter() - t0
        stored = db.conn.execute("SELECT count(*) FROM raw_records").fetchone()[0]
        db.conn.close()
    ours.send("stop")
    n_requests, limited, peak = ours.recv()
    child.join(5)
    ideal = n_requests / RATE
    ratio = summary.download_seconds / ideal
    print(f"fetched {summary.fetched:,} of {args.n:,} PMIDs in {n_requests} requests: last answer after "
          f"{summary.download_seconds:.2f} s; all {stored:,} records parsed and stored"
          f"{' with extraction' if args.extract else ''} after {elapsed:.2f} s")
    print(f"ideal at {RATE:g} requests/s: {ideal:.2f} s; fetch ratio {ratio:.3f} (target <= 1.15); "
          f"end-to-end ratio {elapsed / ideal:.3f}")
    print(f"stand-in: 429 answers {limited}, most requests in any 1 s: {peak}")
    ok = stored == args.n and limited == 0 and ratio <= 1.15
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
