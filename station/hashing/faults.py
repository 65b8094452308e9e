"""Fault injection for readers, after borg's failing chunker.

``FailingReader(inner, "rrrE")`` passes the first three reads through and raises EIO on the
fourth; ``"rrV"`` makes the volume vanish (ENODEV); ``"rrS"`` returns a short read of zero bytes
early (a truncated stream). The last letter repeats. Used by tests to make I/O faults real
without a broken disk.
"""

from __future__ import annotations

import errno
import os

from station.hashing.copy import Reader


class FailingReader:
    def __init__(self, inner: Reader, pattern: str, name: str = "<source>") -> None:
        self.inner = inner
        self.pattern = pattern
        self.name = name
        self.calls = 0

    def readinto(self, buffer: memoryview) -> int | None:
        op = self.pattern[min(self.calls, len(self.pattern) - 1)]
        self.calls += 1
        if op == "E":
            raise OSError(errno.EIO, os.strerror(errno.EIO), self.name)
        if op == "V":
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV), self.name)
        if op == "S":
            return 0
        return self.inner.readinto(buffer)

    def will_need(self) -> None:
        self.inner.will_need()

    def close(self) -> None:
        self.inner.close()
