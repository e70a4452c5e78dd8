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


def _ingest_with_bar(db, files, *, extract: bool):
    """ingest_files with a byte-based progress bar on stderr."""
    import os
    import sys

    from .ingest import ingest_files

    total = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
    with click.progressbar(length=total, label="ingesting", file=sys.stderr) as bar:
        return ingest_files(db, files, extract=extract, progress=bar.update)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--no-extract", is_flag=True, help="Store articles and raw XML only; extract later.")
@db_option
def ingest(files, no_extract, db_path):
    """Read PubMed XML files (efetch responses, baseline/update .xml or .xml.gz) into the database.

    A bad file gets a one-line error and the others are still ingested; the exit status
    is then 1. Ingesting the same file again changes nothing.
    """
    import sys

    db = _open_db(db_path)
    summary = _ingest_with_bar(db, files, extract=not no_extract)
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

# --- table / meta (reports) ----------------------------------------------------------
