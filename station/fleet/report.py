"""The supervisor's view across every station, read from the central PostgreSQL
(``station report central``, R17, R19): per station its footage, late ingests (R1), retention
state (holds, open and long-term cases, purges) and how far its central copy is behind."""

from __future__ import annotations

import datetime as dt
from typing import Any

from station.config import Settings
from station.fleet.central import connect
from station.fleet.central_schema import migrate
from station.reports.model import Report, Section
from station.timeutil import to_iso


def _rows(conn: Any, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    cur = conn.execute(sql, args)
    names = [d.name for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def build_central(
    dsn: str, settings: Settings, *, now: dt.datetime, since: dt.datetime, limit: int = 200
) -> Report:
    late_s = settings.ingest.deadline_hours * 3600
    args_period = [to_iso(since), to_iso(now)]
    conn = connect(dsn)
    try:
        migrate(conn)
        stations = _rows(
            conn,
            "select s.station_id, s.unit_id, s.unit_name, s.audit_seq,"
            " to_char(s.last_push_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            " as last_push_at,"
            " (select count(*) from recordings r where r.station_id = s.station_id"
            "   and r.state <> 'purged') as recordings,"
            " (select coalesce(sum(size), 0) from recordings r where r.station_id = s.station_id"
            "   and r.state <> 'purged') as bytes,"
            " (select max(ingested_at) from recordings r where r.station_id = s.station_id)"
            "   as last_ingest,"
            " (select count(*) from recordings r where r.station_id = s.station_id"
            "   and r.ingested_at >= %s and r.ingested_at < %s and r.ingest_delay_s > %s)"
            "   as late"
            " from stations s order by s.station_id",
            [*args_period, late_s],
        )
        replication = _rows(
            conn,
            "select station_id,"
            " count(*) filter (where state = 'confirmed') as confirmed,"
            " count(*) filter (where state = 'queued') as queued,"
            " coalesce(sum(size) filter (where state = 'queued'), 0) as queued_bytes,"
            " count(*) filter (where state = 'deleted') as central_deleted,"
            " min((row->>'queued_at')) filter (where state = 'queued') as oldest_queued"
            " from fleet_objects group by station_id order by station_id",
            [],
        )
        retention = _rows(
            conn,
            "select s.station_id,"
            " (select count(*) from holds h where h.station_id = s.station_id"
            "   and h.released_at is null) as holds,"
            " (select count(*) from cases c where c.station_id = s.station_id"
            "   and c.status = 'open') as open_cases,"
            " (select count(*) from cases c where c.station_id = s.station_id"
            "   and c.long_term_reason is not null) as long_term_cases,"
            " (select count(*) from recordings r where r.station_id = s.station_id"
            "   and r.state = 'pending_purge') as pending_purge,"
            " (select count(*) from tombstones t where t.station_id = s.station_id) as purged"
            " from stations s order by s.station_id",
            [],
        )
        late = _rows(
            conn,
            "select station_id, substr(sha256, 1, 16) as sha256, officer_id, unit_id,"
            " recorded_at, ingested_at, round((ingest_delay_s / 3600.0)::numeric, 1) as delay_h"
            " from recordings where ingested_at >= %s and ingested_at < %s"
            " and ingest_delay_s > %s order by ingest_delay_s desc limit %s",
            [*args_period, late_s, limit],
        )
        n_late = conn.execute(
            "select count(*) from recordings where ingested_at >= %s and ingested_at < %s"
            " and ingest_delay_s > %s",
            [*args_period, late_s],
        ).fetchone()[0]
    finally:
        conn.close()
    summary: list[tuple[str, Any]] = [
        ("采集站 / stations", len(stations)),
        ("在库录像 / recordings kept", sum(int(s["recordings"]) for s in stations)),
        ("期间迟交 / late ingests in period (R1)", n_late),
        ("待传对象 / objects not yet central", sum(int(r["queued"]) for r in replication)),
        ("法律保全 / active holds", sum(int(r["holds"]) for r in retention)),
    ]
    return Report(
        kind="central",
        title="全单位采集站汇总 / All stations of the unit (central catalog)",
        generated_at=to_iso(now),
        params={"from": to_iso(since), "to": to_iso(now), "late_after_hours": late_s / 3600},
        summary=summary,
        sections=[
            Section(
                "stations",
                "各采集站 / Stations",
                [
                    ("station_id", "采集站 / station"),
                    ("unit_name", "单位 / unit"),
                    ("recordings", "录像 / recordings"),
                    ("bytes", "字节 / bytes"),
                    ("late", "迟交 / late"),
                    ("last_ingest", "最近采集 / last ingest"),
                    ("audit_seq", "审计条目 / audit entries"),
                    ("last_push_at", "最近推送 / last push"),
                ],
                stations,
            ),
            Section(
                "replication",
                "中心副本 / Central copies",
                [
                    ("station_id", "采集站 / station"),
                    ("confirmed", "已确认 / confirmed"),
                    ("queued", "待传 / queued"),
                    ("queued_bytes", "待传字节 / queued bytes"),
                    ("oldest_queued", "最早待传 / oldest queued"),
                    ("central_deleted", "已删中心副本 / central copies removed"),
                ],
                replication,
            ),
            Section(
                "retention",
                "保存状态 / Retention",
                [
                    ("station_id", "采集站 / station"),
                    ("holds", "保全 / holds"),
                    ("open_cases", "未结案件 / open cases"),
                    ("long_term_cases", "长期保存案件 / long-term cases"),
                    ("pending_purge", "待删 / pending purge"),
                    ("purged", "已删（墓碑）/ purged (tombstones)"),
                ],
                retention,
            ),
            Section(
                "late",
                "迟交明细 / Late ingests (R1)",
                [
                    ("station_id", "采集站 / station"),
                    ("sha256", "SHA-256"),
                    ("officer_id", "执法证号 / officer"),
                    ("unit_id", "单位 / unit"),
                    ("recorded_at", "录制 / recorded"),
                    ("ingested_at", "采集 / ingested"),
                    ("delay_h", "延迟（小时）/ delay (h)"),
                ],
                late,
                total_rows=n_late,
            ),
        ],
    )
