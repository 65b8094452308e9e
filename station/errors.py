"""The station's error tree.

Every error says what failed, on which path or device, and what to do about it. The docstring
of each class is its default message; each class carries the CLI exit code it maps to.
"""

from __future__ import annotations


class StationError(Exception):
    """The station failed / 采集站出错."""

    exit_code = 1

    def __init__(
        self, message: str | None = None, *, where: str | None = None, hint: str | None = None
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
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
    """The settings file is invalid / 配置文件无效."""

    exit_code = 3


class CatalogError(StationError):
    """The catalog could not be read or written / 目录数据库读写失败."""

    exit_code = 4


class NotFoundError(StationError):
    """No such item / 找不到该项."""

    exit_code = 5


class IngestError(StationError):
    """Ingest failed / 采集失败."""

    exit_code = 6


class SourceReadError(IngestError):
    """A file on the recorder could not be read / 无法读取记录仪上的文件."""


class VaultFullError(IngestError):
    """The vault's disk is full; ingest stopped, nothing partial kept / 存储已满，采集已停止."""

    exit_code = 7


class VolumeGoneError(IngestError):
    """The recorder volume went away during ingest / 记录仪存储在采集中断开."""

    exit_code = 8


class IntegrityError(StationError):
    """A stored file or record does not match what was recorded / 数据完整性校验失败."""

    exit_code = 9


class PermissionDenied(StationError):
    """This action is not allowed for this user / 当前用户无权执行此操作."""

    exit_code = 10


class DeviceError(StationError):
    """A recorder did not behave as expected / 记录仪异常."""

    exit_code = 11


class CatalogBusyError(CatalogError):
    """The catalog is locked by another process / 目录数据库被其他进程占用."""

    exit_code = 14


class InputError(StationError):
    """A value given on the command line or in a file is not acceptable / 输入值无效."""

    exit_code = 15


class FileAccessError(StationError):
    """A file or folder named by the user could not be read or written / 无法读写指定的文件."""

    exit_code = 16


class InternalError(StationError):
    """An internal error of the station / 采集站内部错误."""

    exit_code = 70


#: Every exit code the station's commands end with, and what it means. A command never ends
#: with a code missing here (tests/test_cli_hostile.py runs every command against hostile
#: input and checks membership). Several parts still share codes 7, 12 and 13.
EXIT_CODES: dict[int, str] = {
    0: "成功 / success",
    1: "采集站出错，或操作被中止 / station error, or the operation was aborted",
    2: "命令用法错误，或采集中有文件失败 / usage error, or some files of an ingest failed",
    3: "配置或投递说明文件无效 / invalid settings or drop sidecar",
    4: "目录数据库读写失败 / the catalog could not be read or written",
    5: "找不到该项 / no such item",
    6: "采集失败 / ingest failed",
    7: "存储已满 / the vault or archival disk is full",
    8: "记录仪存储在采集中断开 / the recorder volume went away",
    9: "数据完整性校验失败 / integrity check failed",
    10: "无权执行 / not allowed for this user",
    11: "记录仪异常 / a recorder did not behave as expected",
    12: "案件状态不允许 / 转码失败 / case state refuses the action; transcode failed",
    13: "保存期处理失败 / 缺少工具 / retention run refused; a tool is missing",
    14: "目录数据库被占用 / the catalog is locked by another process",
    15: "输入值无效 / an input value is not acceptable",
    16: "无法读写指定的文件 / a named file or folder could not be read or written",
    20: "案件无录像 / the case has no recordings",
    21: "文件超过光盘容量 / a file is larger than the disc",
    22: "案件未标记长期保存 / the case is not marked for long-term keeping",
    23: "任务已停止 / the job was stopped",
    24: "镜像过大 / the image is too large",
    25: "输出存储已满 / the output disk is full",
    26: "缺少读取工具 / an ISO reader is missing",
    27: "没有刻录机 / no disc drive",
    28: "刻录失败 / burning failed",
    29: "光盘未校验 / the disc copy is not verified",
    70: "采集站内部错误 / internal error of the station",
}
