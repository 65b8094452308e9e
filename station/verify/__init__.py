"""Verification of the vault, the catalog and the audit log (R7): ``station verify``."""

from station.verify.findings import MEANINGS, Finding
from station.verify.run import (
    VerifyProgress,
    VerifyReport,
    periodic_verify,
    record_verify,
    run_verify,
    verify_due,
)

__all__ = [
    "MEANINGS",
    "Finding",
    "VerifyProgress",
    "VerifyReport",
    "periodic_verify",
    "record_verify",
    "run_verify",
    "verify_due",
]
