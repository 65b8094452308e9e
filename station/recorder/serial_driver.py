"""The serial driver: ZFY-LINE/1 over the recorder's CDC-ACM port (pyserial).

Requests carry a sequence number; a reply with another number is a stale answer to an earlier
request and is skipped. Read-only requests are retried (``retries``) after a timeout or a
garbled reply; after that the recorder is reported as not answering, with the port named.

Bounds, whatever the recorder sends: a reply line is at most ``protocol.MAX_FRAME`` bytes (an
oversized line is discarded up to its newline, at most ``MAX_DRAIN`` bytes); every command —
all its attempts, stale lines and drained bytes together — ends by its deadline (``deadline_s``,
by default ``timeout_s × (retries + 2)``), so a recorder that streams without a newline or drips
a byte just inside each timeout cannot hold a dock session.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import select
import time
from pathlib import Path
from typing import Any

import serial

from station.errors import DeviceError
from station.log import get
from station.recorder import protocol
from station.recorder.base import (
    ClockReading,
    Identity,
    device_mac,
    format_clock,
    parse_clock,
    station_mac,
)
from station.text import escape_text, unsafe_char
from station.timeutil import utcnow

log = get()

MAX_STALE = 8
MAX_DRAIN = 16 * protocol.MAX_FRAME


class _DeadlinePassed(Exception):
    """The command's overall deadline passed while waiting for its reply."""


class DeviceErrorReply(DeviceError):
    """记录仪返回错误 / The recorder answered with an error."""

    def __init__(self, code: str, message: str, *, where: str | None = None) -> None:
        self.code = code
        super().__init__(f"recorder replied {code}: {message}", where=where)


class AuthError(DeviceError):
    """记录仪认证失败 / The recorder failed authentication."""


class SerialLink:
    """Request/reply on a byte stream (any object with ``write``, ``readline(deadline)``,
    ``close``); ``deadline_s`` bounds each request including its retries."""

    def __init__(
        self, port: Any, where: str, *, retries: int = 2, deadline_s: float = 10.0
    ) -> None:
        self.port = port
        self.where = where
        self.retries = retries
        self.deadline_s = deadline_s
        self._seq = 0

    def _next_seq(self) -> int:
        self._seq = self._seq % 9999 + 1
        return self._seq

    def request(self, verb: str, *, retry: bool = True, **fields: str) -> protocol.Frame:
        attempts = 1 + (self.retries if retry else 0)
        deadline = time.monotonic() + self.deadline_s
        last: DeviceError | None = None
        for attempt in range(attempts):
            seq = self._next_seq()
            try:
                self.port.write(protocol.encode(protocol.Frame(seq, verb, fields)))
                reply = self._await(seq, deadline)
            except _DeadlinePassed:
                log.warning("recorder.deadline", port=self.where, verb=verb, attempt=attempt + 1)
                raise DeviceError(
                    f"记录仪应答超时 / no complete reply to {verb} within the command deadline "
                    f"of {self.deadline_s:g} s",
                    where=self.where,
                    hint="a recorder answering too slowly or without line ends: take it out "
                    "of use and report it (R4)",
                ) from None
            except protocol.ProtocolError as exc:
                last = exc
                log.warning(
                    "recorder.bad_reply",
                    port=self.where,
                    verb=verb,
                    attempt=attempt + 1,
                    error=exc.message,
                )
                continue
            except TimeoutError:
                last = DeviceError(
                    f"记录仪无应答 / no reply to {verb}",
                    where=self.where,
                    hint="check the cable and that the recorder is switched on",
                )
                log.warning("recorder.no_reply", port=self.where, verb=verb, attempt=attempt + 1)
                continue
            if reply.verb == "ERR":
                raise DeviceErrorReply(
                    reply.fields.get("code", "?"), reply.fields.get("msg", ""), where=self.where
                )
            if reply.verb != "OK":
                raise protocol.ProtocolError(
                    f"unexpected reply verb {reply.verb}", where=self.where
                )
            return reply
        assert last is not None
        raise DeviceError(last.message, where=self.where, hint=last.hint)

    def _await(self, seq: int, deadline: float) -> protocol.Frame:
        for _ in range(MAX_STALE):
            try:
                line = self.port.readline(deadline)
            except serial.SerialException as exc:
                raise DeviceError(f"serial port failed: {exc}", where=self.where) from exc
            except OSError as exc:
                raise DeviceError(f"serial port failed: {exc.strerror}", where=self.where) from exc
            if not line:
                raise TimeoutError
            if not line.endswith(b"\n"):
                # readline stopped at the timeout: a partial frame.
                raise protocol.ProtocolError(f"partial frame ({len(line)} bytes, no newline)")
            frame = protocol.decode(line)
            if frame.seq == seq:
                return frame
            log.info("recorder.stale_reply", port=self.where, seq=frame.seq, want=seq)
        raise protocol.ProtocolError(f"no reply with sequence {seq} among {MAX_STALE} lines")

    def close(self) -> None:
        self.port.close()


class SerialDriver:
    name = "serial"
    has_link = True

    def __init__(self, link: SerialLink) -> None:
        self.link = link
        self.hello: dict[str, str] = {}
        self._identity: Identity | None = None

    @classmethod
    def open(
        cls,
        device: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 2,
        deadline_s: float | None = None,
    ) -> SerialDriver:
        """Open the port and say HELLO. ``timeout_s`` bounds each wait for a byte;
        ``deadline_s`` (default ``timeout_s × (retries + 2)``) bounds each whole command."""
        if deadline_s is None:
            deadline_s = timeout_s * (retries + 2)
        try:
            port = serial.Serial(
                device, 115200, timeout=timeout_s, write_timeout=timeout_s, exclusive=True
            )
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(
                f"cannot open the recorder's serial port: {exc}", where=device
            ) from exc
        port.reset_input_buffer()
        link = SerialLink(
            _BoundedPort(port, timeout_s), device, retries=retries, deadline_s=deadline_s
        )
        drv = cls(link)
        drv.handshake()
        return drv

    def handshake(self) -> None:
        reply = self.link.request("HELLO", versions=str(protocol.VERSION))
        if reply.get_int("proto", 0, 9999) != protocol.VERSION:
            raise DeviceError(
                f"recorder speaks protocol version {reply.get('proto')}, "
                f"the station {protocol.VERSION}",
                where=self.link.where,
            )
        self.hello = dict(reply.fields)

    def identify(self) -> Identity:
        r = self.link.request("INFO")
        for key in ("serial", "officer", "officer_name", "unit", "unit_name"):
            value = r.fields.get(key, "")
            bad = unsafe_char(value)
            if bad is not None:
                # R5/R6: these become catalog tags and labels; a line break or bidi override
                # would split rows or disguise a name.
                raise protocol.ProtocolError(
                    f"INFO field {key} holds the control character {escape_text(bad)}",
                    where=self.link.where,
                )
        hello_id = self.hello.get("id")
        if hello_id is not None and hello_id != r.get("serial"):
            raise DeviceError(
                f"the recorder gives two ids: {hello_id!r} on HELLO, {r.get('serial')!r} on INFO"
                " / 记录仪编号前后不一致",
                where=self.link.where,
                hint="a faulty or tampered recorder: take it out of use (R4)",
            )
        self._identity = Identity(
            serial=r.get("serial"),
            officer_id=r.fields.get("officer") or None,
            officer_name=r.fields.get("officer_name") or None,
            unit_id=r.fields.get("unit") or None,
            unit_name=r.fields.get("unit_name") or None,
            model=self.hello.get("model"),
            firmware=self.hello.get("fw"),
        )
        return self._identity

    def authenticate(self, secret: bytes) -> None:
        if self._identity is None:
            self.identify()
        assert self._identity is not None
        serial_no = self._identity.serial
        nonce = self.link.request("CHALLENGE").get("nonce")
        if len(nonce) != 32:
            raise protocol.ProtocolError("challenge nonce is not 16 bytes", where=self.link.where)
        cnonce = secrets.token_hex(16)
        try:
            reply = self.link.request(
                "AUTH",
                retry=False,
                cnonce=cnonce,
                mac=station_mac(secret, serial_no, nonce, cnonce),
            )
        except DeviceErrorReply as exc:
            if exc.code == "AUTH":
                raise AuthError(
                    "记录仪拒绝了采集站密钥 / the recorder rejected the station's key",
                    where=self.link.where,
                    hint="re-enrol the device: station devices enrol",
                ) from exc
            raise
        if reply.get("mac") != device_mac(secret, serial_no, nonce, cnonce):
            raise AuthError(
                "记录仪身份验证失败 / the recorder could not prove its identity",
                where=self.link.where,
                hint="a clone or a recorder with another key",
            )

    def battery(self) -> int | None:
        return self.link.request("BATTERY").get_int("pct", 0, 100)

    def storage(self) -> tuple[int | None, int | None]:
        r = self.link.request("STORAGE")
        total = r.get_int("total", 0, 1 << 62)
        free = r.get_int("free", 0, 1 << 62)
        if free > total:
            raise protocol.ProtocolError(f"free {free} > total {total}", where=self.link.where)
        return total, free

    def read_clock(self) -> ClockReading | None:
        # R3: drift is measured at the round trip's midpoint.
        t0 = utcnow()
        m0 = time.monotonic()
        r = self.link.request("CLOCK")
        rtt = time.monotonic() - m0
        try:
            device_time = parse_clock(r.get("time"))
        except ValueError as exc:
            raise protocol.ProtocolError(str(exc), where=self.link.where) from exc
        return ClockReading(device_time, t0 + dt.timedelta(seconds=rtt / 2), rtt)

    def set_clock(self, device_time: dt.datetime) -> None:
        self.link.request("SETCLOCK", retry=False, time=format_clock(device_time))

    def expose_storage(self) -> None:
        self.link.request("STORAGE_MODE", retry=False)

    def storage_mounted(self, root: Path) -> bool:
        """The control link already said who the recorder is: nothing to read again."""
        return False

    def close(self) -> None:
        try:
            self.link.request("BYE", retry=False)
        except DeviceError:
            pass
        self.link.close()


class _BoundedPort:
    """pyserial with a bounded ``readline``: a line of at most ``protocol.MAX_FRAME`` bytes,
    each byte awaited at most ``timeout_s``, the whole call ending by the caller's deadline."""

    def __init__(self, port: serial.Serial, timeout_s: float) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def _read(self, deadline: float) -> bytes:
        """What is waiting (at least one byte), or b"" after ``timeout_s`` of silence.

        Reads the port's descriptor directly (select + read): no ioctl such as TIOCINQ, which
        some CDC-ACM stand-ins (umockdev's) do not answer."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed
        fd = self.port.fileno()
        ready, _, _ = select.select([fd], [], [], min(left, self.timeout_s))
        if not ready:
            return b""
        data = os.read(fd, 4096)
        if not data:
            raise serial.SerialException("the recorder hung up (read returned no data)")
        return data

    def readline(self, deadline: float) -> bytes:
        """One line with its newline; a partial line (no newline) after a silence; b"" after a
        silence with nothing. Raises ProtocolError for an oversized line, _DeadlinePassed."""
        while True:
            nl = self._buf.find(b"\n")
            if 0 <= nl < protocol.MAX_FRAME:
                line = bytes(self._buf[: nl + 1])
                del self._buf[: nl + 1]
                return line
            if nl >= protocol.MAX_FRAME or len(self._buf) > protocol.MAX_FRAME:
                self._drain(deadline)
            chunk = self._read(deadline)
            if not chunk:
                line = bytes(self._buf)
                self._buf.clear()
                return line
            self._buf += chunk

    def _drain(self, deadline: float) -> None:
        """Discard an oversized line up to its newline (the next reply then starts clean),
        reading at most MAX_DRAIN bytes; raise ProtocolError either way."""
        drained = 0
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                del self._buf[: nl + 1]
                raise protocol.ProtocolError(f"oversized reply (over {protocol.MAX_FRAME} bytes)")
            drained += len(self._buf)
            self._buf.clear()
            if drained > MAX_DRAIN:
                self.port.reset_input_buffer()
                raise protocol.ProtocolError(
                    f"no newline in {drained} bytes: the recorder streams without line ends"
                )
            chunk = self._read(deadline)
            if not chunk:
                raise protocol.ProtocolError(
                    f"oversized reply (over {protocol.MAX_FRAME} bytes, no newline)"
                )
            self._buf += chunk

    def close(self) -> None:
        self.port.close()
