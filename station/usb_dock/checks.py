"""Checks on dock (R3, R4), pure: the recorder's answers in, flags and the drift out.

Each flag is ``{code, message}`` on the session row; messages are Chinese and English.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from station.config import DockSection
from station.recorder.base import ClockReading, Identity
from station.timeutil import local_naive_to_utc

# Flags that stop a session before anything is mounted (DESIGN.md invariant 5).
REFUSING = frozenset(
    {
        "unknown_device",
        "auth_failed",
        "duplicate_id",
        "identity_invalid",
        "device_in_repair",  # R4: a device in repair (送修) is not used
        "device_retired",
    }
)

EARLIEST_PLAUSIBLE = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Flag:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Enrolment:
    """What the station knows about a device (the ``devices`` row), if anything."""

    device_id: str
    enrolled: bool
    officer_id: str | None
    unit_id: str | None
    service_state: str = "in_service"  # R4: in_service | in_repair | retired
    service_since: str | None = None  # when it entered that state (ISO)


@dataclass
class Assessment:
    flags: list[Flag] = field(default_factory=list)
    drift_s: float | None = None  # measured, device minus station (R3)
    correct_by_s: float | None = None  # what the ingest corrects file times by; None = don't
    device_clock: str | None = None

    @property
    def refused(self) -> bool:
        return any(f.code in REFUSING for f in self.flags)

    def codes(self) -> list[str]:
        return [f.code for f in self.flags]

    def as_json(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.flags]


def check_identity(identity: Identity, enrolment: Enrolment | None) -> list[Flag]:
    flags: list[Flag] = []
    problems = identity.problems()
    if problems:
        flags.append(
            Flag(
                "identity_invalid",
                "记录仪身份信息格式错误 / invalid identity: " + "; ".join(problems),
            )
        )
    if enrolment is None or not enrolment.enrolled:
        flags.append(
            Flag(
                "unknown_device",
                f"未登记的设备 {identity.serial}，未挂载，请管理员登记 / "
                f"device {identity.serial} is not enrolled: not mounted; "
                "an admin must run `station devices enrol`",
            )
        )
        return flags
    since = f"（自 {enrolment.service_since[:10]} 起）" if enrolment.service_since else ""
    since_en = f" since {enrolment.service_since[:10]}" if enrolment.service_since else ""
    if enrolment.service_state == "in_repair":
        flags.append(
            Flag(
                "device_in_repair",
                f"设备 {identity.serial} 已送修{since}，不得使用，拒绝接入；修复后由管理员恢复 / "
                f"device {identity.serial} is in repair{since_en}: refused; an admin returns it "
                "to service with `station devices state … in-service`",
            )
        )
    elif enrolment.service_state == "retired":
        flags.append(
            Flag(
                "device_retired",
                f"设备 {identity.serial} 已报废停用{since}，拒绝接入 / device {identity.serial} "
                f"is retired{since_en}: refused",
            )
        )
    if enrolment.officer_id and identity.officer_id and enrolment.officer_id != identity.officer_id:
        flags.append(
            Flag(
                "officer_mismatch",
                f"记录仪上的执法证号 {identity.officer_id} 与登记的 {enrolment.officer_id} 不符 / "
                f"officer {identity.officer_id} on the recorder, {enrolment.officer_id} enrolled",
            )
        )
    if enrolment.unit_id and identity.unit_id and enrolment.unit_id != identity.unit_id:
        flags.append(
            Flag(
                "unit_mismatch",
                f"记录仪上的单位 {identity.unit_id} 与登记的 {enrolment.unit_id} 不符 / "
                f"unit {identity.unit_id} on the recorder, {enrolment.unit_id} enrolled",
            )
        )
    return flags


def check_health(
    battery: int | None, total: int | None, free: int | None, cfg: DockSection
) -> list[Flag]:
    """R3: battery capacity and memory space; unknown values are said to be unknown."""
    flags: list[Flag] = []
    if battery is None:
        flags.append(Flag("battery_unknown", "电量未知 / battery level unknown"))
    elif battery < cfg.battery_low_pct:
        flags.append(
            Flag(
                "battery_low",
                f"电量低：{battery}%（低于 {cfg.battery_low_pct}%）/ battery low: {battery}% "
                f"(below {cfg.battery_low_pct}%)",
            )
        )
    if total is None or free is None:
        flags.append(Flag("storage_unknown", "存储空间未知 / storage space unknown"))
    elif total > 0:
        used_pct = 100.0 * (total - free) / total
        if used_pct >= cfg.storage_full_pct:
            flags.append(
                Flag(
                    "storage_full",
                    f"存储将满：已用 {used_pct:.0f}% / storage nearly full: {used_pct:.0f}% used",
                )
            )
    return flags


def check_clock(
    reading: ClockReading | None, cfg: DockSection, tz: str
) -> tuple[list[Flag], float | None, float | None]:
    """R3: drift = device clock (in the station's zone) minus the station clock at the
    round-trip midpoint. Returns (flags, measured drift, drift to correct file times by).

    An implausible clock (before 2015, or off by more than ``implausible_drift_s``) is flagged and
    NOT used to correct file times: such a clock was most likely reset just now (flat battery),
    and the files' own times are more trustworthy than a correction by years.
    """
    if reading is None:
        return [Flag("clock_unknown", "设备时钟未知 / device clock unknown")], None, None
    device_utc = local_naive_to_utc(reading.device_time, tz)
    drift = round((device_utc - reading.station_mid).total_seconds(), 3)
    if device_utc < EARLIEST_PLAUSIBLE or abs(drift) > cfg.implausible_drift_s:
        shown = f"{reading.device_time:%Y-%m-%d %H:%M:%S}"
        return (
            [
                Flag(
                    "clock_implausible",
                    f"设备时钟不可信：{shown}（偏差 {drift:.0f} 秒），文件时间未校正 / "
                    f"implausible device clock {shown} (off by {drift:.0f} s): "
                    "file times not corrected",
                )
            ],
            drift,
            None,
        )
    flags = []
    if abs(drift) > cfg.drift_threshold_s:
        flags.append(
            Flag(
                "clock_drift",
                f"时钟偏差 {drift:+.1f} 秒（阈值 {cfg.drift_threshold_s:g} 秒），已校正 / "
                f"clock drift {drift:+.1f} s (threshold {cfg.drift_threshold_s:g} s), corrected",
            )
        )
    return flags, drift, drift


def assess(
    identity: Identity,
    enrolment: Enrolment | None,
    battery: int | None,
    total: int | None,
    free: int | None,
    reading: ClockReading | None,
    cfg: DockSection,
    tz: str,
) -> Assessment:
    a = Assessment()
    a.flags += check_identity(identity, enrolment)
    a.flags += check_health(battery, total, free, cfg)
    clock_flags, a.drift_s, a.correct_by_s = check_clock(reading, cfg, tz)
    a.flags += clock_flags
    if reading is not None:
        a.device_clock = reading.device_time.isoformat(timespec="milliseconds")
    return a
