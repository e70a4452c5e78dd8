"""Measure the extractor: accuracy on the gold dev corpus, robustness and speed on real abstracts.

`python -m extractor.evaluate ../shared/corpus` runs the production path (ingest dev.xml
into a fresh database, export JSONL) and scores the export with the corpus's own score.py,
so the figure is what a user of `ingest` + `export` gets. `--real FILE` extracts every
abstract of a PubMed XML(.gz) file on one core and checks each record: valid model,
evidence found at its span. Both print one-line errors for bad input, never a traceback.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from .errors import ExtractorError
from .models import Measurement

__all__ = ["score_dev", "check_real", "RealReport"]


def score_dev(corpus: Path, *, errors: bool = False, as_json: bool = False) -> str:
    """Ingest corpus/dev.xml, export, and return score.py's report on corpus/dev.jsonl."""
    from . import export, ingest, store

    xml, gold, scorer = corpus / "dev.xml", corpus / "dev.jsonl", corpus / "score.py"
    for p in (xml, gold, scorer):
        if not p.is_file():
            raise ExtractorError(f"{p}: not found (pass the directory holding dev.xml, dev.jsonl, score.py)")
    with tempfile.TemporaryDirectory() as tmp:
        db = store.open_db(Path(tmp) / "dev.db")
        summary = ingest.ingest_files(db, [xml])
        if summary.errors:
            raise ExtractorError(f"{xml}: {summary.errors[0]}")
        pred = Path(tmp) / "pred.jsonl"
        with pred.open("w", encoding="utf-8") as out:
            export.write_jsonl(db, out)
        db.close()
        args = [sys.executable, str(scorer), str(gold), str(pred)]
        args += ["--errors"] if errors else []
        args += ["--json"] if as_json else []
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ExtractorError(f"score.py failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


@dataclass
class RealReport:
    """What one pass over real abstracts found."""

    abstracts: int = 0
    with_text: int = 0
    records: int = 0
    invalid: int = 0
    misplaced: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    wall: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        rate = self.abstracts / self.seconds if self.seconds else 0.0
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))
        return [
            f"abstracts: {self.abstracts} ({self.with_text} with text)",
            f"records: {self.records} ({kinds})",
            f"exceptions: {len(self.failures)}; invalid records: {self.invalid}; evidence not at its span: {self.misplaced}",
            f"extraction: {self.seconds:.1f} s CPU on one core ({self.wall:.1f} s wall), {rate:.0f} abstracts/s",
            *[f"  failed: {f}" for f in self.failures[:10]],
        ]


def check_real(path: Path, limit: int | None = None) -> RealReport:
    """Extract every abstract of a PubMed XML file, timing extraction alone, checking every record."""
    from .extract import extract
    from .models import Article
    from .parse import iter_records

    rep = RealReport()
    articles: list[Article] = []
    for item in iter_records(path):
        article = getattr(item, "article", None)
        if article is not None:
            articles.append(article)
            if limit and len(articles) >= limit:
                break
    t0, c0 = time.perf_counter(), time.process_time()
    results = []
    for a in articles:
        try:
            results.append((a, extract(a)))
        except Exception as e:  # noqa: BLE001 - the point is to count every failure, of any kind
            rep.failures.append(f"{a.pmid}: {type(e).__name__}: {e}")
    rep.seconds = time.process_time() - c0  # CPU time: one core, whatever else the machine runs
    rep.wall = time.perf_counter() - t0
    rep.abstracts = len(articles)
    for a, (_, ms) in results:
        text = a.abstract
        rep.with_text += bool(text)
        for m in ms:
            rep.records += 1
            rep.by_kind[m.kind] = rep.by_kind.get(m.kind, 0) + 1
            try:
                Measurement.model_validate(m.model_dump())
            except ValueError:
                rep.invalid += 1
            if text[m.start:m.end] != m.evidence:
                rep.misplaced += 1
    return rep


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("corpus", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--real", "real", type=click.Path(dir_okay=False, path_type=Path),
              help="PubMed XML(.gz) of real abstracts: check every record and time extraction.")
@click.option("--limit", type=int, default=None, help="With --real: only the first N records.")
@click.option("--errors", is_flag=True, help="List every missed and wrong measurement.")
@click.option("--json", "as_json", is_flag=True, help="Print score.py's JSON report.")
def main(corpus: Path | None, real: Path | None, limit: int | None, errors: bool, as_json: bool) -> None:
    """Score the dev corpus (CORPUS = ../shared/corpus) or check real abstracts (--real FILE)."""
    try:
        if real is not None:
            rep = check_real(real, limit)
            click.echo("\n".join(rep.lines()))
            if rep.failures or rep.invalid or rep.misplaced:
                sys.exit(1)
            return
        if corpus is None:
            raise click.UsageError("give the corpus directory (e.g. ../shared/corpus) or --real FILE")
        click.echo(score_dev(corpus, errors=errors, as_json=as_json), nl=False)
    except ExtractorError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{e.filename or ''}: {e.strerror}") from None


if __name__ == "__main__":
    main()
