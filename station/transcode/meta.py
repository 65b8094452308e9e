"""What a derivative carries about itself: tags embedded in its container (R5, R6, R7)."""

from __future__ import annotations

import sqlite_utils

from station.config import Settings


def recording_row(db: sqlite_utils.Database, sha256: str) -> dict[str, object]:
    rows = list(
        db.query(
            "select r.*, o.name as officer_name, u.name as unit_name, dv.model as device_model"
            " from recordings r left join officers o on o.officer_id = r.officer_id"
            " left join units u on u.unit_id = r.unit_id"
            " left join devices dv on dv.device_id = r.device_id where r.sha256 = ?",
            [sha256],
        )
    )
    return rows[0] if rows else {}


def case_numbers(db: sqlite_utils.Database, sha256: str) -> list[str]:
    if "case_recordings" not in db.table_names():
        return []
    return [
        r[0]
        for r in db.execute(
            "select case_number from case_recordings where sha256 = ? order by case_number",
            [sha256],
        )
    ]


def _join(*parts: object) -> str | None:
    text = " ".join(str(p) for p in parts if p not in (None, ""))
    return text or None


def build_metadata(
    row: dict[str, object], cases: list[str], settings: Settings, profile: str
) -> dict[str, str | None]:
    """Container tags: officer, device, unit, case, corrected recording time (UTC), the
    original's SHA-256 and the station id. ``creation_time`` is what players show as the date."""
    sha = str(row.get("sha256") or "")
    recorded_at = row.get("recorded_at")
    officer = _join(row.get("officer_id"), row.get("officer_name"))
    return {
        "title": _join(officer, recorded_at) or sha[:16],
        "comment": (
            "归档副本，原始文件 SHA-256 见 original_sha256 (R7) / archival derivative "
            f"({profile}) of original sha256:{sha}, station {settings.station.id}"
        ),
        "creation_time": str(recorded_at) if recorded_at else None,
        "recorded_at": str(recorded_at) if recorded_at else None,
        "recorded_at_device": _join(row.get("recorded_at_device")),
        "drift_s": _join(row.get("drift_s")),
        "officer": officer,
        "device": _join(row.get("device_id"), row.get("device_model")),
        "unit": _join(row.get("unit_id"), row.get("unit_name")),
        "case": ";".join(cases) or None,
        "original_sha256": sha,
        "original_name": _join(row.get("original_name")),
        "station_id": settings.station.id,
        "archival_profile": profile,
    }
