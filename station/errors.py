"""The station's errors and exit codes: the one table.

Every error says what failed, on which path or device, and what to do about it. The docstring
of each class is its default message (中文 / English) and its line in the exit-code table. Every
class that has an exit code of its own is defined here, so :data:`EXIT_CODES` — built from these
classes — is the only place codes are given; tests/test_errors_table.py checks that no two classes
share a code, that every StationError anywhere in ``station`` ends with a code of the table, and
that the README's table is this one. Subclasses elsewhere (``NowInPastError``) inherit a code.

Steps where errors end: :class:`station.cli_guard.StationGroup` is the one catch at the top of the
command line (message on stderr, the class's exit code); :func:`station.catalog.db.write_txn`
turns a full disk under the catalog (SQLite's ``SQLITE_FULL``, ``ENOSPC``, ``EDQUOT``) into
:class:`VaultFullError` once, and :func:`is_disk_full` is the one test of "disk full".
"""

from __future__ import annotations

import errno
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from station.ingest.model import IngestReport


class StationError(Exception):
    """采集站出错，或操作被中止 / The station failed, or the operation was aborted."""

    exit_code = 1

    def __init__(
        self, message: str | None = None, *, where: str | None = None, hint: str | None = None
    ) -> None:
        self.message = message or (self.__doc__ or "").strip().splitlines()[0]
        self.where = where
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        text = self.message
        if self.where:
            text += f" [{self.where}]"
        if self.hint:
            text += f" — {self.hint}"
        return text


class ConfigError(StationError):
    """配置文件无效 / The settings file is invalid."""

    exit_code = 3


class CatalogError(StationError):
    """目录数据库读写失败 / The catalog could not be read or written."""

    exit_code = 4


class NotFoundError(StationError):
    """找不到该项 / No such item."""

    exit_code = 5


class IngestError(StationError):
    """采集失败 / Ingest failed.

    ``report``: what the run did before it stopped (files stored and verified, failed, left),
    set by the ingest engine when a run ends with this error after committing what it verified.
    """

    exit_code = 6

    def __init__(
        self,
        message: str | None = None,
        *,
        where: str | None = None,
        hint: str | None = None,
        report: IngestReport | None = None,
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.report = report


class VaultFullError(IngestError):
    """存储已满，采集已停止 / The vault's disk is full; ingest stopped, nothing partial kept."""

    exit_code = 7


class VolumeGoneError(IngestError):
    """记录仪存储在采集中断开 / The recorder volume went away during ingest."""

    exit_code = 8


class IntegrityError(StationError):
    """数据完整性校验失败 / A stored file or record does not match what was recorded."""

    exit_code = 9


class PermissionDenied(StationError):
    """当前用户无权执行此操作 / This action is not allowed for this user."""

    exit_code = 10


class DeviceError(StationError):
    """记录仪异常 / A recorder did not behave as expected."""

    exit_code = 11


class CaseStateError(StationError):
    """案件当前状态不允许此操作 / The case is not in a state that allows this."""

    exit_code = 12


class RetentionError(StationError):
    """保存期处理失败 / The retention run could not do what was asked."""

    exit_code = 13


class CatalogBusyError(CatalogError):
    """目录数据库被其他进程占用 / The catalog is locked by another process."""

    exit_code = 14


class InputError(StationError):
    """输入值无效 / A value given on the command line or in a file is not acceptable."""

    exit_code = 15


class FileAccessError(StationError):
    """无法读写指定的文件 / A file or folder named by the user could not be read or written."""

    exit_code = 16


class FleetError(StationError):
    """中心存储或中心数据库出错 / The central store or the central catalog failed."""

    exit_code = 17


class IngestIncompleteError(IngestError):
    """采集完成，但有文件失败 / The ingest finished, but some files failed or were left."""

    exit_code = 18


class SidecarError(StationError):
    """投递说明文件无效 / The drop's sidecar is invalid."""

    exit_code = 19


class EmptyCaseError(StationError):
    """案件没有可刻录的录像 / A case has no recordings to put on a disc."""

    exit_code = 20


class FileTooLargeError(StationError):
    """文件超过所选光盘容量 / A file is larger than one disc of the chosen media."""

    exit_code = 21


class NotLongTermError(StationError):
    """案件未标记为长期保存 / The case is not marked for long-term keeping (R11)."""

    exit_code = 22


class StoppedError(StationError):
    """已按要求停止，未保留不完整的文件 / Stopped on request; nothing partial kept."""

    exit_code = 23


class ImageTooLargeError(StationError):
    """光盘映像超过光盘容量 / The laid-out image is larger than the disc."""

    exit_code = 24


class OutputFullError(StationError):
    """输出磁盘已满，映像已删除 / The output disk is full; the unfinished image was removed."""

    exit_code = 25


class ReaderMissingError(StationError):
    """未安装光盘映像校验工具 / An independent ISO reader is not installed."""

    exit_code = 26


class NoDriveError(DeviceError):
    """未找到刻录光驱 / No optical drive found."""

    exit_code = 27


class BurnError(DeviceError):
    """刻录或回读失败 / Burning or reading back the disc failed."""

    exit_code = 28


class NotVerifiedError(StationError):
    """映像未通过校验，不能刻录 / The image was not read back and verified; it may not be burned."""

    exit_code = 29


class TranscodeError(StationError):
    """归档转码失败 / Making an archival derivative failed."""

    exit_code = 30


class ToolMissingError(TranscodeError):
    """找不到 ffmpeg 或 ffprobe / ffmpeg or ffprobe was not found."""

    exit_code = 31


class ArchivalFullError(TranscodeError):
    """归档存储已满（稍后重试） / The archival disk is full (will be retried later)."""

    exit_code = 32


class AmbiguousRecording(StationError):
    """哈希前缀不唯一 / More than one recording starts with these digits."""

    exit_code = 33


class ArchiveNumberError(StationError):
    """无法编制档号 / An archive number cannot be given."""

    exit_code = 34


class RecordInvalidError(StationError):
    """元数据记录不符合本站模式 / A metadata record does not match the station's schema."""

    exit_code = 35


class InternalError(StationError):
    """采集站内部错误（详见 run/internal-errors.log） / An internal error of the station."""

    exit_code = 70


def _coded() -> list[type[StationError]]:
    """StationError and every subclass defined above that gives its own exit code."""
    out: list[type[StationError]] = []
    todo: list[type[StationError]] = [StationError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == __name__ and "exit_code" in vars(cls):
            out.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(out, key=lambda c: c.exit_code)


#: The classes of the table, by exit code.
ERROR_CLASSES: dict[int, type[StationError]] = {c.exit_code: c for c in _coded()}

#: Every exit code the station's commands end with, and what it means (中文 / English). A command
#: never ends with a code missing here (tests/test_cli_hostile.py runs every command against
#: hostile input and checks membership). 2 is click's own: the command line was not understood.
EXIT_CODES: dict[int, str] = dict(
    sorted(
        {
            0: "成功 / success",
            2: "命令用法错误 / usage error: the command line was not understood",
            **{
                code: (cls.__doc__ or "").strip().splitlines()[0]
                for code, cls in ERROR_CLASSES.items()
            },
        }.items()
    )
)

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """True if ``exc`` says a disk is full: ``ENOSPC``/``EDQUOT`` from the OS, or SQLite's
    ``SQLITE_FULL`` ("database or disk is full")."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return bool(code & 0xFF == sqlite3.SQLITE_FULL)
        return "database or disk is full" in str(exc)
    return False
