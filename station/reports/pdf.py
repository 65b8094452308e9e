"""A report as a PDF a supervisor prints and signs: A4, the report's title and page number on
every page, each section's table with its header row repeated across pages, times on the
station's clock (the caller sets them, see ``render``), a signature block at the end."""

from __future__ import annotations

import io
from typing import Any

from station.reports.model import Report

SIGN_REPORT = ("制表人 / prepared by", "审核人签字 / reviewed and signed", "日期 / date")


def render_pdf(
    report: Report, only: str | None = None, signatures: tuple[str, ...] = SIGN_REPORT
) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        LongTable,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )

    from station.disc_burn.label import _font
    from station.reports.cells import _cell, _generated, _sections

    font = _font()
    base = ParagraphStyle("b", fontName=font, fontSize=8, leading=10, wordWrap="CJK")
    note = ParagraphStyle("n", parent=base, textColor=colors.HexColor("#555555"))
    h1 = ParagraphStyle("h1", parent=base, fontSize=15, leading=19, spaceAfter=4)
    h2 = ParagraphStyle("h2", parent=base, fontSize=11, leading=14, spaceBefore=8, spaceAfter=3)
    head = ParagraphStyle("th", parent=base, fontSize=8, textColor=colors.HexColor("#123"))
    page = landscape(A4)
    usable = page[0] - 24 * mm

    def esc(v: Any) -> str:
        return _cell(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    story: list[Any] = [Paragraph(esc(report.title), h1), Paragraph(esc(_generated(report)), note)]
    if not only:
        for label, value in report.summary:
            story.append(Paragraph(f"{esc(label)}: {esc(value)}", base))
    for s in _sections(report, only):
        story.append(Paragraph(esc(s.title), h2))
        if s.note:
            story.append(Paragraph(esc(s.note), note))
        if not s.rows:
            story.append(Paragraph("（无 / none）", base))
            continue
        data = [[Paragraph(esc(h), head) for _, h in s.columns]]
        data += [[Paragraph(esc(r.get(k)), base) for k, _ in s.columns] for r in s.rows]
        table = LongTable(data, colWidths=[usable / len(s.columns)] * len(s.columns), repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8EEF4")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
        if s.total_rows is not None and s.total_rows > len(s.rows):
            story.append(
                Paragraph(
                    f"共 {s.total_rows} 条，仅显示 {len(s.rows)} / {s.total_rows} in all", note
                )
            )
    story += [
        Spacer(1, 14 * mm),
        Paragraph("　　".join(f"{esc(w)}: ____________" for w in signatures), base),
    ]

    def furniture(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 8)
        canvas.drawString(12 * mm, page[1] - 9 * mm, report.title)
        canvas.drawRightString(page[0] - 12 * mm, 8 * mm, f"第 {doc.page} 页 / page {doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=page,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=report.title,
    )
    doc.build(story, onFirstPage=furniture, onLaterPages=furniture)
    return buf.getvalue()
