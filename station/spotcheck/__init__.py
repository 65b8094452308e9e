"""Spot checks and the inspection ledger (R16)."""
