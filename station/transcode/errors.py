"""Errors of the transcode part. Each says what failed, where, and what to do.

The classes with exit codes of their own (TranscodeError, ToolMissingError, ArchivalFullError,
StoppedError) live in the station's one table, ``station.errors``; the rest inherit
TranscodeError's code.
"""

from __future__ import annotations

from station.errors import ArchivalFullError, StoppedError, ToolMissingError, TranscodeError

__all__ = [
    "ArchivalFullError",
    "DamagedSourceError",
    "StoppedError",
    "ToolFailedError",
    "ToolMissingError",
    "TranscodeError",
    "VerificationError",
]


class DamagedSourceError(TranscodeError):
    """原始录像已损坏 / The original recording is damaged.

    Permanent: retrying does not help. The recording is flagged for a clerk; a salvage may exist.
    """


class ToolFailedError(TranscodeError):
    """ffmpeg 运行失败（稍后重试） / ffmpeg failed or crashed on a readable original."""


class VerificationError(TranscodeError):
    """转码文件校验未通过（稍后重试） / The derivative did not pass verification."""
