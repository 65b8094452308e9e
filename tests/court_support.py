"""Running a disc's or an export's own verify.py as a court would, on good and tampered copies
(R7, R12, R15). The tampering redoes the file lists (MANIFEST.json, SHA256SUMS) as a careful
forger would, so what fails is the signature or the inclusion proofs, not just a hash list."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

FINGERPRINT = re.compile(r"fingerprint: ((?:[0-9a-f]{4} ){7}[0-9a-f]{4})")


def court_check(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python3 verify.py`` from the folder itself, with only the standard library (``-I``:
    no site-packages, no environment — a court PC has none of the station's packages)."""
    return subprocess.run(
        [sys.executable, "-I", str(folder / "verify.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def fingerprint_in(stdout: str) -> str:
    found = FINGERPRINT.search(stdout)
    assert found, stdout
    return found.group(1)


def _writable_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reseal(root: Path, kind: str) -> None:
    """Redo the hash lists over the files as they are now (what a forger would do)."""
    if kind == "export":
        lines = []
        for line in (root / "SHA256SUMS").read_text("utf-8").splitlines():
            rel = line[66:]
            lines.append(f"{_sha(root / rel)}  {rel}\n")
        (root / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")
        return
    manifest = json.loads((root / "MANIFEST.json").read_text("utf-8"))
    for entry in manifest["files"] + manifest["support_files"]:
        path = root / entry["path"]
        entry["sha256"], entry["size"] = _sha(path), path.stat().st_size
    (root / "MANIFEST.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _names(kind: str) -> dict[str, str]:
    if kind == "disc":
        return {"checkpoint": "CHECKPOINT.txt", "key": "STATION-KEY.txt"}
    return {"checkpoint": "checkpoint.note", "key": "station-key.txt"}


def _edit_audit(root: Path, kind: str) -> None:
    """Change who did one audit entry; on a disc the entry's own hash is recomputed too."""
    if kind == "disc":
        path = root / "AUDIT.jsonl"
        rows = [json.loads(x) for x in path.read_text("utf-8").splitlines()]
        row = rows[0]
        row["actor"] = "someone-else"
        body = {k: row[k] for k in ("seq", "at", "actor", "event", "subject", "prev_hash")}
        body["data"] = json.loads(row["data"])
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        row["entry_hash"] = hashlib.sha256(canon.encode()).hexdigest()
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows),
            encoding="utf-8",
        )
    else:
        path = root / "audit-proof.json"
        doc = json.loads(path.read_text("utf-8"))
        doc["entries"][0]["entry"] = doc["entries"][0]["entry"].replace(
            '"actor":"', '"actor":"someone-else-'
        )
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def _alter_signature(root: Path, kind: str) -> None:
    path = root / _names(kind)["checkpoint"]
    lines = path.read_text("utf-8").split("\n")
    for i, line in enumerate(lines):
        if line.startswith("\u2014 "):
            dash, name, blob = line.split(" ")
            raw = bytearray(base64.b64decode(blob))
            raw[-1] ^= 0x01  # one bit of the Ed25519 signature
            lines[i] = f"{dash} {name} {base64.b64encode(bytes(raw)).decode()}"
    path.write_text("\n".join(lines), encoding="utf-8")


def _own_key(root: Path, kind: str) -> None:
    """A forger's own key: the checkpoint re-signed with it, and it shipped as the station's."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from station.audit import note

    cp_path, key_path = (root / n for n in _names(kind).values())
    text = cp_path.read_text("utf-8")
    body = text.partition("\n\n")[0] + "\n"
    name = next(x for x in text.split("\n") if x.startswith("\u2014 ")).split(" ")[1]
    key = Ed25519PrivateKey.generate()
    vkey = note.verifier_key(name, key.public_key())
    signed = note.sign_note(body, name, key)
    cp_path.write_text(
        signed + (f"# verifier key: {vkey}\n" if kind == "export" else ""), encoding="utf-8"
    )
    key_path.write_text(vkey + "\n", encoding="utf-8")


def tamper_cases(
    root: Path, tmp: Path, *, kind: str
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run the package's checker on four tampered copies; each must fail and say why."""
    good = court_check(root)
    fingerprint = fingerprint_in(good.stdout)
    if kind == "disc":
        manifest = json.loads((root / "MANIFEST.json").read_text("utf-8"))
        recording = manifest["files"][0]["path"]
    else:
        recording = sorted(p.name for p in (root / "recordings").iterdir())[0]
        recording = f"recordings/{recording}"
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    cases = {
        "byte": (lambda r: _flip_byte(r / recording), False, [recording, "FAILED"]),
        "audit": (lambda r: _edit_audit(r, kind), True, ["审计记录", "FAILED"]),
        "signature": (lambda r: _alter_signature(r, kind), True, ["signature is wrong"]),
        "own key": (lambda r: _own_key(r, kind), True, ["fingerprint", "expected 应为"]),
    }
    for name, (change, reseal, words) in cases.items():
        copy = _writable_copy(root, tmp / f"{kind}-{name.replace(' ', '-')}")
        change(copy)
        if reseal:
            _reseal(copy, kind)
        args = ("--fingerprint", fingerprint) if name == "own key" else ()
        res = court_check(copy, *args)
        results[name] = res
        assert res.returncode == 1, (name, res.stdout)
        assert "CHECK FAILED" in res.stdout and "校验失败" in res.stdout, (name, res.stdout)
        for word in words:
            assert word in res.stdout, (name, word, res.stdout)
        if name == "audit":
            # the edited entry no longer hashes to the one the signed checkpoint proves: its
            # proof fails, its link breaks, or no proof is found for its new hash
            caught = (
                "inclusion proof fails",
                "does not link",
                "not proven in the signed checkpoint",
            )
            assert any(c in res.stdout for c in caught), res.stdout
        if name == "own key":  # without the printed fingerprint, the forged key shows its own
            alone = court_check(copy)
            assert fingerprint_in(alone.stdout) != fingerprint
        shutil.rmtree(copy)
    assert os.path.isdir(root)
    return results
