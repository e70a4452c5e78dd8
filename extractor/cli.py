"""Thin click commands over the library: open the database, call one function, report.

Library errors (ExtractorError) become one-line click errors here, never tracebacks.
"""
from __future__ import annotations

import click

from . import __version__
from .store import DEFAULT_DB

db_option = click.option(
    "--db", "db_path", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
    help="SQLite database file.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pubmed-evidence")
def main() -> None:
    """Extract clinical-trial results from PubMed abstracts into SQLite."""


# --- ingest / export / query / demo (foundation) -------------------------------------

def _open_db(db_path: str, *, must_exist: bool = False):
    """The database, or a one-line error (missing file for read commands, not a database)."""
    import sqlite3
    from pathlib import Path

    from .store import open_db

    if must_exist and db_path != ":memory:" and not Path(db_path).is_file():
        raise click.ClickException(f"{db_path}: no such database (run `ingest` or `fetch` first, or pass --db)")
    try:
        return open_db(db_path)
    except sqlite3.Error as e:
        raise click.ClickException(f"{db_path}: cannot open database: {e}") from None


def _rows_text(cols: list[str], rows: list[tuple], width: int = 60) -> str:
    """A plain aligned text table; cells cut to `width` characters."""
    def cell(v: object) -> str:
        s = "" if v is None else " ".join(str(v).split())
        return s if len(s) <= width else s[: width - 1] + "\u2026"

    body = [[cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in body]
    return "\n".join(lines)


def _ingest_with_bar(db, files, *, extract: bool, bulk: dict | None = None):
    """ingest_files (or, with `bulk` options, parallel.ingest_paths) with a byte-based
    progress bar on stderr."""
    import os
    import sys

    from .ingest import ingest_files

    import sqlite3

    total = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
    try:
        with click.progressbar(length=total, label="ingesting", file=sys.stderr) as bar:
            if bulk is not None:
                from .parallel import ingest_paths

                return ingest_paths(db, files, extract=extract, progress=bar.update, **bulk)
            return ingest_files(db, files, extract=extract, progress=bar.update)
    except sqlite3.Error as e:  # locked past the timeout, disk full, ...: nothing of the batch was written
        raise click.ClickException(f"database error: {e} (the last batch was rolled back)") from None


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--no-extract", is_flag=True, help="Store articles and raw XML only; extract later.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes for extraction (one writer stores); use the number of cores.")
@click.option("--rct-only", is_flag=True,
              help="Extract and store only randomized trials (publication type or randomization "
                   "language); other records are skipped, not stored.")
@click.option("--force", is_flag=True, help="Ingest again files the ingest log marks as finished.")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, hidden=True)
@db_option
def ingest(files, no_extract, jobs, rct_only, force, batch_size, db_path):
    """Read PubMed XML files (efetch responses, baseline/update .xml or .xml.gz) into the database.

    Files are applied in the order given (update files after the baseline, in order:
    revised records replace, DeleteCitation deletes). A file finished before is skipped,
    so a killed run is resumed by running it again. A bad file gets a one-line error and
    the others are still ingested; the exit status is then 1.
    """
    import sys

    from .errors import ExtractorError

    db = _open_db(db_path)
    try:
        summary = _ingest_with_bar(db, files, extract=not no_extract,
                                   bulk=dict(jobs=jobs, rct_only=rct_only, force=force, batch_size=batch_size))
    except ExtractorError as e:
        raise click.ClickException(str(e)) from None
    for err in summary.errors:
        click.echo(f"Error: {err}", err=True)
    click.echo(summary.line())
    if summary.errors:
        sys.exit(1)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "meta"]), default="jsonl",
              show_default=True,
              help="jsonl: trial line + measurements per article (score.py input); csv: measurements; "
                   "meta: one row per ratio ready for meta-analysis.")
@click.option("-o", "--output", type=click.File("w"), default="-", show_default=True, help="Output file.")
@db_option
def export(fmt, output, db_path):
    """Write the stored measurements (SCHEMA.md field names plus pmid) to stdout or a file."""
    from . import export as exp
    from .errors import ExtractorError

    db = _open_db(db_path, must_exist=True)
    try:
        if fmt == "jsonl":
            exp.write_jsonl(db, output)
        elif fmt == "csv":
            exp.write_csv(db, output)
        else:
            from .report import write_meta_csv

            write_meta_csv(db, output)
    except ExtractorError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row instead of a table.")
@db_option
def query(sql, as_json, db_path):
    """Run one read-only SQL statement (tables, the evidence view, articles_fts); writes are refused.

    Example: query "SELECT kind, count(*) FROM measurements GROUP BY kind"
    """
    import json

    from .errors import StoreError
    from .store import query as run_query

    db = _open_db(db_path, must_exist=True)
    try:
        cols, rows = run_query(db, sql)
    except StoreError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        for r in rows:
            click.echo(json.dumps(dict(zip(cols, r)), ensure_ascii=False))
    elif cols:
        click.echo(_rows_text(cols, rows))
        click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


@main.command()
@click.argument("pmids", nargs=-1)
@db_option
def reextract(pmids, db_path):
    """Run extraction again on the stored raw XML (all records, or the PMIDs given): no refetch.

    Use it after `ingest --no-extract` or `fetch --no-extract`, or after the extractor
    changed: each article's measurements are replaced in one transaction.
    """
    import sys

    from .errors import ExtractorError
    from .ingest import reextract as run_reextract

    db = _open_db(db_path, must_exist=True)
    total = len(pmids) or db.conn.execute("SELECT count(*) FROM raw_records").fetchone()[0]
    try:
        with click.progressbar(length=total, label="re-extracting", file=sys.stderr) as bar:
            s = run_reextract(db, list(pmids) or None, progress=bar.update)
    except ExtractorError as e:
        raise click.ClickException(str(e)) from None
    for err in s.errors:
        click.echo(f"Error: {err}", err=True)
    reasons = ", ".join(f"{r}: {n}" for r, n in sorted(s.skipped.items()))
    click.echo(f"{s.articles} article(s) re-extracted, {s.measurements} measurements"
               + (f", skipped: {reasons}" if reasons else "") + f" in {s.seconds:.1f} s")
    if s.errors:
        sys.exit(1)


DEMO_SQL = """
SELECT pmid, kind, endpoint,
       coalesce(arm, (SELECT group_concat(value, ' vs ') FROM json_each(comparison))) AS "group",
       value, unit, ci_low, ci_high, p_value
FROM evidence ORDER BY pmid, start, kind
"""


@main.command()
@click.option("--db", "db_path", default=None, type=click.Path(dir_okay=False),
              help="Keep the demo database here (default: a temporary file, removed afterwards).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the demo's report files (forest plot).")
def demo(db_path, out_dir):
    """Ingest the bundled fixtures into a temporary database and print what was extracted."""
    import tempfile
    from pathlib import Path

    from .errors import ExtractorError
    from .ingest import bundled_fixtures
    from .store import query as run_query

    files = [str(p) for p in bundled_fixtures()]
    if not files:
        raise click.ClickException("the bundled fixtures/ folder is missing (demo runs from a source checkout)")
    with tempfile.TemporaryDirectory() as tmp:
        db = _open_db(db_path or str(Path(tmp) / "demo.db"))
        summary = _ingest_with_bar(db, files, extract=True)
        click.echo(summary.line())
        try:
            cols, rows = run_query(db, DEMO_SQL)
            click.echo("\nExtracted measurements (evidence view):")
            click.echo(_rows_text(cols, rows))
            try:
                from .report import demo_summary
            except ImportError:
                demo_summary = None
            if demo_summary is not None:
                click.echo("")
                click.echo(demo_summary(db, out_dir))
        except ExtractorError as e:
            raise click.ClickException(str(e)) from None
        db.conn.close()

# --- fetch / search (NCBI E-utilities) -----------------------------------------------

def _ncbi_options(f):
    """Options shared by fetch and search: who we are to NCBI, where to send requests."""
    opts = [
        click.option("--api-key", envvar="NCBI_API_KEY", default=None,
                     help="NCBI API key (env NCBI_API_KEY): 10 requests/s instead of 3."),
        click.option("--email", envvar="NCBI_EMAIL", default=None,
                     help="Your e-mail, sent to NCBI with every request (env NCBI_EMAIL)."),
        click.option("--base-url", default=None, metavar="URL",
                     help="Send every request here instead of NCBI (a mirror or a test server)."),
        click.option("--refresh", is_flag=True, help="Fetch again ids whose records are already stored."),
        click.option("--no-extract", is_flag=True,
                     help="Store records without extracting measurements (run re-extraction later)."),
        click.option("--rate", type=float, default=None, hidden=True),
        click.option("--retries", type=int, default=6, hidden=True),
        click.option("--backoff", type=float, default=1.0, hidden=True),
        click.option("--timeout", type=float, default=60.0, hidden=True),
        db_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _client(api_key, email, base_url, rate, retries, backoff, timeout):
    from .fetch import EutilsClient

    if base_url is None and not email:
        click.echo("note: NCBI asks for an e-mail with every request: set NCBI_EMAIL or --email "
                   "(and NCBI_API_KEY for 10 requests/s instead of 3)", err=True)
    return EutilsClient(api_key=api_key, email=email, base_url=base_url, rate=rate, retries=retries,
                        backoff=backoff, timeout=timeout)


def _run_acquire(db_path: str, no_extract: bool, run) -> None:
    """Open the database, run with a progress bar on stderr, print the summary; failures exit 1."""
    import sys

    from .acquire import IngestStore
    from .errors import ExtractorError
    from .store import open_db

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="fetching", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        db = open_db(db_path)
        summary = run(db, progress, IngestStore(extract=not no_extract))
    except ExtractorError as e:
        raise click.ClickException(str(e)) from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for line in summary.lines():
        click.echo(line)
    if summary.failed:
        sys.exit(1)


@main.command()
@click.argument("ids", nargs=-1)
@click.option("--from-file", "from_file", type=click.File("r"), default=None,
              help="Read ids from FILE (spaces, commas or lines between them; '#' starts a "
                   "comment); '-' is stdin.")
@click.option("--batch-size", type=click.IntRange(1, 200), default=200, show_default=True,
              help="PMIDs per efetch request.")
@_ncbi_options
def fetch(ids, from_file, batch_size, api_key, email, base_url, refresh, no_extract, rate, retries, backoff,
          timeout, db_path):
    """Fetch PubMed records by PMID, DOI (10.xxx/...) or PMCID, mixed; '-' reads ids from stdin.

    Records already in the database are skipped (unless --refresh), so an interrupted
    run can simply be started again. The summary names every id that could not be got.
    """
    import sys

    from .acquire import acquire, split_ids

    items = [t for i in ids if i != "-" for t in split_ids(i)]
    streams = ([from_file] if from_file else []) + ([sys.stdin] if "-" in ids else [])
    for stream in streams:
        for line in stream:
            items += split_ids(line)
    if not items:
        raise click.UsageError("give PMIDs, DOIs or PMCIDs as arguments, --from-file FILE, or - for stdin")
    client = _client(api_key, email, base_url, rate, retries, backoff, timeout)
    _run_acquire(db_path, no_extract, lambda db, progress, store: acquire(
        db, client, items, refresh=refresh, batch_size=batch_size, progress=progress, store=store))
    sys.stdout.flush()


@main.command()
@click.argument("query")
@click.option("--max", "max_ids", type=click.IntRange(min=1), default=None,
              help="Fetch at most N records (default: all).")
@_ncbi_options
def search(query, max_ids, api_key, email, base_url, refresh, no_extract, rate, retries, backoff, timeout,
           db_path):
    """Fetch every PubMed record matching QUERY (PubMed search syntax).

    Above esearch's 10,000-id limit the query is split by publication date, and the
    summary says so.
    """
    from .acquire import acquire_search

    client = _client(api_key, email, base_url, rate, retries, backoff, timeout)
    _run_acquire(db_path, no_extract, lambda db, progress, store: acquire_search(
        db, client, query, max_ids=max_ids, refresh=refresh, progress=progress, store=store))


# --- table / meta (reports) ----------------------------------------------------------

def _report_filters(f):
    """Options shared by table and meta: which trials and records a report covers."""
    opts = [
        click.option("--endpoint", default=None, help="Endpoint code, e.g. PFS, OS, ORR, other:mace."),
        click.option("--kind", default=None, help="Measurement kind: HR, OR, RR, median or rate."),
        click.option("--pmid", "pmids", multiple=True, help="Only this PMID (repeatable)."),
        click.option("--search", default=None,
                     help="Full-text search over title and abstract (SQLite FTS5 syntax), e.g. 'nivolumab AND melanoma'."),
        click.option("--where", default=None,
                     help="SQL condition on the view's columns, e.g. \"year >= 2015\" (see README: SQL views)."),
        db_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@main.command()
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "json", "html"]), default="markdown",
              show_default=True, help="markdown fits a terminal; html is one sortable page with evidence on hover.")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", show_default=True,
              help="Output file.")
@_report_filters
def table(fmt, output, endpoint, kind, pmids, search, where, db_path):
    """Evidence table: one row per (trial, population, endpoint) with medians, the ratio and its CI, rates."""
    import shutil

    from .errors import ExtractorError
    from .report import Filters, evidence_rows, render_table

    db = _open_db(db_path, must_exist=True)
    try:
        rows = evidence_rows(db, Filters(endpoint=endpoint, kind=kind, pmids=tuple(pmids), search=search,
                                         where=where))
        width = shutil.get_terminal_size().columns if output.isatty() else None
        output.write(render_table(rows, fmt, width=width))
    except ExtractorError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.option("--by", "by", type=click.Choice(["population"]), default=None,
              help="One pooled result per population (cohort/subgroup) instead of one overall.")
@click.option("--method", type=click.Choice(["dl", "reml", "pm"]), default="dl", show_default=True,
              help="Random-effects tau² estimator: DerSimonian-Laird, REML or Paule-Mandel.")
@click.option("--include-flagged", is_flag=True, help="Also pool records whose consistency flags failed.")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False),
              help="Write a forest plot (.png, .svg or .pdf); with --by population, one file per population.")
@_report_filters
def meta(by, method, include_flagged, plot_path, endpoint, kind, pmids, search, where, db_path):
    """Pool one ratio (HR, OR or RR) for an endpoint across trials: fixed and random effects, Q, I², tau².

    Example: meta --endpoint PFS --method reml --plot forest.png
    """
    from .errors import ExtractorError
    from .report import Filters, run_meta, render_meta, write_forest_plots

    if not endpoint:
        raise click.UsageError("meta needs --endpoint, e.g. --endpoint PFS")
    db = _open_db(db_path, must_exist=True)
    try:
        report = run_meta(db, endpoint, Filters(kind=kind, pmids=tuple(pmids), search=search, where=where),
                          by_population=by == "population", method=method, include_flagged=include_flagged)
        click.echo(render_meta(report), nl=False)
        if plot_path:
            for path in write_forest_plots(report, plot_path):
                click.echo(f"Forest plot: {path}")
    except ExtractorError as e:
        raise click.ClickException(str(e)) from None
