"""Pure checks on case input: numbers, R11 reason codes, tag categories."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from station.errors import StationError
from station.retention.policy import R11_REASONS
from station.text import LIMITS, check_text

# Tag categories for recordings (R6, R9): what kind of work the footage shows.
CATEGORIES: dict[str, tuple[str, str]] = {
    "patrol": ("日常巡查", "daily patrol"),
    "education": ("批评教育", "criticism and education"),
    "warning": ("口头警告", "verbal warning"),
    "inspection": ("检查", "inspection"),
    "enforcement": ("执法办案", "enforcement / case handling"),
    "city-management": ("数字城管", "digital city management"),
    "routine-other": ("其他不涉及当事人财产的例行工作", "other routine work, no party's property"),
    "emergency": ("突发事件", "emergency / mass incident"),
    "other": ("其他", "other"),
}

MAX_NUMBER_LEN = 100
_SHA = re.compile(r"^[0-9a-f]{64}$")


class CaseStateError(StationError):
    """The case is not in a state that allows this / 案件当前状态不允许此操作."""

    exit_code = 12


def check_case_number(number: str) -> str:
    """A case number as typed: spaces inside and Chinese characters are fine (they round-trip
    unchanged); empty, padded, over-long numbers and control characters are refused."""
    if not number or not number.strip():
        raise StationError("案件编号为空 / the case number is empty", where="NUMBER")
    if number != number.strip():
        raise StationError(
            f"案件编号首尾有空白 / the case number {number!r} starts or ends with white space",
            where="NUMBER",
            hint="quote the number without leading or trailing spaces",
        )
    if len(number) > MAX_NUMBER_LEN:
        raise StationError(
            f"案件编号过长 / the case number is longer than {MAX_NUMBER_LEN} characters",
            where="NUMBER",
        )
    for ch in number:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            raise StationError(
                f"案件编号含控制字符 / the case number contains a control character {ch!r}",
                where="NUMBER",
            )
    return number


def check_case_texts(**fields: str | None) -> None:
    """Case name, cause, party, department as stored (R6 tags): bounded length, no control
    characters, line breaks or bidi overrides (they would split or disguise table rows)."""
    names = {
        "name": ("案件名称", "the case name"),
        "cause": ("案由", "the case cause"),
        "party": ("当事人", "the case party"),
        "department": ("科室", "the department"),
        "unit_id": ("单位编号", "the unit number"),
    }
    for key, value in fields.items():
        if value is None:
            continue
        zh, en = names[key]
        limit = LIMITS["id"] if key == "unit_id" else LIMITS["name"]
        where = "--unit" if key == "unit_id" else f"--{key}"
        check_text(value, zh=zh, en=en, where=where, max_len=limit)


def check_reason(reason: int | None) -> int:
    """R11: a long-term mark needs one of the five reason codes."""
    if reason is None:
        raise StationError(
            "长期保存须注明理由代码 / a long-term mark needs a reason code (R11)",
            where="--reason",
            hint="第十四条：1 对执法工作不满、抵触情绪严重或曾有冲突纠纷；"
            "2 异议、投诉、上访、复议、诉讼；3 逃避、拒绝、阻碍执法或谩骂、侮辱、殴打执法人员；"
            "4 群体性事件、突发事件；5 其他需要长期保存的重要情况",
        )
    if reason not in R11_REASONS:
        raise StationError(
            f"理由代码须为 1–5 / the R11 reason code must be 1 to 5, got {reason}",
            where="--reason",
        )
    return reason


def check_reasons(reasons: int | Sequence[int] | None) -> list[int]:
    """R11: one or more of the five reason codes (a mark may rest on several items of
    第十四条), each once, in the order given."""
    if reasons is None or isinstance(reasons, int):
        return [check_reason(reasons)]
    codes = [check_reason(r) for r in reasons]
    if not codes:
        return [check_reason(None)]
    return list(dict.fromkeys(codes))


def check_sha(sha: str) -> str:
    value = sha.strip().lower()
    if not _SHA.match(value):
        raise StationError(
            f"不是 SHA-256 / not a SHA-256 (64 hex digits): {sha!r}",
            where="SHA256",
        )
    return value


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise StationError(
            f"未知分类 / unknown category {category!r}",
            where="--category",
            hint="one of " + ", ".join(CATEGORIES),
        )
    return category
