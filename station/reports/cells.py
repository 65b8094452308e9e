"""How people read a report's cells: times on the station's clock (set per rendering through
``_tz``), hashes as the short id every command accepts, numbers without trailing zeros. Shared by
every format (``render``, ``pdf``)."""

from __future__ import annotations

import contextvars
import re
from collections.abc import Sequence
from typing import Any

from station.reports.model import Report, Section
from station.timeutil import human_time, zone_words

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_tz: contextvars.ContextVar[str | None] = contextvars.ContextVar("report_tz", default=None)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    tz = _tz.get()
    if tz and isinstance(v, str) and _ISO.match(v):
        return human_time(v, tz)
    if tz and isinstance(v, str) and _SHA.match(v):
        return v[:16]  # the short id every command accepts
    if isinstance(v, float):
        v = round(v, 2) + 0.0  # two decimals at most; -0.003 shows as 0, never "-0"
        return f"{v:.2f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))
    return str(v)


def _sections(report: Report, only: str | None) -> Sequence[Section]:
    return [report.section(only)] if only else report.sections


def _generated(report: Report) -> str:
    tz = _tz.get()
    if tz is None:
        return f"生成时间 / generated: {report.generated_at}"
    return f"生成时间 / generated: {_cell(report.generated_at)}（时间均为{zone_words(tz)}）"
