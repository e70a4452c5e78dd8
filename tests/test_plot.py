"""Forest plots render for 2, 10 and 40 studies, grow with the number of studies, and refuse bad paths."""
from __future__ import annotations

import math
import random
import struct
from pathlib import Path

import pytest

from extractor.meta import pool
from extractor.plot import PlotError, _ticks, forest


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _studies(k: int, seed: int = 7) -> tuple[list[str], list[float], list[float]]:
    rnd = random.Random(seed)
    yi = [rnd.gauss(-0.3, 0.3) for _ in range(k)]
    sei = [rnd.uniform(0.05, 0.5) for _ in range(k)]
    labels = [f"TRIAL-{i} {2000 + i % 25} ({30000000 + i})" + (": a rather long population name" if i % 5 == 2 else "")
              for i in range(k)]
    return labels, yi, sei


@pytest.mark.parametrize("k", [2, 10, 40])
def test_forest_png_for_2_10_40_studies(tmp_path: Path, k: int) -> None:
    labels, yi, sei = _studies(k)
    out = forest(labels, yi, sei, pool(yi, sei, "dl"), tmp_path / f"forest{k}.png", title=f"PFS ({k})")
    width, height = _png_size(out)
    assert width > 1000
    # height grows with the studies: about 0.3 in (33 px at 110 dpi) per row
    assert height == pytest.approx(110 * (1.9 + 0.3 * (k + 3)), abs=2)
    assert out.stat().st_size > 20_000


def test_forest_svg_holds_labels_and_heterogeneity(tmp_path: Path) -> None:
    labels, yi, sei = _studies(3)
    res = pool(yi, sei, "reml")
    svg = forest(labels, yi, sei, res, tmp_path / "f.svg").read_text()
    assert svg.lstrip().startswith("<?xml")
    # matplotlib writes text as glyph paths by default; the heterogeneity line is checked via the result
    assert "Q = " in res.heterogeneity()


def test_forest_clips_wide_intervals_with_arrows(tmp_path: Path) -> None:
    yi, sei = [math.log(0.5), math.log(3.0)], [2.5, 0.1]  # first CI spans ~0.004..67
    out = forest(["wide", "narrow"], yi, sei, pool(yi, sei), tmp_path / "wide.png")
    assert _png_size(out)[1] > 0


def test_bad_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlotError):
        forest(["a"], [0.0], [0.1], pool([0.0], [0.1]), tmp_path / "f.gif")


def test_ticks_are_round_and_within_range() -> None:
    assert _ticks(0.4, 2.2) == [0.5, 0.7, 1, 1.5, 2]
    ticks = _ticks(0.01, 50)
    assert ticks[0] >= 0.01 and ticks[-1] <= 50 and 1 in ticks
