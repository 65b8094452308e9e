"""The printable label sheet of one disc copy (R12), as HTML and PDF.

R12: the disc label or sleeve shows the producing unit, the producer, the production time and the
enforcement activity or case name and number. The sheet adds the copy (A/B), "disc i of n", the
volume id and the image's SHA-256 so a disc on a shelf can be matched to its catalog row and
checked. The PDF embeds a CJK font (WenQuanYi Zen Hei, Debian fonts-wqy-zenhei).
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
    fingerprint: str | None = None  # the station key's (R7): verify.py prints the same

    @property
    def archive_rows(self) -> list[tuple[str, str, str]]:
        """档号 and 保管期限 per case; a case not yet numbered says so (never left off)."""
        numbered = {case for case, _, _ in self.archive}
        missing = [(n, "未编 / none", "未定 / not set") for n, _ in self.cases if n not in numbered]
        return [*self.archive, *missing]

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
            (
                "档号 / Archive number",
                "; ".join(f"{number}（{case}）" for case, number, _ in self.archive_rows),
            ),
            (
                "保管期限 / Retention period",
                "; ".join(f"{words}（{case}）" for case, _, words in self.archive_rows),
            ),
            ("份别 / Copy", f"{self.copy_text}（一式两份 / one of two copies）"),
            (
                "光盘 / Disc",
                f"第 {self.disc_no} 张，共 {self.discs_total} 张 / "
                f"disc {self.disc_no} of {self.discs_total}",
            ),
            ("卷标 / Volume id", self.volume_id),
            ("介质 / Media", self.media),
            ("映像 SHA-256 / Image SHA-256", self.image_sha256),
            (
                "采集站公钥指纹 / Station key fingerprint",
                self.fingerprint or "无（未签名）/ none (not signed)",
            ),
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
{"".join(f"<div>档号 {html.escape(a)} · {html.escape(w)}</div>" for _, a, w in data.archive_rows)}
<div class="copy">{html.escape(data.copy_text)}</div>
<div>第 {data.disc_no} 张，共 {data.discs_total} 张 /
disc {data.disc_no} of {data.discs_total}</div>
<div>{html.escape(data.volume_id)} · {html.escape(data.producer)} ·
{html.escape(data.produced_at)}</div>
<div class="hash">SHA-256 {html.escape(data.image_sha256)}</div>
<div class="hash">公钥指纹 / key fingerprint {html.escape(data.fingerprint or "-")}</div>
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
        "找不到中文字体 / no CJK font for the disc label",
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


# The printed disc: outer radius 59 mm, hub hole radius 7.5 mm (a 120 mm disc, 15 mm hole).
DISC_R_MM = 59.0
HUB_R_MM = 7.5
_EDGE_MM = 4.0  # text keeps this far from the disc's edge


def _chord(r: float, dy_low: float, dy_high: float, margin: float) -> float:
    """Usable width of a text line spanning [dy_low, dy_high] from the centre (points)."""
    dy = max(abs(dy_low), abs(dy_high))
    if dy >= r - margin:
        return 0.0
    return 2 * ((r - margin) ** 2 - dy**2) ** 0.5


def fit_lines(
    text: str,
    font: str,
    size: float,
    width_at: Callable[[float, int], float],
    *,
    min_size: float = 5.5,
    max_lines: int = 3,
) -> tuple[float, list[str]]:
    """The largest size (down to ``min_size``) at which ``text`` fits ``width_at(size, n)`` —
    first on one line, then wrapped on up to ``max_lines``. Never wider than the space."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    width = width_at  # (size, lines) -> usable width in points
    sizes = [size - 0.5 * i for i in range(int((size - min_size) / 0.5) + 1)]
    for n in range(1, max_lines + 1):
        for s in sizes:
            lines = _wrap(text, font, s, width(s, n))
            if (
                lines
                and len(lines) <= n
                and all(stringWidth(x, font, s) <= width(s, n) for x in lines)
            ):
                return s, lines
    s = sizes[-1]
    lines = _wrap(text, font, s, width(s, max_lines))[:max_lines]
    if lines:
        while lines[-1] and stringWidth(lines[-1] + "…", font, s) > width(s, max_lines):
            lines[-1] = lines[-1][:-1]
        lines[-1] += "…"
    return s, lines


def _disc_lines(data: LabelData) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(upper, lower) blocks of (text, size): unit, cases, 档号 above the hub; copy, disc i of n,
    volume id, producer, time, image hash below it."""
    upper = [(data.unit, 10.0)]
    upper += [(f"{name}（{number}）", 9.0) for number, name in data.cases[:3]]
    if len(data.cases) > 3:
        upper.append((f"等 {len(data.cases)} 案 / {len(data.cases)} cases", 8.0))
    upper += [
        (f"档号 {number} · 保管期限 {words}", 8.0) for _, number, words in data.archive_rows[:3]
    ]
    lower = [
        (data.copy_text, 18.0),
        (f"第 {data.disc_no} 张，共 {data.discs_total} 张", 9.0),
        (f"{data.volume_id}  制作人 {data.producer}", 8.0),
        (f"制作时间 {data.produced_at}", 8.0),
        ("SHA-256 " + data.image_sha256[:32], 6.0),
        (data.image_sha256[32:], 6.0),
    ]
    if data.fingerprint:
        lower.append((f"公钥指纹 {data.fingerprint}", 6.0))
    return upper, lower


def draw_disc(c: object, data: LabelData, cx: float, cy: float, font: str) -> None:
    """Draw the disc outline and its text so that every line stays inside the printable ring:
    lines shrink, then wrap; the whole block shrinks when it would reach the hub."""
    from reportlab.lib.units import mm

    canvas: Any = c
    r, hub = DISC_R_MM * mm, HUB_R_MM * mm
    canvas.circle(cx, cy, r)
    canvas.circle(cx, cy, hub)
    margin = _EDGE_MM * mm
    upper, lower = _disc_lines(data)

    def place(block: list[tuple[str, float]], top: float, floor: float, scale: float) -> Any:
        """Lay ``block`` out downward from ``top`` (offset from the centre); None if it would
        pass ``floor``."""
        y, out = top, []
        for text, size in block:

            def width(s: float, n: int, y0: float = y) -> float:
                return _chord(r, y0 - n * s * 1.25, y0, margin)

            s, lines = fit_lines(text, font, size * scale, width)
            for line in lines:
                y -= s * 1.25
                if y < floor:
                    return None
                out.append((line, s, y))
        return out

    for scale in (1.0, 0.9, 0.8, 0.7, 0.6):
        up = place(upper, r - 6 * mm, hub + 2 * mm, scale)
        down = place(lower, -hub - 2 * mm, -(r - 6 * mm), scale)
        if up is not None and down is not None:
            break
    else:
        raise StationError(
            "标签内容放不下 / label text does not fit the disc", where=data.volume_id
        )
    for line, size, y in [*up, *down]:
        canvas.setFont(font, size)
        canvas.drawCentredString(cx, cy + y, line)


def render_pdf(data: LabelData, out: Path) -> None:
    render_sheet([data], out)


def render_sheet(labels: list[LabelData], out: Path) -> None:
    """One PDF: a page per disc copy (the disc to cut out, then the sleeve's table)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    font = _font()
    tmp = out.with_name(f".{out.name}.partial")
    c = canvas.Canvas(str(tmp), pagesize=A4)
    c.setTitle(f"Disc label {labels[0].volume_id}" if len(labels) == 1 else "Disc labels")
    width, height = A4
    for data in labels:
        r = DISC_R_MM * mm
        cx, cy = width / 2, height - 20 * mm - r
        draw_disc(c, data, cx, cy, font)
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


def write_html(data: LabelData, html_path: Path) -> None:
    tmp = html_path.with_name(f".{html_path.name}.partial")
    tmp.write_text(render_html(data), encoding="utf-8")
    os.replace(tmp, html_path)


def write_label(data: LabelData, html_path: Path, pdf_path: Path) -> None:
    write_html(data, html_path)
    render_pdf(data, pdf_path)


def _label_from_json(d: dict[str, Any]) -> LabelData:
    return LabelData(
        **{
            **d,
            "cases": [tuple(x) for x in d["cases"]],
            "archive": [tuple(x) for x in d["archive"]],
        }
    )


class LabelPrinter:
    """Renders label PDFs in one child process while the build goes on: the CJK font (tens of
    megabytes once reportlab has loaded it) is loaded once there and never in the building
    process. ``submit`` queues a PDF; ``close`` waits for all of them and raises what failed."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._sent = 0

    def start(self) -> None:
        """Start the child now (it loads reportlab and the font before the first request)."""
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "station.disc_burn.label"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )

    def submit(self, labels: list[LabelData], out: Path) -> None:
        self.start()
        assert self._proc is not None and self._proc.stdin is not None
        line = json.dumps({"out": str(out), "labels": [asdict(x) for x in labels]}) + "\n"
        try:
            self._proc.stdin.write(line.encode("utf-8"))
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # the child has stopped: close() says why
        self._sent += 1

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        out, err = proc.communicate()
        answers = [json.loads(x) for x in out.decode("utf-8").splitlines() if x.strip()]
        for answer in answers:
            if "error" in answer:
                raise StationError(answer["error"], where=answer["where"], hint=answer["hint"])
        if proc.returncode != 0 or len(answers) != self._sent:
            tail = " | ".join(err.decode("utf-8", "replace").strip().splitlines()[-3:])
            raise StationError(
                f"标签生成失败 / the label printer stopped (exit {proc.returncode}): {tail}",
                where="station.disc_burn.label",
            )

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.communicate()


def main() -> None:
    """The label printer's child: one request a line on stdin, one answer a line on stdout.
    reportlab and the font are loaded first, while the parent is still busy."""
    try:
        import reportlab.pdfgen.canvas  # noqa: F401

        _font()
    except StationError:
        pass  # said again, with its hint, when a label is rendered
    for line in sys.stdin.buffer:
        req = json.loads(line)
        try:
            render_sheet([_label_from_json(x) for x in req["labels"]], Path(req["out"]))
            answer: dict[str, Any] = {"ok": req["out"]}
        except StationError as exc:
            answer = {"error": exc.message, "where": exc.where, "hint": exc.hint}
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
