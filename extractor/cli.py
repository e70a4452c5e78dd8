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

# --- fetch / search (NCBI E-utilities) -----------------------------------------------

# --- table / meta (reports) ----------------------------------------------------------
