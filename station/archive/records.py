"""Metadata records of audio-visual electronic records (录音录像类电子档案元数据), one per
recording as archived (a case item or a recording on its own), and one per disc, as UTF-8 XML
that a person can read (Chinese, unescaped, indented) and a machine can check: every record is
validated against the station's schema ``schema/station-av-record-1.xsd`` before it is written.

The record follows the entities of DA/T 63-2017: the record itself (档案实体: 档号, 全宗号, 年度,
保管期限, 题名 (M7), 门类, times, producer, device, every computer file with its format
information, size and SHA-256 digest), the agents (机构人员实体, M88 机构人员标识符) and the
business/management activities taken from the audit log (业务实体: each 管理活动 with its
管理活动标识符 (M83) = the audit sequence number, 管理行为, time, actor, 关联实体标识符 (M87) and
the audit entry's hash, so the record can be checked against the log).

``build_record``/``build_disc_record`` are pure (facts in, bytes out); ``collect`` reads the
catalog, the audit log and ffprobe.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils
from lxml import etree

from station.archive.numbers import ArchiveNumber
from station.errors import RecordInvalidError, StationError
from station.log import get
from station.timeutil import parse_iso

log = get()

NS = "urn:station:av-record:1"
BASIS = "DA/T 63-2017 录音录像类电子档案元数据方案（本站方案 station-av-record/1）"
SCHEMA_FILE = "station-av-record-1.xsd"

# 管理行为 for the audit events a record lists (the event name stays beside it).
BEHAVIOURS = {
    "recording.ingested": "采集接收 / ingest",
    "ingest.file_stored": "采集接收 / ingest",
    "recording.restored_by_ingest": "重新采集 / restored by ingest",
    "derivative.created": "格式转换 / transcode",
    "derivative.failed": "格式转换失败 / transcode failed",
    "derivative.retagged": "副本元数据更新 / derivative retagged",
    "case.created": "立案登记 / case created",
    "case.linked": "关联案件 / linked to case",
    "case.unlinked": "解除关联 / unlinked",
    "case.long_term_marked": "长期保存标记 / long-term mark",
    "case.closed": "结案 / case closed",
    "case.reopened": "重新立案 / reopened",
    "case.archive_recorded": "归档登记 / archive location",
    "recording.tagged": "著录 / tagged",
    "recording.long_term_marked": "长期保存标记 / long-term mark",
    "recording.held": "保全 / legal hold",
    "recording.released": "解除保全 / hold released",
    "recording.reviewed": "审核 / reviewed",
    "access.requested": "调阅申请 / access requested",
    "access.approved": "审批 / approval",
    "access.refused": "审批拒绝 / refused",
    "access.viewed": "调阅 / viewed",
    "access.exported": "导出 / exported",
    "archive.number_assigned": "编制档号 / archive number",
    "disc.job_created": "刻录任务 / disc job",
    "disc.image_built": "刻录 / disc image built",
    "disc.marked_burned": "刻录 / burned",
    "disc.burn_failed": "刻录失败 / burn failed",
    "retention.pending": "待清除 / pending purge",
    "retention.restored": "恢复保存 / restored",
    "spotcheck.recorded": "抽查 / spot check",
}


@dataclass(frozen=True)
class FileFacts:
    role: str  # 原始文件 | 归档副本
    name: str
    size: int
    sha256: str
    location: str | None = None
    format_name: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    resolution: str | None = None
    fps: float | None = None
    sample_rate: int | None = None
    duration: float | None = None
    method: str | None = None


@dataclass(frozen=True)
class CaseFacts:
    number: str
    name: str
    cause: str | None = None
    party: str | None = None
    long_term: str | None = None
    archive_number: str | None = None


@dataclass(frozen=True)
class Action:
    seq: int
    event: str
    at: str
    actor: str
    subject: str | None
    description: str | None
    entry_hash: str


@dataclass(frozen=True)
class RecordFacts:
    archive: ArchiveNumber
    station_decision: str
    title: str
    media_kind: str  # video | audio
    ingested_at: str
    files: list[FileFacts]
    cases: list[CaseFacts] = field(default_factory=list)
    proves: str | None = None
    start: str | None = None
    end: str | None = None
    local_time: str | None = None
    device_time: str | None = None
    drift_s: float | None = None
    time_source: str | None = None
    producer: str | None = None
    unit: str | None = None
    device: str | None = None
    method: str | None = None
    agents: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    generated_at: str = ""


def _el(parent: Any, tag: str, text: object = None, **attrs: object) -> Any:
    e = etree.SubElement(parent, f"{{{NS}}}{tag}")
    for k, v in attrs.items():
        if v is not None:
            e.set(k, str(v))
    if text is not None:
        e.text = str(text)
    return e


def _opt(parent: Any, tag: str, value: object) -> None:
    if value not in (None, ""):
        _el(parent, tag, value)


def _xml_time(text: str) -> str:
    """ISO 8601 as xs:dateTime (the catalog's trailing Z and microseconds are fine)."""
    return parse_iso(text).isoformat().replace("+00:00", "Z")


def _case(parent: Any, c: CaseFacts, tag: str = "案件") -> Any:
    e = _el(parent, tag, 编号=c.number, 档号=c.archive_number)
    _el(e, "名称", c.name)
    _opt(e, "案由", c.cause)
    _opt(e, "当事人", c.party)
    _opt(e, "长期保存理由", c.long_term)
    return e


def _file(parent: Any, f: FileFacts) -> None:
    e = _el(parent, "计算机文件", 角色=f.role)
    _el(e, "文件名", f.name)
    _opt(e, "存储位置", f.location)
    _el(e, "文件大小", f.size)
    _opt(e, "格式名称", f.format_name)
    _opt(e, "视频编码", f.video_codec)
    _opt(e, "音频编码", f.audio_codec)
    _opt(e, "分辨率", f.resolution)
    _opt(e, "帧率", None if f.fps is None else round(f.fps, 3))
    _opt(e, "音频采样率", f.sample_rate)
    _opt(e, "时长秒", None if f.duration is None else round(f.duration, 3))
    _opt(e, "转换方法", f.method)
    _el(e, "数字摘要", f.sha256, 算法="SHA-256")


def _serialise(root: Any) -> bytes:
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate(data)
    return data


def build_record(f: RecordFacts) -> bytes:
    """One recording's metadata record (validated)."""
    a = f.archive
    root = etree.Element(f"{{{NS}}}录音录像类电子档案", nsmap={None: NS})
    root.set("版本", "1")
    root.set("依据", BASIS)
    root.set("生成时间", _xml_time(f.generated_at))
    rec = _el(root, "档案实体")
    _el(rec, "聚合层次", "件")
    _el(rec, "档号", a.number)
    _el(rec, "全宗号", a.fonds)
    _el(rec, "年度", a.year)
    _el(rec, "保管期限", a.retention_words, 代码=a.retention_code)
    _el(rec, "站内保存决定", f.station_decision, 规则=a.retention_rule, 年限=a.retention_years)
    _el(rec, "件号", a.item)
    _el(rec, "题名", f.title)
    _el(rec, "门类", "录音" if f.media_kind == "audio" else "录像")
    for c in f.cases:
        _case(rec, c)
    _opt(rec, "证明对象", f.proves)
    times = _el(rec, "摄制时间")
    if f.start:
        _el(times, "开始时间", _xml_time(f.start))
    if f.end:
        _el(times, "结束时间", _xml_time(f.end))
    _opt(times, "北京时间", f.local_time)
    _opt(times, "设备时间", f.device_time)
    _opt(times, "时钟偏差秒", f.drift_s)
    _opt(times, "时间来源", f.time_source)
    _opt(rec, "摄制者", f.producer)
    _opt(rec, "摄制单位", f.unit)
    _opt(rec, "摄制设备", f.device)
    _opt(rec, "摄制方式", f.method)
    _el(rec, "采集时间", _xml_time(f.ingested_at))
    for file in f.files:
        _file(rec, file)
    agents = _el(root, "机构人员实体")
    for ident, kind, name, role in f.agents:
        ag = _el(agents, "机构人员", 机构人员标识符=ident, 类型=kind)
        _el(ag, "名称", name)
        _opt(ag, "职责", role)
    business = _el(root, "业务实体")
    for act in f.actions:
        e = _el(business, "管理活动", 管理活动标识符=act.seq)
        _el(e, "管理行为", BEHAVIOURS.get(act.event, act.event))
        _el(e, "事件", act.event)
        _el(e, "行为时间", _xml_time(act.at))
        _el(e, "行为人", act.actor)
        _opt(e, "关联实体标识符", act.subject)
        _opt(e, "行为描述", act.description)
        _el(e, "审计记录摘要", act.entry_hash)
    return _serialise(root)


@dataclass(frozen=True)
class DiscFile:
    path: str
    role: str
    size: int
    sha256: str
    archive_number: str | None = None
    record: str | None = None


@dataclass(frozen=True)
class DiscCase:
    case: CaseFacts
    retention_code: str
    retention_words: str
    rule: str
    years: int | None
    station_decision: str


@dataclass(frozen=True)
class DiscFacts:
    volume_id: str
    job_id: int
    disc_no: int
    discs_total: int
    media: str
    unit: str
    producer: str
    created_at: str
    station_id: str
    cases: list[DiscCase]
    files: list[DiscFile]


def build_disc_record(d: DiscFacts) -> bytes:
    """The disc's record: who made it when, its cases with 档号 and 保管期限, every file."""
    root = etree.Element(f"{{{NS}}}档案光盘", nsmap={None: NS})
    root.set("版本", "1")
    root.set("依据", BASIS)
    _el(root, "卷标", d.volume_id)
    _el(root, "任务", d.job_id)
    _el(root, "光盘序号", d.disc_no)
    _el(root, "光盘总数", d.discs_total)
    _el(root, "份别", "一式两份（甲/A、乙/B），内容相同 / two copies A and B, same content")
    _el(root, "介质", d.media)
    _el(root, "制作单位", d.unit)
    _el(root, "制作人", d.producer)
    _el(root, "制作时间", _xml_time(d.created_at))
    _el(root, "采集站", d.station_id)
    for c in d.cases:
        e = _case(root, c.case)
        _el(e, "保管期限", c.retention_words, 代码=c.retention_code)
        _el(e, "站内保存决定", c.station_decision, 规则=c.rule, 年限=c.years)
    for f in d.files:
        e = _el(root, "文件", 路径=f.path, 角色=f.role, 大小=f.size, 档号=f.archive_number,
                元数据记录=f.record)  # fmt: skip
        _el(e, "数字摘要", f.sha256, 算法="SHA-256")
    return _serialise(root)


@cache
def schema() -> etree.XMLSchema:
    text = resources.files("station.archive").joinpath("schema", SCHEMA_FILE).read_bytes()
    return etree.XMLSchema(etree.fromstring(text))


def schema_bytes() -> bytes:
    return resources.files("station.archive").joinpath("schema", SCHEMA_FILE).read_bytes()


def validate(data: bytes) -> None:
    """Raise RecordInvalidError unless ``data`` is valid against the station's schema."""
    doc = etree.fromstring(data)
    s = schema()
    if not s.validate(doc):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(s.error_log)[:5])
        log.error("archive.record_invalid", errors=errors)
        raise RecordInvalidError(f"元数据记录无效 / invalid metadata record: {errors}")


# --- collecting the facts from the catalog -------------------------------------------------


def actions_for(db: sqlite_utils.Database, subjects: list[str], shas: list[str]) -> list[Action]:
    """Audit entries about ``subjects`` (hashes, case numbers, ``case:N``) and the access
    requests/exports that name one of ``shas`` in their data, in log order."""
    found: dict[int, dict[str, Any]] = {}
    uniq = list(dict.fromkeys(s for s in subjects if s))
    if uniq:
        marks = ",".join("?" * len(uniq))
        for row in db.query(f"select * from audit_log where subject in ({marks})", uniq):
            found[row["seq"]] = row
    for sha in dict.fromkeys(shas):
        for row in db.query(
            "select * from audit_log where event like 'access.%' and instr(data, ?) > 0", [sha]
        ):
            found[row["seq"]] = row
        requests = [
            r["subject"]
            for r in found.values()
            if r["event"].startswith("access.") and (r["subject"] or "").startswith("request:")
        ]
        if requests:
            marks = ",".join("?" * len(requests))
            for row in db.query(
                f"select * from audit_log where subject in ({marks})", list(dict.fromkeys(requests))
            ):
                found[row["seq"]] = row
    out = []
    for seq in sorted(found):
        r = found[seq]
        data = r["data"]
        try:
            parsed = json.loads(data)
            desc = json.dumps(parsed, ensure_ascii=False, sort_keys=True)[:1000]
        except json.JSONDecodeError:
            desc = data[:1000]
        out.append(
            Action(seq, r["event"], r["at"], r["actor"], r["subject"], desc, r["entry_hash"])
        )
    return out


_PROBE_LOCK = threading.Lock()
_TOOLS: dict[tuple[str, str], Any] = {}


def probe_file(path: Path, settings: Any, cache_dir: Path | None = None) -> dict[str, Any]:
    """Format information for a record: from the file's boxes when it is a plain H.264 + AAC
    MP4/MOV (``mp4facts``: ffprobe's values, no process), else from ffprobe."""
    from station.archive.mp4facts import record_facts

    facts = record_facts(path)
    return facts if facts is not None else ffprobe_facts(path, settings, cache_dir)


def ffprobe_facts(path: Path, settings: Any, cache_dir: Path | None = None) -> dict[str, Any]:
    """Format information from ffprobe; an empty dict when ffprobe is missing or fails.
    ``cache_dir``: where the ffmpeg version is remembered (``find_tools``)."""
    from station.transcode.binaries import find_tools
    from station.transcode.probe import probe

    key = (settings.transcode.ffmpeg, settings.transcode.ffprobe)
    try:
        with _PROBE_LOCK:  # one tool look-up (it runs `ffmpeg -version`) per setting
            tools = _TOOLS.get(key)
            if tools is None:
                tools = _TOOLS[key] = find_tools(settings, cache_dir)
        info = probe(tools, path, workdir=_workdir(), nice=0)
    except (StationError, OSError) as exc:
        log.warning("archive.probe_failed", path=str(path), error=str(exc))
        return {}
    return facts_of(info)


def facts_of(info: Any) -> dict[str, Any]:
    """The record's format facts from a probe's ``MediaInfo``: the first video and the first
    audio stream, the container and the duration."""
    video = info.video[0] if info.video else None
    audio = info.audio[0] if info.audio else None
    return {
        "format_name": info.format_name,
        "video_codec": video.codec if video else None,
        "audio_codec": audio.codec if audio else None,
        "resolution": f"{video.width}x{video.height}" if video and video.width else None,
        "fps": video.fps if video else None,
        "sample_rate": audio.sample_rate if audio else None,
        "duration": info.duration,
    }


def probe_files(
    paths: list[Path], settings: Any, cache_dir: Path | None = None, workers: int = 2
) -> dict[Path, dict[str, Any]]:
    """``probe_file`` of every path, ``workers`` ffprobe runs at a time (each waits mostly on
    its child), for ``recording_facts(probed=...)``."""
    from concurrent.futures import ThreadPoolExecutor

    unique = list(dict.fromkeys(paths))
    if len(unique) < 2:
        return {p: probe_file(p, settings, cache_dir) for p in unique}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        return dict(
            zip(unique, pool.map(lambda p: probe_file(p, settings, cache_dir), unique), strict=True)
        )


def _workdir() -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / "station-archive-probe"


def local_text(iso: str | None, tz: str) -> str | None:
    if not iso:
        return None
    return parse_iso(iso).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S (%Z)")


def case_facts(db: sqlite_utils.Database, number: str, archive_number: str | None) -> CaseFacts:
    from station.retention.policy import R11_REASONS

    row = db.execute(
        "select name, cause, party, long_term_reason from cases where number = ?", [number]
    ).fetchone()
    if row is None:
        raise StationError(f"没有这个案件 / no such case: {number!r}", where="cases")
    lt = None
    if row[3] is not None:
        zh, en = R11_REASONS.get(row[3], ("?", "?"))
        lt = f"{row[3]}. {zh} / {en} (R11)"
    return CaseFacts(number, row[0], row[1], row[2], lt, archive_number)


def recording_facts(
    vault_home: Path,
    db: sqlite_utils.Database,
    settings: Any,
    sha256: str,
    *,
    archive: ArchiveNumber,
    station_decision: str,
    cases: list[CaseFacts],
    locations: dict[str, str] | None = None,
    generated_at: str,
    probed: dict[Path, dict[str, Any]] | None = None,
) -> RecordFacts:
    """Everything a recording's record says, from the catalog, the audit log and ffprobe.
    ``locations`` maps a file's SHA-256 to where it is in the package (disc path, export file);
    ``probed``: ffprobe's findings already gathered (``probe_files``), by vault path."""
    locations = locations or {}

    def probe_of(rel: str) -> dict[str, Any]:
        path = vault_home / rel
        if probed is not None and path in probed:
            return probed[path]
        return probe_file(path, settings, vault_home / "run")

    rows = list(
        db.query(
            "select r.*, o.name as officer_name, u.name as unit_name, d.model as device_model"
            " from recordings r left join officers o on o.officer_id = r.officer_id"
            " left join units u on u.unit_id = r.unit_id"
            " left join devices d on d.device_id = r.device_id where r.sha256 = ?",
            [sha256],
        )
    )
    if not rows:
        raise StationError(f"没有这段录像 / no such recording: {sha256}", where="recordings")
    r = rows[0]
    tz = settings.station.timezone
    files = [
        FileFacts(
            "原始文件",
            r["original_name"],
            r["size"],
            sha256,
            locations.get(sha256),
            **probe_of(r["vault_path"]),
        )
    ]
    derivative_shas = []
    for d in db.query(
        "select * from derivatives where original_sha256 = ? and state = 'done' order by profile",
        [sha256],
    ):
        derivative_shas.append(d["sha256"])
        stem = r["original_name"].rsplit(".", 1)[0]
        files.append(
            FileFacts(
                "归档副本",
                f"{stem}.{d['profile']}.{d['ext']}",
                d["size"],
                d["sha256"],
                locations.get(d["sha256"]),
                **probe_of(d["vault_path"]),
                method=f"{d['profile']} / {d['method']}",
            )
        )
    subjects = [sha256, *derivative_shas]
    for c in cases:
        subjects += [c.number, f"case:{c.number}"]
    actions = actions_for(db, subjects, [sha256])
    officer = " ".join(str(x) for x in (r["officer_id"], r["officer_name"]) if x) or None
    unit = " ".join(str(x) for x in (r["unit_id"], r["unit_name"]) if x) or None
    device = " ".join(str(x) for x in (r["device_id"], r["device_model"]) if x) or None
    agents: list[tuple[str, str, str, str | None]] = []
    if r["unit_id"] or settings.station.unit_id:
        agents.append(
            (
                r["unit_id"] or settings.station.unit_id,
                "机构",
                r["unit_name"] or settings.station.unit_name,
                "摄制单位 / producing unit",
            )
        )
    if r["officer_id"]:
        agents.append(
            (r["officer_id"], "个人", r["officer_name"] or r["officer_id"], "执法人员 / officer")
        )
    agents.append((settings.station.id, "系统", "执法信息采集站 / ingest station", "采集 / ingest"))
    seen = {a[0] for a in agents}
    for act in actions:
        if act.actor not in seen:
            seen.add(act.actor)
            agents.append((act.actor, "个人", act.actor, "经办 / acted in the log"))
    local = local_text(r["recorded_at"], tz)
    who = r["officer_name"] or r["officer_id"] or ""
    if cases:
        title = f"{cases[0].name}（{cases[0].number}）执法记录仪录像 {who} {local or ''}".strip()
    else:
        title = f"执法记录仪录像 {who} {local or r['original_name']}".strip()
    return RecordFacts(
        archive=archive,
        station_decision=station_decision,
        title=title,
        media_kind="audio" if r["media_kind"] == "audio" else "video",
        ingested_at=r["ingested_at"],
        files=files,
        cases=cases,
        proves=r.get("proves"),
        start=r["recorded_at"],
        end=r["end_at"],
        local_time=local,
        device_time=r["recorded_at_device"],
        drift_s=r["drift_s"],
        time_source=r["time_source"],
        producer=officer,
        unit=unit,
        device=device,
        method=r["method"],
        agents=agents,
        actions=actions,
        generated_at=generated_at,
    )
