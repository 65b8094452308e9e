"""Cases, recording tags, long-term marks and legal holds (R6, R10, R11, R13).

Every change writes its audit entry in the same transaction (DESIGN.md invariant 3).
"""

from station.cases.model import CATEGORIES, check_case_number, check_reason
from station.cases.store import (
    close_case,
    create_case,
    get_case,
    link,
    list_cases,
    mark_long_term,
    reopen_case,
    set_archive_location,
    unlink,
)
from station.errors import CaseStateError

__all__ = [
    "CATEGORIES",
    "CaseStateError",
    "check_case_number",
    "check_reason",
    "close_case",
    "create_case",
    "get_case",
    "link",
    "list_cases",
    "mark_long_term",
    "reopen_case",
    "set_archive_location",
    "unlink",
]
