"""Render a ``Report`` as a text table, CSV, XLSX, JSON, a printable HTML page or a PDF.

People's formats (table, CSV, XLSX, HTML, PDF) show times on the station's clock (北京时间,
named once in the page header); JSON keeps the stored ISO 8601 times. CSV is UTF-8 with a
byte-order mark (Chinese Excel opens it without garbling) and holds one table.

The HTML page carries its style and its charts inline (SVG): no script, no font, no image and
no link leaves the file, so it opens on an offline office PC and can be archived as it is.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import itertools
import re
from collections.abc import Iterator
from json.encoder import encode_basestring as _encode_str  # the C one when built
from typing import Any

from station.cli_util import format_table
from station.reports.cells import _cell, _generated, _sections, _tz
from station.reports.model import Chart, Report

FORMATS = ("table", "csv", "xlsx", "json", "html", "pdf")
BINARY = ("xlsx", "pdf")
BOM = "\ufeff"


class OneTablePerFile(ValueError):
    """CSV asked for several sections at once."""


def render_table(report: Report, only: str | None = None) -> str:
    out = [report.title, _generated(report)]
    if not only:
        out += [f"  {label}: {_cell(value)}" for label, value in report.summary]
    for s in _sections(report, only):
        out += ["", f"== {s.title} =="]
        if s.note:
            out.append(s.note)
        if s.rows:
            out.append(
                format_table(
                    [h for _, h in s.columns],
                    [[_cell(r.get(k)) for k, _ in s.columns] for r in s.rows],
                )
            )
        else:
            out.append("（无 / none）")
        if s.total_rows is not None and s.total_rows > len(s.rows):
            out.append(f"… 共 {s.total_rows} 条，仅显示 {len(s.rows)} / {s.total_rows} in all")
    return "\n".join(out) + "\n"


def render_csv(report: Report, only: str | None = None) -> str:
    """One table: the header row, then the rows; UTF-8 with a BOM, CRLF as Excel writes it.
    A report of several sections needs ``--section`` (or ``-o``, one file per section)."""
    sections = _sections(report, only)
    if len(sections) != 1:
        raise OneTablePerFile(", ".join(s.key for s in sections))
    s = sections[0]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([h for _, h in s.columns])
    for r in s.rows:
        w.writerow([_cell(r.get(k)) for k, _ in s.columns])
    return BOM + buf.getvalue()


def _number(v: Any) -> Any:
    """Numbers stay numbers in a spreadsheet; everything else is the people's text."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return _cell(v)
    return v


def render_xlsx(report: Report, only: str | None = None) -> bytes:
    """A workbook: a summary sheet, then one sheet per section (header row frozen)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "概要 summary"
    ws.append([report.title])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([_generated(report)])
    for label, value in report.summary:
        ws.append([label, _number(value)])
    ws.column_dimensions["A"].width = 40
    used: set[str] = {ws.title}
    for s in _sections(report, only):
        # sheet names: at most 31 characters, none of []:*?/\ and unique
        name = re.sub(r"[\[\]:*?/\\]", " ", s.title.split(" / ")[0])[:28] or s.key[:28]
        base, n = name, 2
        while name in used:
            name, n = f"{base[:26]}-{n}", n + 1
        used.add(name)
        sh = wb.create_sheet(name)
        sh.append([h for _, h in s.columns])
        for cell in sh[1]:
            cell.font = Font(bold=True)
        sh.freeze_panes = "A2"
        for r in s.rows:
            sh.append([_number(r.get(k)) for k, _ in s.columns])
        for i, (_, h) in enumerate(s.columns):
            letter = sh.cell(row=1, column=i + 1).column_letter
            sh.column_dimensions[letter].width = min(60, max(10, len(h) + 4))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def render_json(report: Report, only: str | None = None) -> str:
    """``json.dumps(report.to_json(), ensure_ascii=False, indent=2, default=str)``, byte for
    byte, without its costs at a million recordings: ``to_json`` deep-copies every row
    (``dataclasses.asdict``) and an indented ``json.dumps`` runs the pure-Python encoder. The
    rows are read as they are, and ``dumps_indented`` writes the same text."""
    data = _json_data(report)
    if only:
        data["sections"] = [s for s in data["sections"] if s["key"] == only]
    return dumps_indented(data) + "\n"


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields by name, in their order (``asdict``'s, without its copies)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _json_data(report: Report) -> dict[str, Any]:
    """``report.to_json()`` without copying: the same keys in the same order and the same
    values (read only: nothing here changes them)."""
    data = _fields(report)
    # the summary as ``to_json`` gives it: built from the report's own values, not ``asdict``'s
    data["summary"] = _AsGiven({"label": k, "value": v} for k, v in report.summary)
    sections = []
    for section in report.sections:
        s = _fields(section)
        s["columns"] = [{"key": k, "heading": h} for k, h in section.columns]
        s["charts"] = [_fields(c) for c in section.charts]
        s["sparks"] = {k: _fields(c) for k, c in section.sparks.items()}
        sections.append(s)
    data["sections"] = sections
    return data


class _AsGiven(list[Any]):
    """Values ``json.dumps`` gets as they are: a dataclass inside is written as ``str`` gives
    it (``default=str``), not as the dict ``asdict`` makes of it elsewhere."""


_INF = float("inf")


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, float):
        return _float(k)
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {k.__class__.__name__}")


def dumps_indented(obj: Any) -> str:
    """``json.dumps(dataclasses.asdict-ed obj, ensure_ascii=False, indent=2, default=str)``,
    the same text, built with the C string encoder (the standard one runs in Python when it
    indents): a dataclass instance is written as its fields' dict, except inside an
    ``_AsGiven`` list, where ``str`` gives its text."""
    out: list[str] = []
    add = out.append
    enc = _encode_str

    def members(
        opening: str, closing: str, items: Iterator[tuple[str, Any]], level: int, as_dict: bool
    ) -> None:
        """A non-empty array or object: each member on its own line, one level in, after its
        prefix (an object's ``"key": ``, nothing for an array)."""
        inner = "\n" + "  " * (level + 1)
        add(opening)
        first = True
        for prefix, item in items:
            add((inner if first else "," + inner) + prefix)
            first = False
            value(item, level + 1, as_dict)
        add("\n" + "  " * level + closing)

    def value(o: Any, level: int, as_dict: bool = True) -> None:
        if isinstance(o, str):
            add(enc(o))
        elif o is None:
            add("null")
        elif o is True:
            add("true")
        elif o is False:
            add("false")
        elif isinstance(o, int):
            add(int.__repr__(o))
        elif isinstance(o, float):
            add(_float(o))
        elif isinstance(o, list | tuple):
            if not o:
                add("[]")
                return
            as_dict = as_dict and not isinstance(o, _AsGiven)
            members("[", "]", zip(itertools.repeat(""), o), level, as_dict)
        elif isinstance(o, dict):
            if not o:
                add("{}")
                return
            keyed = ((enc(_key(k)) + ": ", v) for k, v in o.items())
            members("{", "}", keyed, level, as_dict)
        elif as_dict and dataclasses.is_dataclass(o) and not isinstance(o, type):
            value(dataclasses.asdict(o), level)  # as ``to_json``'s ``asdict`` gives it
        else:
            value(str(o), level, as_dict)  # ``default=str``

    value(obj, 0)
    return "".join(out)


# --- HTML with inline SVG ------------------------------------------------------------------

CSS = """
body{font-family:"WenQuanYi Zen Hei","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em;border-bottom:2px solid #345}h2{font-size:1.15em;margin-top:1.8em;color:#234}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#e8eef4}tr:nth-child(even) td{background:#f7f9fb}
.summary td:first-child{font-weight:bold}.note{color:#555;font-size:.9em}
svg{display:block;margin:.6em 0}svg text{font-size:11px;fill:#333}
thead{display:table-header-group}tr{page-break-inside:avoid}
.sign{margin-top:3em;display:flex;gap:4em}.sign span{border-bottom:1px solid #222;
display:inline-block;min-width:12em;height:1.4em}
.pagehead{display:none}
@page{size:A4;margin:18mm 14mm 16mm 14mm;
@top-center{content:string(title);font-size:9pt;color:#555}
@bottom-right{content:"第 " counter(page) " 页 / page " counter(page) " of " counter(pages);
font-size:9pt}}
@media print{body{margin:0;max-width:none}h1{string-set:title content()}
.pagehead{display:block;position:running(head)}h2{page-break-after:avoid}
table{width:100%}svg{max-width:100%}}
"""


def _esc(v: Any) -> str:
    return html.escape(_cell(v))


def svg_bar(chart: Chart, width: int = 640) -> str:
    """Horizontal bars, one per label."""
    bar_h, gap, left = 18, 6, 200
    n = max(len(chart.values), 1)
    height = 30 + n * (bar_h + gap)
    top = max((v for v in chart.values), default=0) or 1
    parts = [
        f'<svg width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(chart.title)}">',
        f'<text x="0" y="14" font-weight="bold">{html.escape(chart.title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(chart.labels, chart.values, strict=True)):
        y = 24 + i * (bar_h + gap)
        w = max(0.0, (width - left - 90) * value / top)
        parts.append(f'<text x="0" y="{y + 13}">{html.escape(label[:30])}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#3b6ea5"/>')
        parts.append(
            f'<text x="{left + w + 4:.1f}" y="{y + 13}">{_esc(value)} {html.escape(chart.unit)}'
            "</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_line(chart: Chart, width: int = 640, height: int = 220) -> str:
    """A line over the labels (e.g. forecast free space per week); a red line at zero."""
    left, right, top, bottom = 70, 10, 24, 30
    vals = chart.values or [0.0]
    lo, hi = min(0.0, *vals), max(0.0, *vals)
    span = (hi - lo) or 1.0
    n = len(vals)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (width - left - right) * (i / max(n - 1, 1))
        y = top + (height - top - bottom) * (1 - (v - lo) / span)
        return x, y

    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(vals)))
    _, zero_y = xy(0, 0.0)
    parts = [
        f'<svg width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(chart.title)}">',
        f'<text x="0" y="14" font-weight="bold">{html.escape(chart.title)}</text>',
        f'<line x1="{left}" y1="{zero_y:.1f}" x2="{width - right}" y2="{zero_y:.1f}" '
        'stroke="#c33" stroke-dasharray="4 3"/>',
        f'<polyline points="{pts}" fill="none" stroke="#3b6ea5" stroke-width="2"/>',
        f'<text x="0" y="{top + 10}">{_esc(hi)} {html.escape(chart.unit)}</text>',
        f'<text x="0" y="{height - bottom}">{_esc(lo)} {html.escape(chart.unit)}</text>',
    ]
    for i, label in enumerate(chart.labels):
        if n <= 8 or i % max(1, n // 8) == 0 or i == n - 1:
            x, _ = xy(i, 0)
            parts.append(
                f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">'
                f"{html.escape(label)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def svg_spark(chart: Chart, width: int = 160, height: int = 28) -> str:
    vals = chart.values
    if not vals:
        return ""
    lo, hi = min(0.0, *vals), max(0.0, *vals)
    span = (hi - lo) or 1.0
    n = len(vals)
    pts = " ".join(
        f"{2 + (width - 4) * (i / max(n - 1, 1)):.1f},"
        f"{2 + (height - 4) * (1 - (v - lo) / span):.1f}"
        for i, v in enumerate(vals)
    )
    return (
        f'<svg width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(chart.title)}"><polyline points="{pts}" fill="none" '
        'stroke="#3b6ea5" stroke-width="1.5"/></svg>'
    )


def _svg(chart: Chart) -> str:
    return svg_line(chart) if chart.kind == "line" else svg_bar(chart)


def render_html(report: Report, only: str | None = None) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="note">{html.escape(_generated(report))}</p>',
    ]
    if not only:
        out.append('<table class="summary">')
        out += [f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in report.summary]
        out.append("</table>")
    for s in _sections(report, only):
        out.append(f'<h2 id="{html.escape(s.key)}">{html.escape(s.title)}</h2>')
        if s.note:
            out.append(f'<p class="note">{html.escape(s.note)}</p>')
        out += [_svg(c) for c in s.charts]
        if not s.rows:
            out.append("<p>（无 / none）</p>")
            continue
        heads = "".join(f"<th>{html.escape(h)}</th>" for _, h in s.columns)
        if s.sparks:
            heads += "<th>趋势 / trend</th>"
        out.append(f"<table><thead><tr>{heads}</tr></thead><tbody>")
        first = s.columns[0][0]
        for r in s.rows:
            cells = "".join(f"<td>{_esc(r.get(k))}</td>" for k, _ in s.columns)
            if s.sparks:
                spark = s.sparks.get(_cell(r.get(first)))
                cells += f"<td>{svg_spark(spark) if spark else ''}</td>"
            out.append(f"<tr>{cells}</tr>")
        out.append("</tbody></table>")
        if s.total_rows is not None and s.total_rows > len(s.rows):
            out.append(
                f'<p class="note">共 {s.total_rows} 条，仅显示 {len(s.rows)} / '
                f"{s.total_rows} in all, {len(s.rows)} shown</p>"
            )
    out.append(
        '<div class="sign"><p>制表人 / prepared by: <span></span></p>'
        "<p>审核人签字 / reviewed and signed: <span></span></p>"
        "<p>日期 / date: <span></span></p></div>"
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render(report: Report, fmt: str, only: str | None = None, tz: str | None = None) -> Any:
    """Text for table/CSV/JSON/HTML, bytes for XLSX/PDF. With ``tz`` people's formats show
    times on that clock; JSON never changes."""
    if only is not None:
        report.section(only)  # KeyError → the CLI names the known sections
    from station.reports.pdf import render_pdf

    token = _tz.set(tz if fmt != "json" else None)
    try:
        return {
            "table": render_table,
            "csv": render_csv,
            "xlsx": render_xlsx,
            "json": render_json,
            "html": render_html,
            "pdf": render_pdf,
        }[fmt](report, only)
    finally:
        _tz.reset(token)
