"""Tamper-evident audit log (R7). Every change to evidence writes an entry here, in the same
transaction as the change (DESIGN.md invariant 3)."""

from station.audit.log import GENESIS, append, canonical_json, entry_hash

__all__ = ["GENESIS", "append", "canonical_json", "entry_hash"]
