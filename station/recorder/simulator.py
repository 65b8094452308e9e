"""A simulated recorder that speaks ZFY-LINE/1 on a pty (``station sim recorder``).

Its clock runs ``drift_s`` ahead of the station's wall clock in ``timezone``; SETCLOCK moves it.
Faults, for tests and demos of bad input:

``silent``        never answers (a dead recorder)
``garbage``       answers every request with random bytes
``garbage-once``  garbles its first reply only (the station must retry)
``partial``       answers with half a frame and no newline
``oversized``     answers INFO with a 4 KiB line
``wrong-id``      INFO reports another serial than HELLO (a confused or tampered recorder)
``clock-2000``    its clock says 2000-01-01
``bad-auth``      holds another secret than the one enrolled (a clone)
``disconnect``    hangs up the serial link right after switching to storage mode
``no-newline``    answers every request with an endless stream of bytes and never a newline
``drip``          answers correctly, but one byte every ``drip_s`` seconds (0.4 s by default)
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import select
import threading
import tty
from pathlib import Path
from zoneinfo import ZoneInfo

from station.errors import InputError
from station.log import get
from station.recorder import protocol
from station.recorder.base import device_mac, format_clock, parse_clock, station_mac
from station.recorder.simconfig import SimConfig

log = get()


class SimRecorder:
    def __init__(self, config: SimConfig) -> None:
        self.cfg = config
        self.drift_s = config.drift_s
        self.nonce: str | None = None
        self.authed = False
        self.storage_mode = False
        self.replies = 0
        self.clock_sets: list[str] = []
        self.bytes_sent = 0

    # -- the device's own state -------------------------------------------------------------
    def now(self) -> dt.datetime:
        if "clock-2000" in self.cfg.faults:
            return dt.datetime(2000, 1, 1, 0, 0, 0)
        wall = dt.datetime.now(ZoneInfo(self.cfg.timezone)).replace(tzinfo=None)
        return wall + dt.timedelta(seconds=self.drift_s)

    def used_bytes(self) -> int:
        vol = self.cfg.volume
        if vol is None or not vol.exists():
            return 0
        if vol.is_file():
            return vol.stat().st_size
        return sum(p.stat().st_size for p in vol.rglob("*") if p.is_file())

    # -- one request -> one reply (pure apart from the clock) --------------------------------
    def handle(self, frame: protocol.Frame) -> protocol.Frame:
        seq, verb, f = frame.seq, frame.verb, frame.fields
        cfg = self.cfg
        needs_auth = verb in ("SETCLOCK", "STORAGE_MODE")
        if needs_auth and not self.authed:
            return protocol.err(seq, "AUTH", "authenticate first")
        if verb == "HELLO":
            versions = f.get("versions", "").split(",")
            if str(protocol.VERSION) not in versions:
                return protocol.err(seq, "VERSION", f"supported: {protocol.VERSION}")
            return protocol.ok(
                seq,
                proto=str(protocol.VERSION),
                vendor="station-sim",
                model=cfg.model,
                fw=cfg.firmware,
                id=cfg.serial,
            )
        if verb == "INFO":
            serial_no = cfg.serial[::-1] if "wrong-id" in cfg.faults else cfg.serial
            return protocol.ok(
                seq,
                serial=serial_no,
                officer=cfg.officer_id,
                officer_name=cfg.officer_name,
                unit=cfg.unit_id,
                unit_name=cfg.unit_name,
            )
        if verb == "CHALLENGE":
            self.nonce = secrets.token_hex(16)
            self.authed = False
            return protocol.ok(seq, nonce=self.nonce)
        if verb == "AUTH":
            if self.nonce is None:
                return protocol.err(seq, "AUTH", "no challenge")
            cnonce, mac = f.get("cnonce", ""), f.get("mac", "")
            secret = cfg.secret if "bad-auth" not in cfg.faults else b"not-the-enrolled-secret"
            want = station_mac(secret, cfg.serial, self.nonce, cnonce)
            if not secrets.compare_digest(want, mac):
                self.nonce = None
                return protocol.err(seq, "AUTH", "bad mac")
            self.authed = True
            reply = protocol.ok(seq, mac=device_mac(secret, cfg.serial, self.nonce, cnonce))
            self.nonce = None
            return reply
        if verb == "BATTERY":
            return protocol.ok(seq, pct=str(cfg.battery_pct), charging="1")
        if verb == "STORAGE":
            used = self.used_bytes()
            return protocol.ok(seq, total=str(cfg.capacity), free=str(max(cfg.capacity - used, 0)))
        if verb == "CLOCK":
            return protocol.ok(seq, time=format_clock(self.now()))
        if verb == "SETCLOCK":
            try:
                new = parse_clock(f.get("time", ""))
            except ValueError:
                return protocol.err(seq, "BADARG", "time")
            wall = dt.datetime.now(ZoneInfo(cfg.timezone)).replace(tzinfo=None)
            self.drift_s = (new - wall).total_seconds()
            self.clock_sets.append(f["time"])
            return protocol.ok(seq)
        if verb == "STORAGE_MODE":
            self.storage_mode = True
            return protocol.ok(seq, label=cfg.serial)
        if verb == "BYE":
            return protocol.ok(seq)
        return protocol.err(seq, "UNKNOWN", verb)

    def reply_bytes(self, line: bytes) -> bytes | None:
        """Wire reply to one received line, after faults; ``None`` for no reply."""
        faults = self.cfg.faults
        if "silent" in faults:
            return None
        try:
            frame = protocol.decode(line)
        except protocol.ProtocolError as exc:
            return protocol.encode(protocol.err(0, "BADFRAME", exc.message[:200]))
        self.replies += 1
        if "garbage" in faults or ("garbage-once" in faults and self.replies == 1):
            return secrets.token_bytes(40).replace(b"\n", b"?") + b"\n"
        out = protocol.encode(self.handle(frame))
        if "partial" in faults:
            return out[: len(out) // 2]
        if "oversized" in faults and frame.verb == "INFO":
            return b"A" * 4096 + b"\n"
        return out


def _stream_without_newline(rec: SimRecorder, fd: int, stop: threading.Event) -> None:
    """The ``no-newline`` fault: bytes, never a line end, until the station stops reading
    (the pty's buffer fills and the write would block) or the simulator is stopped."""
    chunk = b"Z" * 256
    os.set_blocking(fd, False)
    try:
        while not stop.is_set():
            _, writable, _ = select.select([], [fd], [], 0.05)
            if not writable:
                continue
            try:
                rec.bytes_sent += os.write(fd, chunk)
            except BlockingIOError:
                stop.wait(0.01)
            except OSError:
                return
    finally:
        os.set_blocking(fd, True)


def _drip(rec: SimRecorder, fd: int, data: bytes, stop: threading.Event) -> None:
    """The ``drip`` fault: a correct reply, one byte every ``drip_s`` seconds."""
    for i in range(len(data)):
        if stop.wait(rec.cfg.drip_s):
            return
        try:
            os.write(fd, data[i : i + 1])
        except OSError:
            return
        rec.bytes_sent += 1


def serve(rec: SimRecorder, fd: int, stop: threading.Event) -> None:
    """Answer requests on ``fd`` (a pty master) until ``stop`` is set or the link hangs up."""
    buf = b""
    rfd, wfd = os.pipe()  # a stop wake-up: no polling (the idle station must idle)
    waker = threading.Thread(target=lambda: (stop.wait(), os.write(wfd, b"x")), daemon=True)
    waker.start()
    try:
        while not stop.is_set():
            ready, _, _ = select.select([fd, rfd], [], [])
            if rfd in ready:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                # No station attached to the slave side yet (EIO on a pty): wait a little.
                if stop.wait(0.2):
                    break
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if "no-newline" in rec.cfg.faults:
                    _stream_without_newline(rec, fd, stop)
                    continue
                out = rec.reply_bytes(line + b"\n")
                if out and "drip" in rec.cfg.faults:
                    _drip(rec, fd, out, stop)
                elif out:
                    os.write(fd, out)
                    rec.bytes_sent += len(out)
                if rec.storage_mode and "disconnect" in rec.cfg.faults:
                    log.info("sim.disconnect", serial=rec.cfg.serial)
                    return
            if len(buf) > protocol.MAX_FRAME:
                buf = b""
    finally:
        stop.set()
        waker.join()  # it writes to wfd once: close only after it did
        os.close(rfd)
        os.close(wfd)


def open_pty(link: Path | None) -> tuple[int, int, str]:
    """A pty pair in raw mode (master, slave, slave name); the name is linked at ``link``.

    The caller keeps the slave open, so the master never reads EIO before the station attaches.
    """
    if link is not None and (link.exists() or link.is_symlink()) and not link.is_symlink():
        # Only a link of an earlier run is replaced: never a file, device or folder.
        raise InputError(
            "该路径已存在且不是链接 / --pty-link exists and is not a symbolic link",
            where=str(link),
            hint="name a new path; the simulator only replaces its own links",
        )
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    name = os.ttyname(slave)
    if link is not None:
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
            tmp.symlink_to(name)
            os.replace(tmp, link)
        except OSError:
            os.close(master)
            os.close(slave)
            raise
    return master, slave, name


def remove_link(link: Path, name: str) -> None:
    """Remove ``link`` if it is still the link to pty ``name`` made by :func:`open_pty`."""
    try:
        if os.readlink(link) == name:
            link.unlink()
    except OSError:
        pass
