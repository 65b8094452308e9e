"""C2SP signed notes and tlog checkpoints with Ed25519 (https://c2sp.org/signed-note,
https://c2sp.org/tlog-checkpoint).

A checkpoint body is three lines — origin, tree size (decimal), root hash (base64) — plus optional
extension lines (we add ``time <UTC ISO>``). Then a blank line and one signature line per signer:
``— <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>``. The key id is the first
4 bytes of ``SHA-256(key name || "\\n" || 0x01 || public key)``; a verifier key is written
``<name>+<key id hex>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from station.errors import IntegrityError

ALG_ED25519 = 0x01
_DASH = "\u2014"  # em dash
_NAME = re.compile(r"^[^\s+]+$")


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4]


def public_bytes(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verifier_key(name: str, key: Ed25519PublicKey) -> str:
    if not _NAME.match(name):
        raise ValueError(f"key name {name!r} must not contain spaces or '+'")
    pub = public_bytes(key)
    return (
        f"{name}+{key_id(name, pub).hex()}+{base64.b64encode(bytes([ALG_ED25519]) + pub).decode()}"
    )


def fingerprint(public: bytes) -> str:
    """A public key's fingerprint as printed on paper (disc labels, handover lists): SHA-256 of
    the raw Ed25519 key, first 32 hex digits in groups of four. The disc's verify.py computes
    the same (``station/disc_burn/disc_verify.py``)."""
    digest = hashlib.sha256(public).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    key: Ed25519PublicKey


def parse_verifier_key(vkey: str) -> Verifier:
    try:
        name, hid, b64 = vkey.strip().split("+", 2)
        raw = base64.b64decode(b64, validate=True)
    except ValueError as exc:
        raise IntegrityError(f"not a verifier key: {vkey[:40]!r}") from exc
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise IntegrityError("verifier key is not an Ed25519 key")
    kid = bytes.fromhex(hid)
    if kid != key_id(name, raw[1:]):
        raise IntegrityError("verifier key id does not match its name and key")
    return Verifier(name, kid, Ed25519PublicKey.from_public_bytes(raw[1:]))


def checkpoint_body(origin: str, size: int, root: bytes, extensions: list[str]) -> str:
    if not origin or "\n" in origin:
        raise ValueError("origin must be one non-empty line")
    lines = [origin, str(size), base64.b64encode(root).decode(), *extensions]
    if any(not line or "\n" in line for line in lines):
        raise ValueError("checkpoint lines must be non-empty single lines")
    return "\n".join(lines) + "\n"


def sign_note(body: str, name: str, key: Ed25519PrivateKey) -> str:
    pub = public_bytes(key.public_key())
    sig = key.sign(body.encode())
    blob = base64.b64encode(key_id(name, pub) + sig).decode()
    return f"{body}\n{_DASH} {name} {blob}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...]
    text: str

    @property
    def time(self) -> str | None:
        for ext in self.extensions:
            if ext.startswith("time "):
                return ext[5:]
        return None


def _split_note(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    if "\n\n" not in text or not text.endswith("\n"):
        raise IntegrityError("not a signed note: no blank line before the signatures")
    body, _, sig_block = text.partition("\n\n")
    body += "\n"
    sigs: list[tuple[str, bytes]] = []
    for line in sig_block.rstrip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH:
            raise IntegrityError(f"malformed signature line {line[:60]!r}")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError as exc:
            raise IntegrityError("signature is not base64") from exc
        if len(blob) < 5:
            raise IntegrityError("signature too short")
        sigs.append((parts[1], blob))
    return body, sigs


def parse_checkpoint_body(body: str) -> tuple[str, int, bytes, tuple[str, ...]]:
    lines = body.rstrip("\n").split("\n")
    if len(lines) < 3 or not lines[1].isdigit() or (lines[1] != "0" and lines[1][0] == "0"):
        raise IntegrityError("not a checkpoint: expected origin, tree size and root hash lines")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except ValueError as exc:
        raise IntegrityError("checkpoint root hash is not base64") from exc
    if len(root) != 32:
        raise IntegrityError("checkpoint root hash is not 32 bytes")
    return lines[0], int(lines[1]), root, tuple(lines[3:])


def open_checkpoint(text: str, verifier: Verifier, *, origin: str | None = None) -> Checkpoint:
    """Parse a signed checkpoint and check its signature by ``verifier``; a note signed by any
    other key (a forged checkpoint) raises ``IntegrityError``."""
    body, sigs = _split_note(text)
    for name, blob in sigs:
        if name != verifier.name or blob[:4] != verifier.key_id:
            continue
        try:
            verifier.key.verify(blob[4:], body.encode())
        except InvalidSignature:
            raise IntegrityError(
                "检查点签名无效（伪造或被改动） / checkpoint signature is wrong: forged or altered",
                hint="compare with a checkpoint kept off the station (disc, print-out)",
            ) from None
        o, size, root, ext = parse_checkpoint_body(body)
        if origin is not None and o != origin:
            raise IntegrityError(
                f"checkpoint is for another log: origin {o!r}, expected {origin!r}"
            )
        return Checkpoint(o, size, root, ext, text)
    raise IntegrityError(
        "检查点不是本站密钥签名 / checkpoint is not signed by this station's key",
        hint=f"expected a signature by {verifier.name} ({verifier.key_id.hex()})",
    )
