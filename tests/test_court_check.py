"""A court checks a disc alone (R7, R12): the disc's verify.py — standard library only — checks
the files, the checkpoint's Ed25519 signature against the station key shipped on the disc, and
the audit excerpt's inclusion proofs; it prints the key's fingerprint, which is the one on the
label. Tampered copies (a flipped byte, an edited audit entry, an altered signature, a forger's
own key) fail with a clear message. The Windows checker is well-formed PowerShell."""

from __future__ import annotations

import hashlib
import json
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
    assert len(entries) >= 5 and out.count("OK      通过  审计记录") == len(entries)
    # R12/R7: the fingerprint the checker used is printed on the label (PDF text) and sleeve
    fp = fingerprint_in(out)
    label = subprocess.run(
        ["pdftotext", "-layout", str(outcomes[0].label_pdf), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert label.count(fp) >= 2  # on the disc face and in the sleeve's table
    readme = (rr / "README.txt").read_text("utf-8")
    assert fp in readme
    # recording times in the read-me are 北京时间, not UTC ISO (02:00Z = 10:00)
    assert "2026-03-01 10:00:00 北京时间" in readme and "2026-03-01T" not in readme
    assert court_check(rr, "--fingerprint", fp.replace(" ", "").upper()).returncode == 0
    # the station publishes the same fingerprint (`station checkpoint show`)
    from click.testing import CliRunner

    from station.cli import main

    shown = CliRunner().invoke(main, ["--home", str(vault.home), "checkpoint", "show", "--json"])
    assert json.loads(shown.stdout)["fingerprint"] == fp
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
        elif ch in ")}]" and (not stack or stack.pop() != pairs[ch]):
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


def test_image_formats_and_file_times_as_readers_see_them(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """What the images are, measured by independent tools (the README says the same): UDF
    revision 1.02 (udfinfo, 7-Zip), ISO 9660 with Rock Ridge and Joliet (xorriso). Each file's
    time is its recording's start (北京时间 +08:00 in the ISO trees; 7-Zip shows UDF times in
    UTC); the disc's own files carry the production time."""
    import datetime as dt

    from station.timeutil import parse_iso

    make_case(vault, db)
    _, outcomes = build(vault, db, ["2026-0012"])
    image = outcomes[0].image
    udf = subprocess.run(["udfinfo", str(image)], capture_output=True, text=True, check=True)
    facts = dict(x.split("=", 1) for x in udf.stdout.splitlines() if "=" in x)
    assert facts["udfrev"] == "1.02" and facts["udfwriterev"] == "1.02", udf.stdout
    listing = subprocess.run(
        ["7zz", "l", "-tudf", "-slt", str(image)], capture_output=True, text=True, check=True
    ).stdout
    assert "Type = Udf" in listing and "Version = 1.02" in listing
    # 7-Zip (UDF tree): the long-named recording's time is its start, 2026-03-01T02:00Z
    block = listing[listing.index("视频第一段.MP4") :].split("\n\n", 1)[0]
    assert "Modified = 2026-03-01 02:00:00" in block, block
    # xorriso (Rock Ridge, and Joliet alone): extracted files keep the recording's time
    rr = extract(image, tmp_path / "rr")
    jol = extract(image, tmp_path / "jol", joliet=True)
    manifest = json.loads((rr / "MANIFEST.json").read_text("utf-8"))
    starts = {
        f["path"]: manifest["metadata"][f["recording_sha256"]]["recorded_at"]
        for f in manifest["files"]
    }
    assert len(set(starts.values())) == 3  # three recordings, three different times
    for path, start in starts.items():
        want = float(int(parse_iso(start).timestamp()))  # the disc's records hold whole seconds
        assert (rr / path).stat().st_mtime == want, path
        joliet = next(f["joliet_path"] for f in manifest["files"] if f["path"] == path)
        assert (jol / joliet).stat().st_mtime == want, joliet
    made = parse_iso(manifest["disc"]["created_at"]).replace(microsecond=0)
    assert dt.datetime.fromtimestamp((rr / "README.txt").stat().st_mtime, dt.UTC) == made
    # the ISO 9660 record itself is written in 北京时间: 10:00 at +08:00 (32 × 15 minutes)
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(image))
    try:
        long_name = next(f for f in manifest["files"] if f["path"].endswith("视频第一段.MP4"))
        rec = iso.get_record(iso_path="/" + long_name["iso_path"] + ";1")
        assert (rec.date.hour, rec.date.minute, rec.date.gmtoffset) == (10, 0, 32)
    finally:
        iso.close()
