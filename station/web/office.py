"""Office pages for clerks and supervisors (``/office/``), behind a login with station accounts.

Each page: session → account re-read from the users table → the CLI's role set for the same
action (``station.access.guard``) → an audit entry for the view (R14) → the library function
the CLI command calls. POSTs carry the session's CSRF token and must come from this origin.
Playback is a view of footage: it needs the viewer's own approved request and goes through
``approvals.record_views`` (audit ``access.viewed``); each byte range served re-checks the
approval (``usable_request``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from station.access import approvals
from station.access.guard import CLERK, SUPERVISOR
from station.access.users import ROLE_NAMES, ROLES, User, authenticate
from station.audit import append
from station.catalog import open_catalog, write_txn
from station.errors import NotFoundError, PermissionDenied, StationError
from station.log import get
from station.retention.policy import R11_REASONS
from station.timeutil import parse_iso, to_iso, utcnow
from station.web.app import COOKIE, WebState, state_of
from station.web.auth import WebSession, check_role, csrf_ok, current_user

log = get()

SUPERVISOR_PAGES = SUPERVISOR  # spot checks, integrity: the CLI's `supervisor, admin`
REPORTS = {"retention", "compliance", "devices"}
THUMB_W = 160


class LoginRequired(Exception):
    pass


@dataclass
class Ctx:
    request: Request
    st: WebState
    db: sqlite_utils.Database
    user: User
    session: WebSession
    form: dict[str, Any]
    lists: dict[str, list[str]]

    def render(self, name: str, status: int = 200, **data: Any) -> Response:
        return render(self.request, self.st, self.session, self.user, name, status, **data)

    def local(self, iso: str | None) -> str:
        return local_time(iso, self.st.settings.station.timezone)


def local_time(iso: str | None, tz: str) -> str:
    """People read Beijing time (the station's zone), to the second."""
    if not iso:
        return ""
    from zoneinfo import ZoneInfo

    try:
        return parse_iso(iso).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def render(
    request: Request,
    st: WebState,
    session: WebSession | None,
    user: User | None,
    name: str,
    status: int = 200,
    **data: Any,
) -> Response:
    ctx = {
        "user": user,
        "role_name": ROLE_NAMES.get(user.role, "") if user else "",
        "csrf": session.csrf if session else "",
        "unit_name": st.settings.station.unit_name,
        "is_clerk": bool(user and user.role in CLERK),
        "is_supervisor": bool(user and user.role in SUPERVISOR),
        "local": lambda iso: local_time(iso, st.settings.station.timezone),
        **data,
    }
    return st.templates.TemplateResponse(request, name, ctx, status_code=status)


def _session(request: Request, st: WebState) -> WebSession | None:
    return st.sessions.get(request.cookies.get(COOKIE))


def _set_cookie(resp: Response, st: WebState, s: WebSession) -> None:
    resp.set_cookie(
        COOKIE,
        s.sid,
        httponly=True,
        samesite="strict",
        secure=st.secure_cookie,
        path="/",
        max_age=int(st.settings.web.session_max_hours * 3600),
    )


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # non-browser clients send none; a sandboxed frame sends "null"
    want = f"{request.url.scheme}://{request.url.netloc}"
    return origin == want


def page(
    roles: tuple[str, ...], action: str, *, audit_view: bool = True
) -> Callable[[Callable[[Ctx], Response]], Callable[[Request], Any]]:
    """Wrap a synchronous page: login, role, CSRF (POST), audit of the view, errors as pages."""

    def wrap(fn: Callable[[Ctx], Response]) -> Callable[[Request], Any]:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            st = state_of(request)
            session = _session(request, st)
            form: dict[str, Any] = {}
            lists: dict[str, list[str]] = {}
            if request.method == "POST":
                data = await request.form()
                form = {k: v for k, v in data.items() if isinstance(v, str)}
                lists = {k: [v for v in data.getlist(k) if isinstance(v, str)] for k in data}
                if not _same_origin(request) or not csrf_ok(session, form.get("csrf")):
                    log.warning("web.csrf_refused", path=request.url.path)
                    return render(
                        request,
                        st,
                        session,
                        None,
                        "error.html",
                        403,
                        message="表单已过期，请重新打开页面 / the form expired or did "
                        "not come from this station: open the page again",
                    )
            return await run_in_threadpool(_run, request, st, session, form, lists, fn)

        def _run(
            request: Request,
            st: WebState,
            session: WebSession | None,
            form: dict[str, Any],
            lists: dict[str, list[str]],
            fn: Callable[[Ctx], Response],
        ) -> Response:
            db = open_catalog(st.vault.catalog_path, migrate=False)
            try:
                user = current_user(db, session)
                if user is None or session is None:
                    nxt = urllib.parse.quote(str(request.url.path))
                    return RedirectResponse(f"/office/login?next={nxt}", status_code=303)
                try:
                    check_role(db, user, roles, action)
                    if audit_view and request.method == "GET":
                        with write_txn(db):
                            append(
                                db,
                                "web.viewed",
                                actor=user.name,
                                subject=action,
                                data={
                                    "path": request.url.path,
                                    "query": dict(request.query_params),
                                },
                            )
                    return fn(Ctx(request, st, db, user, session, form, lists))
                except StationError as exc:
                    status = (
                        403
                        if isinstance(exc, PermissionDenied)
                        else (404 if isinstance(exc, NotFoundError) else 400)
                    )
                    return render(
                        request, st, session, user, "error.html", status, message=exc.render()
                    )
            finally:
                db.close()

        return endpoint

    return wrap


# -- login -----------------------------------------------------------------------------------------
async def login_form(request: Request) -> Response:
    st = state_of(request)
    session = _session(request, st) or st.sessions.new()
    resp = render(request, st, session, None, "login.html", next=_next(request), error="")
    _set_cookie(resp, st, session)
    return resp


def _next(request: Request) -> str:
    nxt = request.query_params.get("next", "/office/")
    return nxt if nxt.startswith("/office/") and "//" not in nxt else "/office/"


async def login_submit(request: Request) -> Response:
    st = state_of(request)
    session = _session(request, st)
    data = await request.form()
    name, password = str(data.get("name", "")), str(data.get("password", ""))
    if not _same_origin(request) or not csrf_ok(session, data.get("csrf")):
        return render(
            request,
            st,
            session,
            None,
            "error.html",
            403,
            message="登录表单已过期，请重新打开 / the login form expired: open it again",
        )

    client = request.client.host if request.client else None

    def check() -> User | str:
        db = open_catalog(st.vault.catalog_path, migrate=False)
        try:
            if st.throttle.blocked(name):
                with write_txn(db):
                    append(
                        db,
                        "access.login_failed",
                        actor=name,
                        subject=f"user:{name}",
                        data={"action": "web.login", "throttled": True},
                    )
                log.warning("web.login_throttled", user=name)
                return "throttled"
            user = authenticate(db, name, password, action="web.login")  # refusals audited
            with write_txn(db):
                append(
                    db,
                    "web.login",
                    actor=user.name,
                    subject=f"user:{user.name}",
                    data={"client": client},
                )
            st.throttle.succeeded(name)
            return user
        except StationError as exc:
            st.throttle.failed(name)
            return exc.render()
        finally:
            db.close()

    result = await run_in_threadpool(check)
    if isinstance(result, str):
        fresh = st.sessions.new()
        resp = render(
            request,
            st,
            fresh,
            None,
            "login.html",
            401,
            next=_next(request),
            error=(
                "尝试次数过多，请稍后再试 / too many attempts: try again in a few minutes"
                if result == "throttled"
                else "用户名或密码错误 / wrong user name or password"
            ),
        )
        _set_cookie(resp, st, fresh)
        return resp
    new = st.sessions.login(session, result.name)
    log.info("web.login", user=result.name, role=result.role)
    resp = RedirectResponse(_next(request), status_code=303)
    _set_cookie(resp, st, new)
    return resp


@page(ROLES, "web.logout", audit_view=False)
def logout(ctx: Ctx) -> Response:
    with write_txn(ctx.db):
        append(ctx.db, "web.logout", actor=ctx.user.name, subject=f"user:{ctx.user.name}")
    ctx.st.sessions.end(ctx.session)
    resp = RedirectResponse("/office/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@page(ROLES, "web.home")
def home(ctx: Ctx) -> Response:
    mine = [r for r in approvals.list_requests(ctx.db) if r.requested_by == ctx.user.name]
    return ctx.render("home.html", requests=mine[-20:])


# -- recordings ------------------------------------------------------------------------------------
SEARCH_KEYS = (
    "officer",
    "device",
    "unit",
    "department",
    "case",
    "party",
    "cause",
    "since",
    "until",
)


@page(CLERK, "web.recordings.search")
def recordings(ctx: Ctx) -> Response:
    from station.cases.search import Filters, search

    q = {k: ctx.request.query_params.get(k, "").strip() for k in SEARCH_KEYS}
    rows: list[dict[str, Any]] = []
    if any(q.values()):
        tz = ctx.st.settings.station.timezone
        f = Filters(
            officer=q["officer"] or None,
            device=q["device"] or None,
            unit=q["unit"] or None,
            department=q["department"] or None,
            case=q["case"] or None,
            party=q["party"] or None,
            cause=q["cause"] or None,
            since=parse_iso(q["since"], tz) if q["since"] else None,
            until=parse_iso(q["until"], tz) if q["until"] else None,
        )
        rows = search(ctx.db, f, limit=200)
        names = dict(ctx.db.execute("select officer_id, name from officers").fetchall())
        for r in rows:
            r["officer_name"] = names.get(r["officer_id"]) or ""
    cases = [c["number"] for c in _open_cases(ctx.db)]
    return ctx.render("recordings.html", q=q, rows=rows, cases=cases, searched=any(q.values()))


def _open_cases(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    from station.cases.store import list_cases

    return list_cases(db, status="open")


def _derivative(ctx: Ctx, sha: str) -> Path:
    """The archival derivative if it is done, else the original (both read-only)."""
    row = ctx.db.execute(
        "select vault_path from derivatives where original_sha256 = ? and state = 'done'"
        " order by id desc limit 1",
        [sha],
    ).fetchone()
    if row is None:
        row = ctx.db.execute(
            "select vault_path from recordings where sha256 = ? and state != 'purged'", [sha]
        ).fetchone()
    if row is None:
        raise NotFoundError(f"没有这段录像 / no such recording: {sha}", where="sha256")
    return ctx.st.vault.home / str(row[0])


_thumb_lock = threading.Lock()


@page(CLERK, "web.thumbnail", audit_view=False)
def thumbnail(ctx: Ctx) -> Response:
    """A still from the derivative (ffmpeg), cached under ``<home>/cache/thumbs``; part of the
    search page's audited view."""
    from station.transcode.binaries import locate_ffmpeg

    sha = _sha_param(ctx)
    out = ctx.st.vault.home / "cache" / "thumbs" / f"{sha}.jpg"
    if not out.exists():
        src = _derivative(ctx, sha)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.jpg")
        ffmpeg, _ = locate_ffmpeg(ctx.st.settings)
        with _thumb_lock:  # one ffmpeg at a time: thumbnails never crowd out the ingest
            for seek in ("1", "0"):
                proc = subprocess.run(
                    [
                        ffmpeg,
                        "-v",
                        "error",
                        "-y",
                        "-ss",
                        seek,
                        "-i",
                        str(src),
                        "-frames:v",
                        "1",
                        "-vf",
                        f"scale={THUMB_W}:-2",
                        "-q:v",
                        "6",
                        str(tmp),
                    ],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
                if proc.returncode == 0 and tmp.exists() and tmp.stat().st_size:
                    tmp.replace(out)
                    break
        if not out.exists():
            return Response(status_code=204)
    return FileResponse(out, media_type="image/jpeg", headers={"Cache-Control": "private"})


def _sha_param(ctx: Ctx) -> str:
    from station.cases.model import check_sha

    return check_sha(str(ctx.request.path_params["sha"]))


@page(CLERK, "web.recording.show")
def recording(ctx: Ctx) -> Response:
    sha = _sha_param(ctx)
    rows = list(ctx.db.query("select * from recordings where sha256 = ?", [sha]))
    if not rows:
        raise NotFoundError(f"没有这段录像 / no such recording: {sha}", where="sha256")
    rec = rows[0]
    cases = [
        r[0]
        for r in ctx.db.execute("select case_number from case_recordings where sha256 = ?", [sha])
    ]
    reqs = [
        r
        for r in approvals.list_requests(ctx.db)
        if sha in r.recordings and r.requested_by == ctx.user.name
    ]
    return ctx.render("recording.html", rec=rec, cases=cases, requests=reqs, now=to_iso(utcnow()))


@page(ROLES, "web.access.request")
def access_request(ctx: Ctx) -> Response:
    shas = ctx.lists.get("sha", [])
    req = approvals.create_request(
        ctx.db, ctx.user, purpose="view", reason=ctx.form.get("reason", ""), recordings=shas
    )
    return RedirectResponse(f"/office/?requested={req.id}", status_code=303)


@page(ROLES, "web.play")
def play(ctx: Ctx) -> Response:
    rid, sha = int(ctx.request.path_params["rid"]), _sha_param(ctx)
    shown = approvals.record_views(ctx.db, ctx.user, rid, [sha])  # R14: audited view
    return ctx.render(
        "play.html", rid=rid, sha=sha, item=shown[0], media=f"/office/media/{rid}/{sha}"
    )


@page(ROLES, "web.media", audit_view=False)
def media(ctx: Ctx) -> Response:
    """The footage's bytes, with HTTP range requests, for an approved, unexpired request of
    this very user (the view itself was recorded when the player page opened)."""
    rid, sha = int(ctx.request.path_params["rid"]), _sha_param(ctx)
    req = approvals.usable_request(ctx.db, ctx.user, rid, purposes=approvals.PURPOSES)
    if req.requested_by != ctx.user.name or sha not in req.recordings:
        raise PermissionDenied("录像不在您的申请范围内 / not in your approved request")
    path = _derivative(ctx, sha)
    kind = "video/mp4" if path.suffix.lower() in (".mp4", ".m4v", ".mov") else None
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "private, no-store"})


# -- cases -----------------------------------------------------------------------------------------
@page(CLERK, "web.cases.list")
def cases(ctx: Ctx) -> Response:
    from station.cases.store import list_cases

    return ctx.render("cases.html", cases=list_cases(ctx.db, limit=500))


@page(CLERK, "cases create")
def case_create(ctx: Ctx) -> Response:
    from station.cases.store import create_case

    f = ctx.form
    number = f.get("number", "")
    create_case(
        ctx.db,
        number,
        name=f.get("name", ""),
        actor=ctx.user.name,
        cause=f.get("cause") or None,
        party=f.get("party") or None,
        department=f.get("department") or None,
    )
    return _to_case(number)


def _to_case(number: str) -> Response:
    return RedirectResponse(
        "/office/case?" + urllib.parse.urlencode({"number": number}), status_code=303
    )


@page(CLERK, "web.case.show")
def case(ctx: Ctx) -> Response:
    from station.cases.store import get_case

    c = get_case(ctx.db, ctx.request.query_params.get("number", ""))
    jobs = list(
        ctx.db.query(
            "select j.id, j.state, j.created_at from disc_jobs j join disc_job_cases c"
            " on c.job_id = j.id where c.case_number = ? order by j.id",
            [c["number"]],
        )
    )
    reasons = [(k, zh, en) for k, (zh, en) in sorted(R11_REASONS.items())]
    return ctx.render("case.html", case=c, reasons=reasons, jobs=jobs)


@page(CLERK, "cases link")
def case_link(ctx: Ctx) -> Response:
    from station.cases.store import link

    number = ctx.form.get("number", "")
    shas = ctx.lists.get("sha", [])
    if not shas:
        raise StationError("请至少选择一段录像 / choose at least one recording", where="sha")
    # R5: what the recordings prove, asked for on the same form.
    link(ctx.db, number, shas, actor=ctx.user.name, proves=ctx.form.get("proves") or None)
    return _to_case(number)


@page(CLERK, "cases mark-long-term")
def case_long_term(ctx: Ctx) -> Response:
    from station.cases.store import mark_long_term

    number = ctx.form.get("number", "")
    reason = ctx.form.get("reason", "")
    mark_long_term(
        ctx.db,
        number,
        reason=int(reason) if reason.isdigit() else None,
        note=ctx.form.get("note") or None,
        actor=ctx.user.name,
    )
    return _to_case(number)


# -- discs -----------------------------------------------------------------------------------------
@page(CLERK, "disc build")
def disc_build(ctx: Ctx) -> Response:
    """Start ``jobs.build_job`` in a worker thread (one job at a time); progress goes to
    ``run/disc-status.json`` like the CLI's, and the discs page follows it."""
    from station.disc_burn import jobs
    from station.disc_burn.progress import StatusFile

    st = ctx.st
    numbers = ctx.lists.get("number", [])
    if not numbers:
        raise StationError("请选择案件 / choose a case", where="number")
    if st.disc_thread is not None and st.disc_thread.is_alive():
        raise StationError("已有光盘任务在进行 / a disc job is running already", where="disc")
    # plan first, in the request: a case that cannot go on a disc is said at once
    jobs.make_plan(st.vault, ctx.db, numbers, st.settings.disc.media, require_long_term=True)
    actor = ctx.user.name

    def work() -> None:
        db = open_catalog(st.vault.catalog_path, migrate=False)
        status = StatusFile(st.vault.run / "disc-status.json")
        st.disc_error = None
        try:
            jobs.build_job(
                st.vault,
                db,
                st.settings,
                numbers,
                media_key=st.settings.disc.media,
                out_dir=None,
                actor=actor,
                progress=status,
            )
            status.finish("done")
        except Exception as exc:
            st.disc_error = exc.render() if isinstance(exc, StationError) else repr(exc)
            log.exception("web.disc_build_failed", cases=numbers)
            status.finish("failed", error=st.disc_error)
        finally:
            db.close()

    st.disc_thread = threading.Thread(target=work, name="web-disc-build", daemon=True)
    st.disc_thread.start()
    return RedirectResponse("/office/discs", status_code=303)


@page(CLERK, "web.discs")
def discs(ctx: Ctx) -> Response:
    from station.disc_burn import reverify

    jobs = list(
        ctx.db.query(
            "select j.id, j.media, j.state, j.discs_total, j.bytes_total, j.created_at,"
            " j.created_by, j.error, (select group_concat(case_number, ', ') from disc_job_cases"
            " where job_id = j.id) as cases from disc_jobs j order by j.id desc limit 50"
        )
    )
    for j in jobs:
        j["images"] = reverify.disc_rows(ctx.db, j["id"])
    running = ctx.st.disc_thread is not None and ctx.st.disc_thread.is_alive()
    return ctx.render("discs.html", jobs=jobs, running=running, error=ctx.st.disc_error)


@page(CLERK, "web.disc.label")
def disc_label(ctx: Ctx) -> Response:
    image_id = int(ctx.request.path_params["image"])
    kind = str(ctx.request.path_params["kind"])
    row = ctx.db.execute(
        "select label_html, label_pdf from disc_images where id = ?", [image_id]
    ).fetchone()
    path = row and (row[0] if kind == "html" else row[1])
    if not path or not Path(path).exists():
        raise NotFoundError(f"没有标签 / no label for image {image_id}", where="label")
    if kind == "html":
        # the label page is the library's own escaped HTML; shown as a document of its own
        return Response(
            Path(path).read_text(encoding="utf-8"),
            media_type="text/html",
            headers={
                "Content-Security-Policy": "default-src 'none'; "
                "style-src 'unsafe-inline'; img-src data:"
            },
        )
    return FileResponse(path, media_type="application/pdf")


# -- supervisor ------------------------------------------------------------------------------------
@page(CLERK, "web.report")
def report(ctx: Ctx) -> Response:
    """The reports' own HTML (escaped by ``station.reports.render``), as in ``station report``."""
    import shutil

    from station.reports.compliance_report import build_compliance
    from station.reports.devices_report import build_devices
    from station.reports.render import render_html
    from station.reports.retention_report import build_retention

    kind = str(ctx.request.path_params["kind"])
    now, s = utcnow(), ctx.st.settings
    if kind == "retention":
        usage = shutil.disk_usage(ctx.st.vault.home)
        rep = build_retention(
            ctx.db, s, now=now, days=30, limit=200, disk=(usage.total, usage.free)
        )
    elif kind == "compliance":
        rep = build_compliance(ctx.db, s, now=now, since=None, until=None, limit=200)
    elif kind == "devices":
        rep = build_devices(ctx.db, s, now=now, days=90)
    else:
        raise NotFoundError(f"no report {kind!r}", where="report")
    return Response(
        render_html(rep),
        media_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:"
        },
    )


@page(CLERK, "access list")
def access_queue(ctx: Ctx) -> Response:
    reqs = approvals.list_requests(ctx.db)
    pending = [r for r in reqs if r.state == "pending"]
    done = [r for r in reqs if r.state != "pending"][-50:]
    return ctx.render("access.html", pending=pending, done=list(reversed(done)))


@page(("supervisor",), "access approve")
def access_decide(ctx: Ctx) -> Response:
    rid = int(ctx.request.path_params["rid"])
    approve = ctx.form.get("decision") == "approve"
    note = ctx.form.get("note") or None
    if not approve and not note:
        raise StationError("驳回须写明理由 / a rejection needs a reason", where="note")
    hours = float(ctx.form.get("hours") or 72)
    until = utcnow() + dt.timedelta(hours=hours) if approve else None
    approvals.decide(ctx.db, ctx.user, rid, approve=approve, valid_until=until, note=note)
    return RedirectResponse("/office/access", status_code=303)


@page(SUPERVISOR_PAGES, "report spotchecks")
def spotchecks(ctx: Ctx) -> Response:
    from station.spotcheck.ledger import RESULT_NAMES, ledger

    return ctx.render("spotchecks.html", rows=ledger(ctx.db)[-200:], results=RESULT_NAMES)


@page(("supervisor",), "spotcheck draw")
def spotcheck_draw(ctx: Ctx) -> Response:
    from station.spotcheck.ledger import make_draw

    n = ctx.form.get("n", "")
    officer = ctx.form.get("officer") or None
    make_draw(
        ctx.db,
        ctx.user,
        int(n) if n.isdigit() else 5,
        filters={"officer_id": officer} if officer else None,
    )
    return RedirectResponse("/office/spotchecks", status_code=303)


@page(("supervisor",), "spotcheck record")
def spotcheck_record(ctx: Ctx) -> Response:
    from station.spotcheck.ledger import record_result

    item = int(ctx.request.path_params["item"])
    record_result(ctx.db, ctx.user, item, ctx.form.get("result", ""), ctx.form.get("note") or None)
    return RedirectResponse("/office/spotchecks", status_code=303)


def _spot_item(ctx: Ctx) -> str:
    item = int(ctx.request.path_params["item"])
    row = ctx.db.execute("select sha256 from spotcheck_items where id = ?", [item]).fetchone()
    if row is None:
        raise NotFoundError(f"no spot-check item {item} / 无此抽查项", where="item")
    return str(row[0])


@page(("supervisor",), "spotcheck play")
def spotcheck_play(ctx: Ctx) -> Response:
    """R16: the supervisor plays a drawn recording back; the playback is an audit entry."""
    item, sha = int(ctx.request.path_params["item"]), _spot_item(ctx)
    with write_txn(ctx.db):
        append(ctx.db, "spotcheck.played", actor=ctx.user.name, subject=sha, data={"item": item})
    return ctx.render(
        "play.html",
        rid=None,
        sha=sha,
        item={"original_name": ""},
        media=f"/office/spotcheck/{item}/media",
    )


@page(("supervisor",), "spotcheck media", audit_view=False)
def spotcheck_media(ctx: Ctx) -> Response:
    path = _derivative(ctx, _spot_item(ctx))
    kind = "video/mp4" if path.suffix.lower() in (".mp4", ".m4v", ".mov") else None
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "private, no-store"})


@page(SUPERVISOR_PAGES, "web.integrity")
def integrity(ctx: Ctx) -> Response:
    from station.audit.checkpoint import latest

    row = ctx.db.execute(
        "select seq, at, actor, data from audit_log where event = 'integrity.verified'"
        " order by seq desc limit 1"
    ).fetchone()
    verify = {"seq": row[0], "at": row[1], "actor": row[2], **json.loads(row[3])} if row else None
    cp = latest(ctx.db)
    size = ctx.db.execute("select count(*) from audit_log").fetchone()[0]
    return ctx.render("integrity.html", verify=verify, cp=cp, log_size=size)


@page(ROLES, "devices alerts")
def alerts(ctx: Ctx) -> Response:
    from station.usb_dock import registry

    return ctx.render(
        "alerts.html",
        rows=registry.list_alerts(ctx.db, open_only=True),
        devices=registry.list_devices(ctx.db),
    )


@page(SUPERVISOR, "devices ack")
def alert_ack(ctx: Ctx) -> Response:
    from station.usb_dock import registry

    registry.acknowledge(ctx.db, int(ctx.request.path_params["aid"]), actor=ctx.user.name)
    return RedirectResponse("/office/alerts", status_code=303)


def routes() -> list[Route]:
    return [
        Route("/office/login", login_form, methods=["GET"]),
        Route("/office/login", login_submit, methods=["POST"]),
        Route("/office/logout", logout, methods=["POST"]),
        Route("/office/", home),
        Route("/office/recordings", recordings),
        Route("/office/recordings/{sha}", recording),
        Route("/office/thumb/{sha}.jpg", thumbnail),
        Route("/office/access/request", access_request, methods=["POST"]),
        Route("/office/play/{rid:int}/{sha}", play),
        Route("/office/media/{rid:int}/{sha}", media),
        Route("/office/cases", cases),
        Route("/office/cases/create", case_create, methods=["POST"]),
        Route("/office/cases/link", case_link, methods=["POST"]),
        Route("/office/cases/long-term", case_long_term, methods=["POST"]),
        Route("/office/case", case),
        Route("/office/discs", discs),
        Route("/office/discs/build", disc_build, methods=["POST"]),
        Route("/office/discs/label/{image:int}.{kind}", disc_label),
        Route("/office/reports/{kind}", report),
        Route("/office/access", access_queue),
        Route("/office/access/{rid:int}/decide", access_decide, methods=["POST"]),
        Route("/office/spotchecks", spotchecks),
        Route("/office/spotchecks/draw", spotcheck_draw, methods=["POST"]),
        Route("/office/spotcheck/{item:int}/record", spotcheck_record, methods=["POST"]),
        Route("/office/spotcheck/{item:int}/play", spotcheck_play),
        Route("/office/spotcheck/{item:int}/media", spotcheck_media),
        Route("/office/integrity", integrity),
        Route("/office/alerts", alerts),
        Route("/office/alerts/{aid:int}/ack", alert_ack, methods=["POST"]),
    ]
