"""What a report is: a title, a summary, and sections of rows with optional charts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Chart:
    kind: str  # bar | line | spark
    title: str  # bilingual
    labels: list[str]
    values: list[float]
    unit: str = ""


@dataclass
class Section:
    key: str
    title: str  # "中文 / English"
    columns: list[tuple[str, str]]  # (row key, bilingual heading)
    rows: list[dict[str, Any]]
    note: str | None = None
    charts: list[Chart] = field(default_factory=list)
    total_rows: int | None = None  # when ``rows`` is cut to a limit: how many there were
    sparks: dict[str, Chart] = field(default_factory=dict)  # per-row small charts, by row label


@dataclass
class Report:
    kind: str
    title: str
    generated_at: str
    params: dict[str, Any]
    summary: list[tuple[str, Any]]  # (bilingual label, value)
    sections: list[Section]

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = [{"label": k, "value": v} for k, v in self.summary]
        for s in data["sections"]:
            s["columns"] = [{"key": k, "heading": h} for k, h in s["columns"]]
        return data
