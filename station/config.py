"""Typed settings from one TOML file (``$STATION_HOME/station.toml``).

Every setting has a default that runs out of the box; unknown keys and wrong types are rejected
with the key's dotted name and the file. Settings are read when asked for, never at import time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from station.errors import ConfigError

DEFAULT_FILENAME_PATTERNS = [
    # <device>_<officer>_<YYYYMMDDhhmmss>_<seq>[_IMP].<ext> — the common body-camera naming.
    r"(?:^|/)(?P<device>[A-Za-z0-9]+)_(?P<officer>[A-Za-z0-9]+)_(?P<start>\d{14})"
    r"_(?P<seq>\d+)(?P<imp>_IMP)?\.[A-Za-z0-9]+$",
    # DCIM/100XXXXX/FILE0001.MP4 — plain camera layout; time falls back to the file's mtime.
    r"(?:^|/)DCIM/\d{3}[A-Za-z0-9_]{5}/[A-Za-z_]{0,4}\d*?(?P<seq>\d{4})\.[A-Za-z0-9]+$",
]


@dataclass
class StationSection:
    id: str = "STATION-01"
    unit_id: str = "000000000000"
    unit_name: str = "执法单位 / Enforcement unit"
    timezone: str = "Asia/Shanghai"

    def validate(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"unknown time zone {self.timezone!r}", where="station.timezone"
            ) from exc


@dataclass
class IngestSection:
    chunk_kib: int = 1024
    verify_after_write: bool = True
    # R1: footage must reach the station within 24 h after the work ends.
    deadline_hours: float = 24.0
    # R2: stored within 2 working days; a policy, not code.
    deadline_working_days: int = 2
    filename_patterns: list[str] = field(default_factory=lambda: list(DEFAULT_FILENAME_PATTERNS))

    def validate(self) -> None:
        if not 64 <= self.chunk_kib <= 65536:
            raise ConfigError("must be between 64 and 65536", where="ingest.chunk_kib")
        if self.deadline_hours <= 0:
            raise ConfigError("must be positive", where="ingest.deadline_hours")
        for i, pat in enumerate(self.filename_patterns):
            try:
                re.compile(pat)
            except re.error as exc:
                raise ConfigError(
                    f"bad regular expression: {exc}", where=f"ingest.filename_patterns[{i}]"
                ) from exc


@dataclass
class DockSection:
    max_sessions: int = 8
    battery_low_pct: int = 20
    storage_full_pct: int = 90
    drift_threshold_s: float = 3.0
    implausible_drift_s: float = 86400.0
    clear_policy: str = "after-verify"
    mount_root: str = ""
    serial_timeout_s: float = 2.0

    def validate(self) -> None:
        if self.clear_policy not in ("off", "after-verify"):
            raise ConfigError("must be 'off' or 'after-verify'", where="dock.clear_policy")
        if self.max_sessions < 1:
            raise ConfigError("must be at least 1", where="dock.max_sessions")
        for key in ("drift_threshold_s", "implausible_drift_s", "serial_timeout_s"):
            value = getattr(self, key)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError("must be a positive finite number", where=f"dock.{key}")


@dataclass
class TranscodeSection:
    profile: str = "mp4-h264"
    workers: int = 1
    ffmpeg: str = ""  # empty: PATH, then imageio-ffmpeg
    ffprobe: str = ""  # empty: beside ffmpeg, then PATH
    nice: int = 10
    max_attempts: int = 3
    retry_base_s: float = 60.0  # back-off: base, 2×, 4× … up to retry_max_s
    retry_max_s: float = 3600.0
    idle_poll_s: float = 300.0  # how often an idle service looks for new recordings
    stop_grace_s: float = 10.0  # ffmpeg: terminate, wait this long, then kill
    crf: int = 20  # x264 quality of re-encodes
    preset: str = "veryfast"
    # mp4-h264 re-encodes H.265 to H.264 so every office PC plays the copy; true re-wraps it.
    keep_hevc: bool = False
    # Tolerance of a re-encode, picture by picture against the original (README).
    verify_min_psnr_db: float = 30.0
    verify_min_ssim: float = 0.90

    def validate(self) -> None:
        if self.profile not in ("mp4-h264", "ffv1-mkv", "off"):
            raise ConfigError("must be 'mp4-h264', 'ffv1-mkv' or 'off'", where="transcode.profile")
        if not 1 <= self.workers <= 16:
            raise ConfigError("must be between 1 and 16", where="transcode.workers")
        if not 0 <= self.nice <= 19:
            raise ConfigError("must be between 0 and 19", where="transcode.nice")
        if self.max_attempts < 1:
            raise ConfigError("must be at least 1", where="transcode.max_attempts")
        if self.retry_base_s < 0 or self.retry_max_s < self.retry_base_s:
            raise ConfigError(
                "need 0 <= retry_base_s <= retry_max_s", where="transcode.retry_base_s"
            )
        if self.idle_poll_s <= 0 or self.stop_grace_s < 0:
            raise ConfigError("must be positive", where="transcode.idle_poll_s")
        if not 0 <= self.crf <= 51:
            raise ConfigError("must be between 0 and 51", where="transcode.crf")
        if not 0 <= self.verify_min_psnr_db <= 100:
            raise ConfigError("must be between 0 and 100", where="transcode.verify_min_psnr_db")
        if not 0 <= self.verify_min_ssim <= 1:
            raise ConfigError("must be between 0 and 1", where="transcode.verify_min_ssim")


@dataclass
class RetentionSection:
    # R9: routine footage kept 6 months; a minimum, configurable only upwards.
    routine_months: int = 6
    # R10: case files kept 5 years after closure unless a law says otherwise.
    case_years: int = 5
    grace_days: int = 7

    def validate(self) -> None:
        if self.routine_months < 6:
            raise ConfigError("R9 requires at least 6 months", where="retention.routine_months")
        if self.case_years < 1:
            raise ConfigError("must be at least 1", where="retention.case_years")
        if self.grace_days < 0:
            raise ConfigError("must not be negative", where="retention.grace_days")
        if self.grace_days > 365:
            raise ConfigError("must be at most 365", where="retention.grace_days")


@dataclass
class ReportsSection:
    # R1/R2: which deadline makes an ingest late in the compliance report: the hours of
    # ingest.deadline_hours, the working days of ingest.deadline_working_days, or "either"
    # (late when it misses both). The deadline is policy, not code (R2).
    late_rule: str = "hours"
    # R2 working-day arithmetic: public holidays (YYYY-MM-DD) and make-up working days (调休).
    holidays: list[str] = field(default_factory=list)
    makeup_workdays: list[str] = field(default_factory=list)
    # R13: AV records archived within 30 days after the enforcement act ends (20 in seed 003).
    archive_days: int = 30
    # How far the retention report forecasts free space.
    forecast_days: int = 90

    def validate(self) -> None:
        if self.late_rule not in ("hours", "working-days", "either"):
            raise ConfigError(
                "must be 'hours', 'working-days' or 'either'", where="reports.late_rule"
            )
        for key in ("holidays", "makeup_workdays"):
            for i, text in enumerate(getattr(self, key)):
                try:
                    dt.date.fromisoformat(text)
                except ValueError as exc:
                    raise ConfigError(
                        f"not a date YYYY-MM-DD: {text!r}", where=f"reports.{key}[{i}]"
                    ) from exc
        if not 1 <= self.archive_days <= 366:
            raise ConfigError("must be between 1 and 366", where="reports.archive_days")
        if not 1 <= self.forecast_days <= 3650:
            raise ConfigError("must be between 1 and 3650", where="reports.forecast_days")


@dataclass
class DiscSection:
    media: str = "dvd"
    producer: str = ""

    def validate(self) -> None:
        if self.media not in ("dvd", "bd25", "bd50", "bd100"):
            raise ConfigError("must be dvd, bd25, bd50 or bd100", where="disc.media")


ARCHIVE_FIELDS = ("fonds", "category", "year", "retention", "item")
ARCHIVE_SCHEMES = ("dat22", "three-tier", "years")


@dataclass
class ArchiveSection:
    """档号 (archive numbers) and 保管期限 words for the archive office (README "Archive numbers").

    ``pattern`` is a Python format string over ``{fonds}`` (全宗号), ``{category}`` (门类代码),
    ``{year}`` (年度), ``{retention}`` (保管期限代码, e.g. Y/D30/D10) and ``{item}`` (件号,
    required, e.g. ``{item:04d}``); levels are joined by "-" (DA/T 13).
    ``retention_scheme``: ``dat22`` (永久 / 定期30年 / 定期10年), ``three-tier``
    (永久 / 长期 / 短期) or ``years`` (永久 / N年).
    """

    fonds: str = "0001"
    category: str = "SX"
    pattern: str = "{fonds}-{year}-{retention}-{item:04d}"
    retention_scheme: str = "dat22"

    def validate(self) -> None:
        import string

        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.pattern) if f is not None]
        except ValueError as exc:
            raise ConfigError(f"not a format pattern: {exc}", where="archive.pattern") from exc
        unknown = [f for f in fields if f not in ARCHIVE_FIELDS]
        if unknown or "item" not in fields:
            raise ConfigError(
                f"fields must be among {{{'}, {'.join(ARCHIVE_FIELDS)}}} and include {{item}}",
                where="archive.pattern",
            )
        try:
            self.pattern.format(fonds="F", category="C", year=2026, retention="Y", item=1)
        except (ValueError, KeyError, IndexError) as exc:
            raise ConfigError(f"cannot be filled in: {exc}", where="archive.pattern") from exc
        if self.retention_scheme not in ARCHIVE_SCHEMES:
            raise ConfigError(
                "must be 'dat22', 'three-tier' or 'years'", where="archive.retention_scheme"
            )
        if not self.fonds.strip():
            raise ConfigError("must not be empty", where="archive.fonds")


@dataclass
class InboxSection:
    # Watched inbox folders for devices without a dock; absolute paths.
    folders: list[str] = field(default_factory=list)
    # A drop is taken only after this long without any change (and, where inotify reports it,
    # with every written file closed by its writer).
    settle_seconds: float = 5.0
    # After a verified copy: remove the file from the inbox, or keep it (DESIGN invariant 2).
    after_verify: str = "remove"
    # auto: inotify on local file systems, polling on network shares; or force one of them.
    watch_mode: str = "auto"
    poll_seconds: float = 2.0
    # Bound of the watcher's event queue; when full the service rescans instead of growing.
    event_queue_max: int = 8192

    def validate(self) -> None:
        if self.after_verify not in ("keep", "remove"):
            raise ConfigError("must be 'keep' or 'remove'", where="inbox.after_verify")
        if self.watch_mode not in ("auto", "inotify", "poll"):
            raise ConfigError("must be 'auto', 'inotify' or 'poll'", where="inbox.watch_mode")
        if not 0 < self.settle_seconds <= 3600:
            raise ConfigError("must be between 0 and 3600 seconds", where="inbox.settle_seconds")
        if not 0.1 <= self.poll_seconds <= 600:
            raise ConfigError("must be between 0.1 and 600 seconds", where="inbox.poll_seconds")
        if self.event_queue_max < 16:
            raise ConfigError("must be at least 16", where="inbox.event_queue_max")
        for i, folder in enumerate(self.folders):
            if not folder.startswith("/"):
                raise ConfigError("must be an absolute path", where=f"inbox.folders[{i}]")


@dataclass
class FleetSection:
    """The unit's central store (R19): an S3 bucket with Object Lock and a central PostgreSQL.
    Empty ``s3_endpoint`` and ``postgres_dsn``: no replication."""

    s3_endpoint: str = ""
    bucket: str = ""
    access_key: str = ""
    secret_key_file: str = ""  # a file readable by the station only (mode 0600)
    region: str = ""
    postgres_dsn: str = ""
    bandwidth_mbps: float | None = None  # upload cap in megabits per second; none: no cap
    free_local_after_days: int | None = None  # none: never free local copies

    def validate(self) -> None:
        if self.s3_endpoint:
            if not self.s3_endpoint.startswith(("http://", "https://")):
                raise ConfigError("must start with http:// or https://", where="fleet.s3_endpoint")
            if not self.bucket:
                raise ConfigError("a bucket is needed with s3_endpoint", where="fleet.bucket")
            if not self.access_key or not self.secret_key_file:
                raise ConfigError(
                    "access_key and secret_key_file are needed with s3_endpoint",
                    where="fleet.access_key",
                )
        if self.secret_key_file and not self.secret_key_file.startswith("/"):
            raise ConfigError("must be an absolute path", where="fleet.secret_key_file")
        if self.bandwidth_mbps is not None and self.bandwidth_mbps <= 0:
            raise ConfigError("must be positive", where="fleet.bandwidth_mbps")
        if self.free_local_after_days is not None and self.free_local_after_days < 0:
            raise ConfigError("must not be negative", where="fleet.free_local_after_days")


@dataclass
class AuditSection:
    checkpoint_interval_minutes: int = 60
    verify_interval_hours: int = 24
    # Time-based destruction needs a trusted clock (station.clock): "auto" believes the host's
    # own "not synchronised" only where systemd-timesyncd runs; "required" also the kernel's
    # STA_UNSYNC (chrony, ntpd); "ignore" judges by the boot-time anchor alone.
    clock_sync: str = "auto"
    # Wall-clock steps within one boot up to this (plus 0.1 % of the elapsed time) are slew.
    clock_tolerance_s: float = 60.0

    def validate(self) -> None:
        if self.clock_sync not in ("auto", "required", "ignore"):
            raise ConfigError("must be auto, required or ignore", where="audit.clock_sync")
        if not 1 <= self.clock_tolerance_s <= 3600:
            raise ConfigError("must be between 1 and 3600", where="audit.clock_tolerance_s")


@dataclass
class VaultSection:
    # `station status` warns and the daemon raises a `vault_low_space` alert when the vault's
    # file system has less than this share free (well before ingest stops on a full disk).
    low_space_percent: float = 10.0
    # How often the daemon looks at the free space.
    space_check_minutes: float = 10.0

    def validate(self) -> None:
        if not 0 < self.low_space_percent < 100:
            raise ConfigError("must be between 0 and 100", where="vault.low_space_percent")
        if not 0 < self.space_check_minutes <= 1440:
            raise ConfigError("must be between 0 and 1440", where="vault.space_check_minutes")


@dataclass
class LogSection:
    level: str = "info"

    def validate(self) -> None:
        if self.level not in ("debug", "info", "warning", "error"):
            raise ConfigError("must be debug, info, warning or error", where="log.level")


@dataclass
class WebSection:
    """The screens: kiosk ``/``, office pages ``/office/``, JSON ``/api/`` (``station run`` and
    ``station web``). Anything but a loopback address needs ``tls_cert`` and ``tls_key``."""

    listen: str = "127.0.0.1:8470"  # "" : station run serves no screens
    tls_cert: str = ""  # PEM certificate chain
    tls_key: str = ""  # PEM private key
    session_idle_minutes: float = 30.0  # an office login ends after this long without a request
    session_max_hours: float = 12.0  # and after this long in any case

    def validate(self) -> None:
        if self.listen:
            host, sep, port = self.listen.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(
                    f"expected HOST:PORT, got {self.listen!r}",
                    where="web.listen",
                    hint="e.g. 127.0.0.1:8470",
                )
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("give both tls_cert and tls_key, or neither", where="web.tls_cert")
        if self.session_idle_minutes <= 0 or self.session_max_hours <= 0:
            raise ConfigError("must be positive", where="web.session_idle_minutes")


@dataclass
class Settings:
    station: StationSection = field(default_factory=StationSection)
    ingest: IngestSection = field(default_factory=IngestSection)
    dock: DockSection = field(default_factory=DockSection)
    transcode: TranscodeSection = field(default_factory=TranscodeSection)
    retention: RetentionSection = field(default_factory=RetentionSection)
    reports: ReportsSection = field(default_factory=ReportsSection)
    disc: DiscSection = field(default_factory=DiscSection)
    archive: ArchiveSection = field(default_factory=ArchiveSection)
    inbox: InboxSection = field(default_factory=InboxSection)
    audit: AuditSection = field(default_factory=AuditSection)
    fleet: FleetSection = field(default_factory=FleetSection)
    vault: VaultSection = field(default_factory=VaultSection)
    log: LogSection = field(default_factory=LogSection)
    web: WebSection = field(default_factory=WebSection)

    def validate(self) -> None:
        """Settings that only make sense together (DESIGN.md invariant 2): clearing a recorder
        or the inbox needs the re-read that proves each copy, so switching the re-read off
        while a clearing setting is on is refused — by ``station config check``, and by every
        command and the daemon when they load the settings."""
        if self.ingest.verify_after_write:
            return
        clearing = []
        if self.dock.clear_policy == "after-verify":
            clearing.append('dock.clear_policy = "after-verify"')
        if self.inbox.after_verify == "remove":
            clearing.append('inbox.after_verify = "remove"')
        if clearing:
            raise ConfigError(
                "ingest.verify_after_write = false together with "
                + " and ".join(clearing)
                + " would clear files whose vault copy was never re-read / "
                "关闭写后校验时不得清除记录仪或收件箱中的文件",
                where="ingest.verify_after_write",
                hint='keep verify_after_write = true, or set dock.clear_policy = "off" and '
                'inbox.after_verify = "keep"',
            )


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"expected a list, got {type(value).__name__}", where=where)
        return [_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for alt in typing.get_args(tp):
            try:
                return _check_type(value, alt, where)
            except ConfigError:
                continue
        raise ConfigError(f"unexpected value {value!r}", where=where)
    if tp is type(None):
        if value is not None:
            raise ConfigError("expected nothing", where=where)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"expected a number, got {value!r}", where=where)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", where=where)
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"expected {tp.__name__}, got {value!r}", where=where)
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError("expected a table", where=where)
        return _build(tp, value, where)
    raise ConfigError(f"unsupported setting type {tp}", where=where)


def _build(cls: Any, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            known = ", ".join(sorted(names))
            raise ConfigError(f"unknown key {where!r}", where=where, hint=f"known here: {known}")
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        kwargs[key] = _check_type(value, hints[key], where)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj


def parse_settings(data: dict[str, Any], source: str = "<settings>") -> Settings:
    try:
        return typing.cast(Settings, _build(Settings, data, ""))
    except ConfigError as exc:
        exc.where = f"{source}: {exc.where}" if exc.where else source
        raise ConfigError(exc.message, where=exc.where, hint=exc.hint) from None


SETTINGS_MAX_BYTES = 1 << 20


def load_settings(path: Path | None) -> Settings:
    """Read settings from ``path``; a missing file gives the defaults."""
    if path is None or not path.exists():
        return Settings()
    from station.safeload import LoadError, loads_toml, read_bounded

    try:
        data = loads_toml(read_bounded(path, SETTINGS_MAX_BYTES).decode("utf-8"))
    except LoadError as exc:
        raise ConfigError(str(exc), where=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text", where=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", where=str(path)) from exc
    return parse_settings(data, str(path))


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


# -- `station config check`: every problem at once, in both languages --------------------------


@dataclass(frozen=True)
class Problem:
    """One problem in a settings file: the key, what is wrong (中文 / English), what is allowed."""

    key: str
    zh: str
    en: str
    allowed: str = ""
    hint: str = ""

    def render(self) -> str:
        text = f"{self.key}: {self.zh} / {self.en}"
        if self.allowed:
            text += f"（允许 / allowed: {self.allowed}）"
        if self.hint:
            text += f" — {self.hint}"
        return text

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "zh": self.zh, "en": self.en, "allowed": self.allowed}


_TYPE_WORDS: dict[Any, str] = {
    int: "整数 / an integer",
    float: "数字 / a number",
    str: '带引号的文本 / text in quotes ("…")',
    bool: "true / false",
}

# The English constraint texts of the sections' checks, said in Chinese too.
_ZH_RULES: list[tuple[str, str]] = [
    (r"must be between (\S+) and (\S+)", r"须在 \1 与 \2 之间"),
    (r"must be positive", "须为正数"),
    (r"must not be negative", "不得为负数"),
    (r"must not be empty", "不能为空"),
    (r"must start with (.+)", r"须以 \1 开头"),
    (r"must be (?:one of )?(.+)", r"须为 \1"),
    (r"unknown time zone (.+)", r"未知时区 \1"),
    (r"expected an integer, got (.+)", r"应为整数，实为 \1"),
    (r"expected a number, got (.+)", r"应为数字，实为 \1"),
    (r"expected str, got (.+)", r"应为文本，实为 \1"),
    (r"expected bool, got (.+)", r"应为 true 或 false，实为 \1"),
    (r"expected a list, got (.+)", r"应为列表，实为 \1"),
    (r"expected a table", "应为表（[节]）"),
]
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _zh(message: str) -> str:
    for pattern, words in _ZH_RULES:
        m = re.fullmatch(pattern, message)
        if m:
            return m.expand(words).replace(" or ", "、").replace(", ", "、")
    return "取值无效"


def _allowed_by_type(tp: Any) -> str:
    if typing.get_origin(tp) is list:
        (inner,) = typing.get_args(tp)
        return f"列表 / a list of {_TYPE_WORDS.get(inner, getattr(inner, '__name__', inner))}"
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " 或 / or ".join(_allowed_by_type(a) for a in typing.get_args(tp) if a is not None)
    if tp is type(None):
        return "不设 / left out"
    return _TYPE_WORDS.get(tp, getattr(tp, "__name__", str(tp)))


def _problem(exc: ConfigError, key: str, tp: Any = None) -> Problem:
    message = exc.message
    if _CJK.search(message) and " / " in message:  # already bilingual, either order
        left, _, right = message.partition(" / ")
        zh, en = (right, left) if _CJK.search(right) and not _CJK.search(left) else (left, right)
        return Problem(exc.where or key, zh, en, "", exc.hint or "")
    allowed = _allowed_by_type(tp) if tp is not None else ""
    m = re.fullmatch(r"must be (?:one of )?(.+)", message)
    if m and not allowed:
        allowed = m.group(1)
    if "time zone" in message:
        allowed = "IANA 时区名 / an IANA zone name, e.g. Asia/Shanghai"
    return Problem(exc.where or key, _zh(message), message, allowed, exc.hint or "")


def check_settings_data(data: dict[str, Any]) -> list[Problem]:
    """Every problem of a parsed settings file, not just the first: unknown sections and keys
    (with the known ones), wrong types (with the type wanted), each section's own checks (the
    first per section: they depend on each other), then the checks across sections."""
    problems: list[Problem] = []
    hints = typing.get_type_hints(Settings)
    built: dict[str, Any] = {}
    for section, value in data.items():
        if section not in hints:
            problems.append(
                Problem(section, "未知的配置节", "unknown section", ", ".join(sorted(hints)))
            )
            continue
        if not isinstance(value, dict):
            problems.append(Problem(section, "应为表", "expected a table", f"[{section}]"))
            continue
        cls = hints[section]
        fields = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        said: set[str] = set()
        for name, raw in value.items():
            key = f"{section}.{name}"
            if name not in fields:
                problems.append(
                    Problem(key, "未知的配置项", "unknown key", ", ".join(sorted(fields)))
                )
                continue
            try:
                kwargs[name] = _check_type(raw, fields[name], key)
            except ConfigError as exc:
                problems.append(_problem(exc, key, fields[name]))
                said.add(key)
        # the section's own check over the values that are right (the wrong ones at their
        # defaults), so a bad choice is said beside a wrong type
        try:
            obj = cls(**kwargs)
            validate = getattr(obj, "validate", None)
            if validate is not None:
                validate()
            built[section] = obj
        except ConfigError as exc:
            if (exc.where or section) not in said:
                problems.append(_problem(exc, section))
    if not problems:
        try:
            Settings(**built).validate()
        except ConfigError as exc:
            problems.append(_problem(exc, ""))
    return problems


def defaults_in_force(data: dict[str, Any]) -> list[str]:
    """The keys the file does not set (their defaults are in force), as ``section.key``."""
    out = []
    for section, value in settings_as_dict(Settings()).items():
        raw = data.get(section)
        given = raw if isinstance(raw, dict) else {}
        out += [f"{section}.{k}" for k in value if k not in given]
    return out
