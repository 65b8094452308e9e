"""Naming recordings the way people do: any unique hex prefix of the SHA-256 (8 digits or more).

Every command that takes a recording goes through :func:`resolve` so ``recordings list``'s short
id, a prefix copied from a report and the full 64-digit hash all work the same way. An ambiguous
prefix is refused with the candidates listed; a prefix that matches nothing is refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlite_utils

from station.errors import AmbiguousRecording, InputError, NotFoundError

MIN_DIGITS = 8
SHORT = 16  # the id ``recordings list`` and reports print
_HEX = re.compile(r"^[0-9a-f]+$")


def short(sha: str | None) -> str:
    """The id people see: the first 16 hex digits, which every command accepts."""
    return (sha or "")[:SHORT]


def resolve(db: sqlite_utils.Database, ref: str, *, where: str = "SHA256") -> str:
    """The full SHA-256 of the one recording whose hash starts with ``ref``."""
    given = ref.strip().lower()
    if len(given) < MIN_DIGITS or not _HEX.match(given):
        raise NotFoundError(
            f"不是录像编号 / not a recording id: {ref!r}",
            where=where,
            hint=f"请给出至少 {MIN_DIGITS} 位十六进制哈希前缀 / give at least {MIN_DIGITS} hex "
            "digits of the SHA-256, as `station recordings list` prints them",
        )
    rows = [
        r[0]
        for r in db.execute(
            "select sha256 from recordings where sha256 >= ? and sha256 < ? order by sha256"
            " limit 6",
            [given, given + "g"],
        ).fetchall()
    ]
    if not rows:
        raise NotFoundError(
            f"找不到该录像 / no recording with id {given}",
            where=where,
            hint="用 station recordings list 查看 / see `station recordings list`",
        )
    if len(rows) > 1:
        shown = ", ".join(short(r) if len(given) < SHORT else r for r in rows[:5])
        more = " …" if len(rows) > 5 else ""
        raise AmbiguousRecording(
            f"录像编号前缀不唯一 / recording id {given} is ambiguous: {shown}{more}",
            where=where,
            hint="请多给几位 / give more digits",
        )
    return str(rows[0])


def resolve_many(
    db: sqlite_utils.Database, refs: Iterable[str], *, where: str = "SHA256"
) -> tuple[str, ...]:
    """Every ref resolved (in order, duplicates dropped); the first bad one raises."""
    out: list[str] = []
    for ref in refs:
        sha = resolve(db, ref, where=where)
        if sha not in out:
            out.append(sha)
    return tuple(out)


_SHA = re.compile(r"^[0-9a-f]{64}$")


def check_sha(sha: str) -> str:
    value = sha.strip().lower()
    if not _SHA.match(value):
        raise InputError(
            f"不是 SHA-256 / not a SHA-256 (64 hex digits): {sha!r}",
            where="SHA256",
        )
    return value
