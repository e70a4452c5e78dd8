"""Real abstracts stay in ../shared: no test sentence, rule example or fixture of ours may
repeat a 60-character run of a real title or abstract (case and spacing ignored).

Rule examples and test cases are written for a pattern of language, in our own words and
numbers; a copied sentence would also let a rule pass its example by matching one trial.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = 60
OURS = ["tests/cases/*.jsonl", "tests/*.py", "extractor/rules/*.json", "fixtures/**/*.xml", "README.md"]
_TEXT = re.compile(r"<(AbstractText|ArticleTitle)\b[^>]*>(.*?)</\1>", re.S)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text)).lower()


def _real_texts(shared: Path) -> list[str]:
    files = [shared / "corpus" / "real.xml.gz", shared / "corpus" / "dev.xml",
             *sorted(p for p in (shared / "reference" / "ncbi").rglob("*") if p.is_file())]
    out = []
    for p in files:
        if not p.exists():
            continue
        raw = p.read_bytes()
        if p.suffix == ".gz":
            raw = gzip.decompress(raw)
        out += [_norm(m.group(2)) for m in _TEXT.finditer(raw.decode("utf-8", "replace"))]
    return out


def copied_runs(ours: dict[str, str], real: list[str], run: int = RUN) -> list[tuple[str, str]]:
    """(file, text) of every run of `run` characters of our text that starts a word-initial
    run of a real text (so any copy of `run` + one word is found)."""
    starts = {hash(t[i:i + run]) for t in real for i in range(len(t) - run + 1) if i == 0 or t[i - 1] == " "}
    found = []
    for name, text in ours.items():
        t = _norm(text)
        i = 0
        while i <= len(t) - run:
            if hash(t[i:i + run]) in starts:
                found.append((name, t[i:i + run]))
                i += run
            else:
                i += 1
    return found


def _ours() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8", errors="replace")
            for pat in OURS for p in sorted(ROOT.glob(pat)) if p.name != Path(__file__).name}


def test_the_check_finds_a_copy() -> None:
    real = [_norm("Background. Patients with zoma were randomly assigned to receive drug K or placebo "
                  "for twelve weeks, and the primary end point was remission.")]
    copy = {"a": "x = 'patients with zoma were randomly assigned to receive drug K or placebo for twelve'"}
    assert copied_runs(copy, real)
    assert not copied_runs({"b": "patients with zoma were randomly allocated to drug K or to placebo"}, real)


def test_no_real_text_in_our_files(shared_dir: Path) -> None:
    real = _real_texts(shared_dir)
    assert len(real) > 5000
    found = copied_runs(_ours(), real)
    assert not found, "\n".join(f"{name}: {text!r}" for name, text in found[:20])
