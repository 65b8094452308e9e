"""Disc jobs in the catalog: plan, build (two copies, R12), read back, record (R11–R13).

Every state change of a disc and its audit entry are written in one transaction (DESIGN.md
invariant 3); the long work (writing and reading images) happens between transactions.
"""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from station.audit.log import append as audit
from station.catalog import write_txn
from station.config import Settings
from station.disc_burn import names
from station.disc_burn.content import (
    JobContent,
    assign_archive_numbers,
    load_content,
    signed_excerpt,
    station_fingerprint,
)
from station.disc_burn.image import ImageSpec, write_images
from station.disc_burn.label import LabelData, LabelPrinter, write_html
from station.disc_burn.layout import DISC_RECORD, RECORD_SCHEMA, Layout, lay_out
from station.disc_burn.manifest import DiscIdentity, build_files
from station.disc_burn.media import Media, get_media
from station.disc_burn.plan import Plan, plan_discs
from station.disc_burn.progress import DiscProgress, ProgressFn, check_stop
from station.disc_burn.readback import Expected, ReadbackResult, read_back
from station.errors import ConfigError, IntegrityError, StationError
from station.log import get
from station.timeutil import to_iso, utcnow
from station.vault import Vault

log = get()
LABEL_SHEET = "labels-all.pdf"  # the job's one printable sheet
COPIES = ("A", "B")
CONTENT_READERS = ("7zip-iso", "7zip-udf")  # the readers of copy A's, copy B's contents


class LabelFactsError(ConfigError):
    """A fact the disc label must carry (R12) is missing or still a placeholder /
    标签信息缺失或仍为占位值."""


PLACEHOLDER_UNIT_IDS = ("", "000000000000")


def account_name(db: sqlite_utils.Database, actor: str) -> str | None:
    """The person's name recorded for a login account (``users.display_name``), if any."""
    row = db.execute("select display_name from users where name = ?", [actor]).fetchone()
    return row[0].strip() if row and row[0] and row[0].strip() else None


def label_facts(settings: Settings, producer: str | None, person: str | None = None) -> str:
    """R12: the label names the producing unit and the producer (a person). Refuses the
    placeholders a fresh station starts with — the unit ``执法单位`` and unit id 000000000000 —
    and a missing producer. The producer is ``producer`` (``--producer``), else
    ``disc.producer``, else ``person`` (the account's recorded name) — never the login name.
    Returns the producer's name."""
    from station.config import StationSection

    unit = settings.station.unit_name.strip()
    default = StationSection()
    if not unit or unit in (default.unit_name, "执法单位", "Enforcement unit"):
        raise LabelFactsError(
            "制作单位仍为占位值，标签须写明单位全称 (R12) / the producing unit is the placeholder "
            f"{unit!r}; the label needs the unit's real name",
            where="station.unit_name",
            hint='station config set station.unit_name="某市城市管理行政执法局" (admin)',
        )
    if settings.station.unit_id.strip() in PLACEHOLDER_UNIT_IDS:
        raise LabelFactsError(
            "单位代码仍为占位值 (R12) / the unit id is the placeholder "
            f"{settings.station.unit_id!r}; it goes into every volume id",
            where="station.unit_id",
            hint="station config set station.unit_id=<the unit's code> (admin)",
        )
    who = (producer if producer is not None else settings.disc.producer).strip() or (person or "")
    if not who:
        raise LabelFactsError(
            "no producer: the label names the person who made the disc, not a login name / "
            "未填写制作人 (R12)",
            where="disc.producer",
            hint="pass --producer 姓名, set disc.producer in station.toml (admin), or record "
            "the account's name (`station users add … --display-name 姓名`)",
        )
    return who


def make_plan(
    vault: Vault,
    db: sqlite_utils.Database,
    numbers: list[str],
    media_key: str,
    *,
    require_long_term: bool = True,
) -> tuple[JobContent, Plan, Media]:
    try:
        media = get_media(media_key)
        content = load_content(vault, db, numbers, require_long_term=require_long_term)
        return content, plan_discs(content.cases, media), media
    except StationError as exc:
        # bad input: a clear error for the caller, a stable event for the log (invariant 7)
        log.error("disc.plan_refused", cases=numbers, reason=type(exc).__name__, error=exc.render())
        raise


@dataclass
class DiscOutcome:
    disc_no: int
    copy: str
    volume_id: str
    image: Path
    image_sha256: str
    image_size: int
    verified: bool
    problems: list[str]
    label_html: Path
    label_pdf: Path


@dataclass
class _Job:
    """What every image of one job shares."""

    vault: Vault
    db: sqlite_utils.Database
    settings: Settings
    job_id: int
    discs_total: int
    media: Media
    folder: Path
    actor: str
    verify: bool
    progress: ProgressFn | None
    stop: threading.Event | None
    produced_at: str  # R12 production time, local
    producer: str  # R12 producer
    archive: list[tuple[str, str, str]] = field(default_factory=list)  # (case, 档号, 保管期限)
    labels: list[LabelData] = field(default_factory=list)  # every copy's label, in build order
    fingerprint: str | None = None  # the station key's, printed on the label (R7)
    created_at: str | None = None  # R12 production time, ISO (the disc's own files' time)
    printer: LabelPrinter = field(default_factory=LabelPrinter)  # PDFs, in a child process


@dataclass
class _Disc:
    """One disc's content, the same for copy A and copy B."""

    disc_no: int
    layout: Layout
    support: dict[str, bytes]
    expected: list[Expected]
    cases: list[tuple[str, str]]  # (number, name)
    times: dict[str, str] = field(default_factory=dict)  # disc path -> the recording's start


def _local(iso: str, tz: str) -> str:
    """The production time on the label: ``2026-12-01 18:23 北京时间`` (never "CST")."""
    from station.timeutil import human_time, zone_short

    return f"{human_time(iso, tz, seconds=False)} {zone_short(tz, iso)}"


def _create_job(
    db: sqlite_utils.Database,
    plan: Plan,
    numbers: list[str],
    out_dir: Path | None,
    root: Path,
    actor: str,
    unit: str = "",
) -> tuple[int, Path, str]:
    now = to_iso(utcnow())
    with write_txn(db):
        cur = db.execute(
            "insert into disc_jobs (media, state, out_dir, discs_total, bytes_total, plan,"
            " created_at, created_by) values (?, 'building', ?, ?, ?, ?, ?, ?)",
            [
                plan.media,
                str(out_dir or root),
                len(plan.discs),
                plan.bytes_total,
                json.dumps(plan.to_json(), ensure_ascii=False),
                now,
                actor,
            ],
        )
        job_id = int(cur.lastrowid or 0)
        folder = out_dir or root / f"job-{job_id:05d}"
        db.execute("update disc_jobs set out_dir = ? where id = ?", [str(folder), job_id])
        for number in numbers:
            db.execute("insert into disc_job_cases values (?, ?)", [job_id, number])
        for disc in plan.discs:
            for copy in COPIES:
                db.execute(
                    "insert into disc_images (job_id, disc_no, copy, volume_id, media, state,"
                    " payload_bytes, files) values (?, ?, ?, ?, ?, 'building', ?, ?)",
                    [
                        job_id,
                        disc.disc_no,
                        copy,
                        names.volume_id(numbers, job_id, disc.disc_no, copy, unit),
                        plan.media,
                        disc.payload_bytes,
                        len(disc.files),
                    ],
                )
        for number in numbers:
            audit(
                db,
                "disc.job_created",
                actor=actor,
                subject=number,
                data={"job_id": job_id, "media": plan.media, "discs": len(plan.discs)},
            )
    log.info("disc.job_created", job_id=job_id, cases=numbers, discs=len(plan.discs))
    return job_id, folder, now


def _volume_set(plan: Plan) -> list[dict[str, Any]]:
    return [
        {"disc_no": d.disc_no, "cases": d.cases, "files": len(d.files), "bytes": d.payload_bytes}
        for d in plan.discs
    ]


def build_job(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    numbers: list[str],
    *,
    media_key: str,
    out_dir: Path | None,
    actor: str,
    verify: bool = True,
    require_long_term: bool = True,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    producer: str | None = None,
) -> tuple[int, list[DiscOutcome]]:
    """Plan, then write copy A and copy B of every disc, read each back, write the labels.
    ``producer`` (R12 制作人) defaults to ``disc.producer``; placeholders are refused first."""
    numbers = list(dict.fromkeys(numbers))
    producer = label_facts(settings, producer, account_name(db, actor))
    content, plan, media = make_plan(
        vault, db, numbers, media_key, require_long_term=require_long_term
    )
    unit = names.unit_code(settings.station.unit_id, settings.station.id)
    job_id, folder, created_at = _create_job(db, plan, numbers, out_dir, vault.discs, actor, unit)
    job = _Job(vault, db, settings, job_id, len(plan.discs), media, folder, actor, verify,
               progress, stop, _local(created_at, settings.station.timezone), producer)  # fmt: skip
    job.created_at = created_at
    job.printer.start()  # the label child loads its font while the records are made

    def case_list(numbers: list[str]) -> list[tuple[str, str]]:
        return [(n, content.info[n].name) for n in numbers]

    outcomes: list[DiscOutcome] = []
    # ffprobe of every recording file of the job (for the metadata records), two at a time,
    # while the archive numbers are given and the audit excerpts signed
    from station.archive.records import probe_file

    prober = ThreadPoolExecutor(max_workers=2, thread_name_prefix="disc-probe")
    probes: dict[Path, Future[dict[str, Any]]] = {}
    for d in plan.discs:
        for _, f in d.files:
            path = vault.home / f.source
            if path not in probes:
                probes[path] = prober.submit(probe_file, path, settings, vault.home / "run")
    try:
        # 档号 before the audit entries are gathered, so the disc carries its own assignment
        items = assign_archive_numbers(db, settings, content, actor)
        job.archive = [
            (n, content.info[n].archive_number or "", content.info[n].retention_words or "")
            for n in numbers
        ]
        case_names = {n: content.info[n].name for n in numbers}
        for disc in plan.discs:
            check_stop(stop)
            subjects = disc.cases + [f.sha256 for _, f in disc.files]
            # signed per disc: the checkpoint covers every audit entry the disc carries (R7)
            signed, excerpt = signed_excerpt(vault, db, settings, subjects)
            job.fingerprint = signed.fingerprint if signed else station_fingerprint(vault, settings)
            layout = lay_out(disc, case_names, signed is not None, with_records=True)
            ident = DiscIdentity(
                job_id,
                disc.disc_no,
                len(plan.discs),
                media.key,
                settings.station.id,
                settings.station.unit_name,
                producer,
                created_at,
                settings.station.timezone,
                job.fingerprint,
            )
            records = _archive_records(vault, db, settings, job_id, disc.disc_no, layout,
                                       content, items, ident, probes)  # fmt: skip
            support = build_files(
                layout,
                ident,
                [content.info[n] for n in disc.cases],
                content.recordings,
                excerpt,
                _volume_set(plan),
                signed,
                records,
                {sha: item.number for (_, sha), item in items.items()},
            )
            expected = [
                Expected(e.path, e.joliet_path, e.file.sha256, e.file.size)
                for e in layout.payload
                if e.file is not None
            ]
            expected += [
                Expected(e.path, e.joliet_path, _sha(support[e.path]), len(support[e.path]))
                for e in layout.entries
                if e.file is None and not e.is_dir
            ]
            _record_contents(db, job_id, disc.disc_no, layout)
            # file times on the disc: each recording's (corrected) start time (R5)
            times = {
                e.path: str(content.recordings[e.file.recording_sha256]["recorded_at"])
                for e in layout.payload
                if e.file is not None
                and content.recordings.get(e.file.recording_sha256, {}).get("recorded_at")
            }
            work = _Disc(disc.disc_no, layout, support, expected, case_list(disc.cases), times)
            outcomes += _build_disc(job, work)
        # one printable sheet for the whole job: every disc, copy 甲/A then 乙/B
        job.printer.submit(job.labels, job.folder / LABEL_SHEET)
        job.printer.close()
    except BaseException as exc:
        with contextlib.suppress(StationError):
            job.printer.close()  # the labels of copies already built are still written
        _fail_job(db, job_id, exc, actor, numbers)
        raise
    finally:
        prober.shutdown(wait=True, cancel_futures=True)
    state = "verified" if all(o.verified for o in outcomes) else "built"
    with write_txn(db):
        db.execute(
            "update disc_jobs set state = ?, finished_at = ? where id = ?",
            [state, to_iso(utcnow()), job_id],
        )
    log.info("disc.job_finished", job_id=job_id, state=state, images=len(outcomes))
    return job_id, outcomes


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _case_facts(info: Any) -> Any:
    """The case (or other archived subject) as its record shows it, from the job's CaseInfo."""
    from station.archive import records as rec
    from station.retention.policy import R11_REASONS

    lt = None
    if info.long_term_reason is not None:
        zh, en = R11_REASONS.get(info.long_term_reason, ("?", "?"))
        lt = f"{info.long_term_reason}. {zh} / {en} (R11)"
    return rec.CaseFacts(info.number, info.name, info.cause, info.party, lt, info.archive_number)


def _archive_records(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    job_id: int,
    disc_no: int,
    layout: Layout,
    content: JobContent,
    items: dict[tuple[str, str], Any],
    ident: DiscIdentity,
    probes: dict[Path, Any] | None = None,
) -> dict[str, bytes]:
    """One metadata record per recording on the disc, DISC.xml and the schema, by disc path.
    ``probes``: ffprobe's findings under way (futures by vault path)."""
    from station.archive import records as rec

    out: dict[str, bytes] = {RECORD_SCHEMA: rec.schema_bytes()}
    record_paths: dict[tuple[str, str], str] = {}
    paths = [vault.home / p.file.source for p in layout.payload if p.file is not None]
    if probes is not None and all(p in probes for p in paths):
        probed = {p: probes[p].result() for p in paths}
    else:  # two at a time (the two cores)
        probed = rec.probe_files(paths, settings, vault.home / "run")
    for e in layout.records:
        assert e.case is not None and e.record_of is not None
        info = content.info[e.case]
        locations = {
            p.file.sha256: p.path
            for p in layout.payload
            if p.file is not None and p.case == e.case and p.file.recording_sha256 == e.record_of
        }
        facts = rec.recording_facts(
            vault.home,
            db,
            settings,
            e.record_of,
            archive=items[(e.case, e.record_of)],
            station_decision=info.station_decision or "",
            cases=[_case_facts(info)],
            locations=locations,
            generated_at=ident.created_at,
            probed=probed,
        )
        out[e.path] = rec.build_record(facts)
        record_paths[(e.case, e.record_of)] = e.path
    volume_ids = [
        r[0]
        for r in db.execute(
            "select volume_id from disc_images where job_id = ? and disc_no = ? order by copy",
            [job_id, disc_no],
        )
    ]
    cases = []
    for number in dict.fromkeys(e.case for e in layout.payload if e.case):
        info = content.info[number]
        cases.append(
            rec.DiscCase(
                _case_facts(info),
                info.retention_code or "",
                info.retention_words or "",
                info.retention_rule or "",
                info.retention_years,
                info.station_decision or "",
            )
        )
    files = []
    for p in layout.payload:
        assert p.file is not None and p.case is not None
        item = items.get((p.case, p.file.recording_sha256))
        role = "原始文件" if p.file.role == "original" else "归档副本"
        files.append(
            rec.DiscFile(
                p.path,
                role,
                p.file.size,
                p.file.sha256,
                item.number if item else None,
                record_paths.get((p.case, p.file.recording_sha256)),
            )
        )
    for path, data in sorted(out.items()):
        if path != RECORD_SCHEMA:
            files.append(rec.DiscFile(path, "元数据记录", len(data), _sha(data)))
    disc = rec.DiscFacts(
        " / ".join(volume_ids),
        job_id,
        disc_no,
        ident.discs_total,
        ident.media,
        ident.unit_name,
        ident.producer,
        ident.created_at,
        ident.station_id,
        cases,
        files,
    )
    out[DISC_RECORD] = rec.build_disc_record(disc)
    return out


def _record_contents(db: sqlite_utils.Database, job_id: int, disc_no: int, layout: Layout) -> None:
    with write_txn(db):
        for e in layout.payload:
            f = e.file
            assert f is not None
            db.execute(
                "insert into disc_contents values (?, ?, ?, ?, ?, ?, ?, ?)",
                [job_id, disc_no, e.case, f.sha256, f.recording_sha256, f.role, e.path, f.size],
            )


def _fail_job(
    db: sqlite_utils.Database, job_id: int, exc: BaseException, actor: str, numbers: list[str]
) -> None:
    message = exc.render() if isinstance(exc, StationError) else repr(exc)
    with write_txn(db):
        db.execute(
            "update disc_jobs set state = 'failed', error = ?, finished_at = ? where id = ?",
            [message, to_iso(utcnow()), job_id],
        )
        db.execute(
            "update disc_images set state = 'failed', error = ? where job_id = ?"
            " and state = 'building'",
            [message, job_id],
        )
        for number in numbers:
            audit(
                db,
                "disc.job_failed",
                actor=actor,
                subject=number,
                data={"job_id": job_id, "error": message},
            )
    log.error("disc.job_failed", job_id=job_id, error=message)


def _build_disc(job: _Job, disc: _Disc) -> list[DiscOutcome]:
    """Write copy A and copy B of one disc in one pass, read each back from the disk, label
    them, record them (each with its audit entry)."""
    db, job_id, disc_no = job.db, job.job_id, disc.disc_no
    volume_ids = {
        copy: vid
        for copy, vid in db.execute(
            "select copy, volume_id from disc_images where job_id = ? and disc_no = ?",
            [job_id, disc_no],
        )
    }
    images = [job.folder / f"{volume_ids[copy]}.iso" for copy in COPIES]
    station = job.settings.station
    specs = [
        ImageSpec(volume_ids[c], job_id, disc_no, job.discs_total, c, disc.times,
                  job.created_at, station.timezone,
                  names.volume_set_id(station.unit_id, station.id, job_id))
        for c in COPIES
    ]  # fmt: skip
    lock = threading.Lock()

    def progress(p: DiscProgress) -> None:  # the readers of both copies report side by side
        if job.progress is not None:
            with lock:
                job.progress(p)

    written = write_images(
        job.vault.home,
        disc.layout,
        disc.support,
        specs,
        job.media,
        images,
        progress=progress,
        stop=job.stop,
    )
    for copy, image in zip(COPIES, images, strict=True):
        log.info("disc.image_written", job_id=job_id, disc_no=disc_no, copy=copy, image=str(image))
    check_stop(job.stop)
    labels = []
    for copy, (_, digest) in zip(COPIES, written, strict=True):
        volume_id = volume_ids[copy]
        label = LabelData(
            job.settings.station.unit_name,
            job.producer,
            job.produced_at,
            disc.cases,
            copy,
            disc_no,
            job.discs_total,
            volume_id,
            digest,
            job.media.label,
            job_id,
            [a for a in job.archive if a[0] in {n for n, _ in disc.cases}],
            job.fingerprint,
        )
        html_path = job.folder / f"{volume_id}.label.html"
        pdf_path = job.folder / f"{volume_id}.label.pdf"
        write_html(label, html_path)
        job.printer.submit([label], pdf_path)  # rendered while the copies are read back
        job.labels.append(label)
        labels.append((html_path, pdf_path))
    results: list[ReadbackResult | None] = [None, None]
    if job.verify:
        # each copy's files re-read from the disk once (A through its Joliet tree, B through
        # its UDF tree), every tree checked by names and sizes; both copies side by side
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(
                    read_image,
                    image,
                    disc.expected,
                    digest,
                    job_id,
                    disc_no,
                    copy,
                    size,
                    progress,
                    content_by=reader,
                )
                for copy, image, (size, digest), reader in zip(
                    COPIES, images, written, CONTENT_READERS, strict=True
                )
            ]
            results = [f.result() for f in futures]
    outcomes = [
        _record_copy(job, disc, copy, volume_ids[copy], image, size, digest, result, *paths)
        for copy, image, (size, digest), result, paths in zip(
            COPIES, images, written, results, labels, strict=True
        )
    ]
    for o in outcomes:
        if job.verify and not o.verified:
            log.error(
                "disc.image_bad", job_id=job_id, disc_no=disc_no, copy=o.copy, problems=o.problems
            )
            raise IntegrityError(
                f"映像回读失败 / image {o.image.name} failed its read-back: "
                f"{'; '.join(o.problems[:5])}",
                where=str(o.image),
            )
    return outcomes


def _record_copy(
    job: _Job,
    disc: _Disc,
    copy: str,
    volume_id: str,
    image: Path,
    size: int,
    digest: str,
    result: ReadbackResult | None,
    html_path: Path,
    pdf_path: Path,
) -> DiscOutcome:
    """One copy's outcome in the catalog, with its audit entry (one transaction)."""
    db, job_id, disc_no = job.db, job.job_id, disc.disc_no
    problems: list[str] = []
    verified, verify_json = False, None
    if result is not None:
        problems, verified = result.problems(), result.ok
        verify_json = json.dumps(result.to_json(), ensure_ascii=False)
    if job.verify and not verified:  # never leave a bad image under the name of a ready one
        bad = image.with_name(image.name + ".failed")
        image.replace(bad)
        image = bad
    now = to_iso(utcnow())
    state = "verified" if verified else ("built" if not job.verify else "corrupt")
    with write_txn(db):
        db.execute(
            "update disc_images set state = ?, image_path = ?, image_size = ?, image_sha256 = ?,"
            " label_html = ?, label_pdf = ?, built_by = ?, built_at = ?, verified_by = ?,"
            " verified_at = ?, verify_result = ?, expected = ? where job_id = ? and disc_no = ?"
            " and copy = ?",
            [
                state,
                str(image),
                size,
                digest,
                str(html_path),
                str(pdf_path),
                job.actor,
                now,
                job.actor if job.verify else None,
                now if job.verify else None,
                verify_json,
                json.dumps([e.__dict__ for e in disc.expected], ensure_ascii=False),
                job_id,
                disc_no,
                copy,
            ],
        )
        for number, _ in disc.cases:
            audit(
                db,
                "disc.image_built",
                actor=job.actor,
                subject=number,
                data={
                    "job_id": job_id,
                    "disc_no": disc_no,
                    "copy": copy,
                    "volume_id": volume_id,
                    "image_sha256": digest,
                    "size": size,
                    "verified": verified,
                },
            )
    return DiscOutcome(
        disc_no, copy, volume_id, image, digest, size, verified, problems, html_path, pdf_path
    )


def read_image(
    image: Path,
    expected: list[Expected],
    recorded: str | None,
    job_id: int,
    disc_no: int,
    copy: str,
    size: int,
    progress: ProgressFn | None,
    *,
    content_by: str | None = None,
) -> ReadbackResult:
    """Read one image back (``readback.read_back``); ``content_by``: the lean check right after
    writing, ``recorded`` being the hash taken while writing."""
    done: dict[str, int] = {}

    def tick(phase: str, n: int) -> None:
        done[phase] = done.get(phase, 0) + n
        if progress is not None:
            total = size if phase == "hash" else sum(e.size for e in expected)
            progress(DiscProgress(phase, job_id, disc_no, copy, done[phase], total))

    return read_back(image, expected, recorded, tick, content_by=content_by)
