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


class FleetError(StationError):
    """The central store or the central catalog failed / 中心存储或中心数据库出错."""

    exit_code = 21
