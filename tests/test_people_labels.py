"""Labels that fit: a long Chinese case name stays inside the printed disc (checked on the
rendered page: word boxes from pdftotext, pixels from pdftoppm); one sheet per job."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from station.disc_burn.label import DISC_R_MM, HUB_R_MM, LabelData, render_pdf, render_sheet

MM = 72 / 25.4
LONG = "关于某某市某某区某某街道某某商户长期占道经营及违法搭建构筑物并拒不整改一案的调查处理决定书"


def _label(copy: str = "A", name: str = LONG) -> LabelData:
    assert len(name) >= 45
    return LabelData(
        "某某市城市管理综合行政执法局某某区分局第三中队",
        "张三",
        "2026-12-01 18:23 北京时间",
        [("城管罚字〔2026〕第12345号", name + "（续）" * 5)],  # 60+ characters
        copy,
        1,
        4,
        "ST01-J0012-D1A",
        "ab" * 32,
        "DVD±R",
        12,
        [("城管罚字〔2026〕第12345号", "A001-2026-Y-000123", "永久")],
    )


def _words(pdf: Path, page: int = 1) -> list[tuple[float, float, float, float, str]]:
    out = subprocess.run(
        ["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pat = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    return [(float(a), float(b), float(c), float(d), w) for a, b, c, d, w in re.findall(pat, out)]


def test_long_case_name_stays_inside_the_disc(tmp_path: Path) -> None:
    data = _label()
    assert len(data.cases[0][1]) >= 60
    pdf = tmp_path / "l.pdf"
    render_pdf(data, pdf)
    page_w = 595.2756
    cx, cy = page_w / 2, (20 + DISC_R_MM) * MM  # from the top, as pdftotext reports
    r, hub = DISC_R_MM * MM, HUB_R_MM * MM
    on_disc = [w for w in _words(pdf) if w[3] < cy + r]  # the sleeve table is below the disc
    text = "".join(w[4] for w in on_disc)
    # every character of the case name is printed on the disc, none outside it
    assert LONG in text and "城管罚字〔2026〕第12345号" in text and "甲" in text
    for x0, y0, x1, y1, word in on_disc:
        for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
            d = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
            assert d < r, (word, d, r)
        # nothing printed over the hub hole
        near = max(abs(cx - min(max(cx, x0), x1)), 0), abs(cy - min(max(cy, y0), y1))
        assert (near[0] ** 2 + near[1] ** 2) ** 0.5 > hub, word
    # the rendered page: no ink outside the disc outline above the sleeve table
    subprocess.run(
        ["pdftoppm", "-r", "50", "-gray", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")],
        check=True,
    )
    pgm = next(tmp_path.glob("p*.pgm")).read_bytes()
    header = pgm.split(b"\n", 3)
    w, h = (int(v) for v in header[1].split())
    pixels = header[3]
    scale = 50 / 72
    for y in range(h):
        if y / scale > cy + r + 2:
            break
        for x in range(w):
            d = ((x / scale - cx) ** 2 + (y / scale - cy) ** 2) ** 0.5
            if d > r + 3:  # outside the outline (allow for the stroke)
                assert pixels[y * w + x] > 200, (x, y)


def test_one_sheet_for_a_job(tmp_path: Path) -> None:
    labels = [_label(c) for c in ("A", "B")] * 2
    pdf = tmp_path / "all.pdf"
    render_sheet(labels, pdf)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    assert re.search(r"Pages:\s+4", info.stdout)
    assert "乙" in "".join(w[4] for w in _words(pdf, 2))
