"""The simulated recorder's settings and fault names (light: read by ``station sim --help``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FAULTS = (
    "silent",
    "garbage",
    "garbage-once",
    "partial",
    "oversized",
    "wrong-id",
    "clock-2000",
    "bad-auth",
    "disconnect",
    "no-newline",
    "drip",
)


@dataclass
class SimConfig:
    serial: str = "ZFY0001"
    officer_id: str = "100001"
    officer_name: str = "张三"
    unit_id: str = "110101000001"
    unit_name: str = "示例市城市管理局"
    model: str = "DSJ-SIM1"
    firmware: str = "1.0.0"
    secret: bytes = b""
    battery_pct: int = 87
    drift_s: float = 0.0
    volume: Path | None = None
    capacity: int = 32 * 1000**3
    timezone: str = "Asia/Shanghai"
    faults: frozenset[str] = field(default_factory=frozenset)
    drip_s: float = 0.4
