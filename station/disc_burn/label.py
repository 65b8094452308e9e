"""The printable label sheet of one disc copy (R12), as HTML and PDF.

R12: the disc label or sleeve shows the producing unit, the producer, the production time and the
enforcement activity or case name and number. The sheet adds the copy (A/B), "disc i of n", the
volume id and the image's SHA-256 so a disc on a shelf can be matched to its catalog row and
checked. The PDF embeds a CJK font (WenQuanYi Zen Hei, Debian fonts-wqy-zenhei).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from station.errors import StationError

FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
)
FONT_NAME = "WQYZenHei"


@dataclass(frozen=True)
class LabelData:
    unit: str  # 制作单位 producing unit
    producer: str  # 制作人 producer
    produced_at: str  # 制作时间 production time (local, readable)
    cases: list[tuple[str, str]]  # 案件名称及编号: (number, name)
    copy: str  # A | B
    disc_no: int
    discs_total: int
    volume_id: str
    image_sha256: str
    media: str
    job_id: int
    archive: list[tuple[str, str, str]] = field(default_factory=list)  # (case, 档号, 保管期限)

    @property
    def copy_text(self) -> str:
        return {"A": "甲 / A", "B": "乙 / B"}.get(self.copy, self.copy)

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("制作单位 / Producing unit", self.unit),
            ("制作人 / Producer", self.producer),
            ("制作时间 / Production time", self.produced_at),
            (
                "执法活动或案件名称及编号 / Enforcement activity or case name and number",
                "; ".join(f"{name}（{number}）" for number, name in self.cases),
            ),
            *(
                (
                    "档号 / Archive number",
                    "; ".join(f"{number}（{case}）" for case, number, _ in self.archive),
                ),
                (
                    "保管期限 / Retention period",
                    "; ".join(f"{words}（{case}）" for case, _, words in self.archive),
                ),
            )[: 2 if self.archive else 0],
            ("份别 / Copy", f"{self.copy_text}（一式两份 / one of two copies）"),
            (
                "光盘 / Disc",
                f"第 {self.disc_no} 张，共 {self.discs_total} 张 / "
                f"disc {self.disc_no} of {self.discs_total}",
            ),
            ("卷标 / Volume id", self.volume_id),
            ("介质 / Media", self.media),
            ("映像 SHA-256 / Image SHA-256", self.image_sha256),
            ("任务 / Job", str(self.job_id)),
        ]


def render_html(data: LabelData) -> str:
    rows = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in data.rows()
    )
    title = html.escape(f"光盘标签 / Disc label {data.volume_id}")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>
@page {{ size: A4; margin: 15mm; }}
body {{ font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", sans-serif; }}
.disc {{ width: 118mm; height: 118mm; border: 1px solid #000; border-radius: 50%;
  display: flex; flex-direction: column; align-items: center; justify-content: center;
  text-align: center; font-size: 10pt; margin-bottom: 10mm; }}
.disc .copy {{ font-size: 20pt; font-weight: bold; }}
.hash {{ font-family: monospace; font-size: 7pt; word-break: break-all; width: 80mm; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #444; padding: 2mm; text-align: left; vertical-align: top; }}
td {{ word-break: break-all; }}
</style></head><body>
<div class="disc">
<div>{html.escape(data.unit)}</div>
<div>{html.escape("; ".join(f"{n} {name}" for n, name in data.cases))}</div>
{"".join(f"<div>档号 {html.escape(a)} · {html.escape(w)}</div>" for _, a, w in data.archive)}
<div class="copy">{html.escape(data.copy_text)}</div>
<div>第 {data.disc_no} 张，共 {data.discs_total} 张 /
disc {data.disc_no} of {data.discs_total}</div>
<div>{html.escape(data.volume_id)} · {html.escape(data.producer)} ·
{html.escape(data.produced_at)}</div>
<div class="hash">SHA-256 {html.escape(data.image_sha256)}</div>
</div>
<table>
{rows}
</table>
</body></html>
"""


def _font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT_NAME in pdfmetrics.getRegisteredFontNames():
        return FONT_NAME
    for path in FONT_PATHS:
        if os.path.exists(path):
            pdfmetrics.registerFont(TTFont(FONT_NAME, path, subfontIndex=0))
            return FONT_NAME
    raise StationError(
        "no CJK font for the disc label / 找不到中文字体",
        where=FONT_PATHS[0],
        hint="install the Debian package fonts-wqy-zenhei",
    )


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, line = [], ""
    for ch in text:
        if stringWidth(line + ch, font, size) > width:
            lines.append(line)
            line = ch
        else:
            line += ch
    return [*lines, line] if line else lines


def render_pdf(data: LabelData, out: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    font = _font()
    tmp = out.with_name(f".{out.name}.partial")
    c = canvas.Canvas(str(tmp), pagesize=A4)
    c.setTitle(f"Disc label {data.volume_id}")
    width, height = A4
    cx, cy, r = width / 2, height - 20 * mm - 59 * mm, 59 * mm
    c.circle(cx, cy, r)
    c.circle(cx, cy, 7.5 * mm)
    c.setFont(font, 10)
    c.drawCentredString(cx, cy + 42 * mm, data.unit)
    for i, (number, name) in enumerate(data.cases[:3]):
        c.drawCentredString(cx, cy + (34 - 6 * i) * mm, f"{name}（{number}）")
    for i, (_, number, words) in enumerate(data.archive[:2]):
        c.drawCentredString(cx, cy + (18 - 5 * i) * mm, f"档号 {number}  {words}")
    c.setFont(font, 20)
    c.drawCentredString(cx, cy + 4 * mm, data.copy_text)
    c.setFont(font, 10)
    c.drawCentredString(cx, cy - 16 * mm, f"第 {data.disc_no} 张，共 {data.discs_total} 张")
    c.drawCentredString(cx, cy - 22 * mm, f"{data.volume_id}   {data.producer}")
    c.drawCentredString(cx, cy - 28 * mm, data.produced_at)
    c.setFont(font, 6.5)
    c.drawCentredString(cx, cy - 36 * mm, "SHA-256 " + data.image_sha256[:32])
    c.drawCentredString(cx, cy - 40 * mm, data.image_sha256[32:])
    y = cy - r - 12 * mm
    for key, value in data.rows():
        c.setFont(font, 9)
        c.drawString(15 * mm, y, key)
        size = 7.5 if "SHA" in key else 9
        c.setFont(font, size)
        for line in _wrap(value, font, size, width - 105 * mm):
            c.drawString(90 * mm, y, line)
            y -= 5 * mm
        y -= 2 * mm
    c.showPage()
    c.save()
    os.replace(tmp, out)


def write_label(data: LabelData, html_path: Path, pdf_path: Path) -> None:
    tmp = html_path.with_name(f".{html_path.name}.partial")
    tmp.write_text(render_html(data), encoding="utf-8")
    os.replace(tmp, html_path)
    render_pdf(data, pdf_path)
