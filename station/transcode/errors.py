"""Errors of the transcode part. Each says what failed, where, and what to do."""

from __future__ import annotations

from station.errors import StationError


class TranscodeError(StationError):
    """Making an archival derivative failed / 归档转码失败."""

    exit_code = 12


class ToolMissingError(TranscodeError):
    """ffmpeg or ffprobe was not found / 找不到 ffmpeg 或 ffprobe."""

    exit_code = 13


class DamagedSourceError(TranscodeError):
    """The original recording is damaged / 原始录像已损坏.

    Permanent: retrying does not help. The recording is flagged for a clerk; a salvage may exist.
    """


class ToolFailedError(TranscodeError):
    """ffmpeg failed or crashed on a readable original / ffmpeg 运行失败 (will be retried)."""


class VerificationError(TranscodeError):
    """The derivative did not pass verification / 转码文件校验未通过 (will be retried)."""


class ArchivalFullError(TranscodeError):
    """The archival disk is full / 归档存储已满 (will be retried later)."""

    exit_code = 7


class StoppedError(TranscodeError):
    """The job was stopped because the station is shutting down / 采集站正在停止."""
