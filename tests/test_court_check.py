"""A court checks a disc alone (R7, R12): the disc's verify.py — standard library only — checks
the files, the checkpoint's Ed25519 signature against the station key shipped on the disc, and
the audit excerpt's inclusion proofs; it prints the key's fingerprint, which is the one on the
label. Tampered copies (a flipped byte, an edited audit entry, an altered signature, a forger's
own key) fail with a clear message. The Windows checker is well-formed PowerShell."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import sqlite_utils

from station.disc_burn import disc_verify
from station.disc_burn.manifest import verify_ps1
from station.vault import Vault
from tests.court_support import court_check, fingerprint_in, tamper_cases
from tests.test_disc_build import build, extract, make_case


def test_pure_python_ed25519_agrees_with_openssl() -> None:
    """RFC 8032 §7.1 test 1, and random keys and messages signed by OpenSSL (cryptography)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from station.audit.note import public_bytes

    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert disc_verify.ed25519_verify(pub, b"", sig)
    assert not disc_verify.ed25519_verify(pub, b"x", sig)
    for n in range(8):
        key = Ed25519PrivateKey.generate()
        msg = os.urandom(n * 37)
        good = key.sign(msg)
        raw = public_bytes(key.public_key())
        assert disc_verify.ed25519_verify(raw, msg, good)
        bad = bytearray(good)
        bad[n] ^= 0x40
        assert not disc_verify.ed25519_verify(raw, msg, bytes(bad))
        assert not disc_verify.ed25519_verify(raw, msg + b"!", good)
        other = public_bytes(Ed25519PrivateKey.generate().public_key())
        assert not disc_verify.ed25519_verify(other, msg, good)
        # the fingerprint is the one the station prints
        from station.audit.note import fingerprint

        assert disc_verify.fingerprint(raw) == fingerprint(raw)


def test_disc_checker_alone_and_on_tampered_copies(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    make_case(vault, db)
    _, outcomes = build(vault, db, ["2026-0012"])
    rr = extract(outcomes[0].image, tmp_path / "rr")
    good = court_check(rr)
    assert good.returncode == 0, good.stdout
    out = good.stdout
    assert "checkpoint signed by STATION-01-audit" in out and "全部一致，签名有效" in out
    # every audit entry on the disc is proven in the signed checkpoint
    entries = (rr / "AUDIT.jsonl").read_text("utf-8").splitlines()
    assert len(entries) >= 5 and out.count("OK      一致   audit entry") == len(entries)
    # R12/R7: the fingerprint the checker used is printed on the label (PDF text) and sleeve
    fp = fingerprint_in(out)
    label = subprocess.run(
        ["pdftotext", "-layout", str(outcomes[0].label_pdf), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert label.count(fp) >= 2  # on the disc face and in the sleeve's table
    assert fp in (rr / "README.txt").read_text("utf-8")
    assert court_check(rr, "--fingerprint", fp.replace(" ", "").upper()).returncode == 0
    tamper_cases(rr, tmp_path, kind="disc")


def _ps_tokens_balance(text: str) -> list[str]:
    """A small PowerShell lexer: strips comments, here-less strings ('…' with '' escapes, "…"
    with ` escapes) and checks (), {}, [] nest. Returns the problems found."""
    problems, stack = [], []
    pairs = {")": "(", "}": "{", "]": "["}
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        if ch in "'\"":
            j = i + 1
            while j < n:
                if ch == '"' and text[j] == "`":
                    j += 2
                    continue
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            if j >= n:
                problems.append(f"unterminated string at {i}")
            i = j + 1
            continue
        if ch in "({[":
            stack.append(ch)
        elif ch in ")}]":
            if not stack or stack.pop() != pairs[ch]:
                problems.append(f"unbalanced {ch} at {i}")
        i += 1
    return problems + [f"unclosed {c}" for c in stack]


def test_windows_checker_is_well_formed() -> None:
    """pwsh cannot be installed here (not in Debian's archive; PyPI has no PowerShell), so the
    script is checked as text: UTF-8 with BOM, CRLF only, balanced blocks and strings, only
    cmdlets and .NET types present on stock Windows 10 (PowerShell 5.1)."""
    data = verify_ps1()
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\n" not in data.replace(b"\r\n", b"")
    text = data[3:].decode("utf-8").replace("\r\n", "\n")
    assert _ps_tokens_balance(text) == []
    cmdlets = set(re.findall(r"\b([A-Z][a-z]+-[A-Z][A-Za-z]+)\b", text))
    stock = {"Get-FileHash", "Join-Path", "Test-Path", "Write-Host", "New-Object", "ForEach-Object"}
    assert "Get-FileHash" in cmdlets and cmdlets <= stock, cmdlets
    assert "param(" in text and "exit 1" in text and "exit 0" in text
    # .NET types of the .NET Framework 4.x that Windows 10 ships
    types = set(re.findall(r"\[(System\.[A-Za-z.]+)\]", text))
    assert types <= {
        "System.IO.File", "System.Text.Encoding", "System.Convert", "System.Array",
        "System.Security.Cryptography.SHA256",
    }, types  # fmt: skip
    # its manifest regex takes every line of a real sha256sum list
    line = f"{hashlib.sha256(b'x').hexdigest()}  原始录像 originals/a b.MP4"
    assert re.match(r"^([0-9a-f]{64})  (.+)$", line)
