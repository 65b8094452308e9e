#!/usr/bin/env python3
"""自行校验本光盘（或导出包）/ Check this disc (or export package) on your own.

Uses only the Python standard library (3.6+), nothing to install:

    python3 verify.py                       (Linux, macOS; "py verify.py" on Windows)
    python3 verify.py --fingerprint "1a2b 3c4d 5e6f 7a8b 9c0d 1e2f 3a4b 5c6d"

Three checks, each must pass (exit status 0):

1. Files: every file listed (MANIFEST.json on a disc, SHA256SUMS in an export) is hashed with
   SHA-256 and compared. On a disc a file is looked up by its full name (Rock Ridge / UDF),
   then its Joliet name, then its plain ISO 9660 name, whichever the computer shows.
2. Signature: CHECKPOINT.txt (checkpoint.note in an export) is the station's signed audit
   checkpoint (C2SP signed note, Ed25519, RFC 8032). Its signature is checked with the station's
   public key shipped beside it (STATION-KEY.txt, or the key line of checkpoint.note). A key
   shipped on the disc proves nothing by itself: the key's fingerprint is printed here, and must
   be the one printed on the disc label / handover list and published by the station (or give
   it with --fingerprint and this program compares it).
3. Audit excerpt: every entry of AUDIT.jsonl (a disc) or audit-proof.json (an export) must hash
   to its own entry hash, link to the entry before it when both are present, and be included in
   the signed checkpoint (RFC 6962 inclusion proof, AUDIT-PROOF.json). An entry edited after the
   checkpoint was signed fails here.
"""

import base64
import hashlib
import json
import os
import sys

# ---------------------------------------------------------------------------------------------
# Ed25519 signature check (RFC 8032 section 5.1.7), pure Python: Python's standard library has
# no Ed25519. Verification only (public data), so constant time does not matter here.

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)
_ZERO = (0, 1, 1, 0)


def _add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s, p):
    q = _ZERO
    while s > 0:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _same(p, q):
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _decode_point(b):
    if len(b) != 32:
        return None
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def ed25519_verify(public, message, signature):
    """True if ``signature`` (64 bytes) is a valid Ed25519 signature of ``message`` by the
    32-byte ``public`` key."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public)
    r = _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    k = hashlib.sha512(signature[:32] + public + message).digest()
    h = int.from_bytes(k, "little") % _L
    return _same(_mul(s, _G), _add(r, _mul(h, a)))


# ---------------------------------------------------------------------------------------------
# The station's key, its checkpoint and the audit log's Merkle tree (same formats as the
# station: C2SP signed note / tlog checkpoint, RFC 6962 hashing).

_DASH = "\u2014"


def fingerprint(public):
    """SHA-256 of the raw public key, first 32 hex digits in groups of four (as printed)."""
    digest = hashlib.sha256(public).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def parse_vkey(text):
    """(name, key id, public key) from a verifier key ``name+keyid+base64(0x01||key)``."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# verifier key:"):
            line = line.split(":", 1)[1].strip()
        if not line or line.startswith("#") or line.count("+") < 2:
            continue
        name, hid, b64 = line.split("+", 2)
        try:
            raw = base64.b64decode(b64.encode("ascii"), validate=True)
            kid = bytes.fromhex(hid)
        except ValueError:
            continue
        if len(raw) != 33 or raw[0] != 1:
            continue
        want = hashlib.sha256(name.encode() + b"\n" + raw[:1] + raw[1:]).digest()[:4]
        if kid != want:
            raise ValueError("公钥编号不符 / the key's id does not match its name and key")
        return name, kid, raw[1:]
    return None


def open_checkpoint(text, key):
    """Check the note's signature by ``key``; return (origin, size, root hash)."""
    name, kid, public = key
    lines = text.split("\n")
    # an export's checkpoint.note carries the key as a comment line after the signatures
    text = "\n".join(x for x in lines if not x.startswith("# ")).rstrip("\n") + "\n"
    if "\n\n" not in text:
        raise ValueError("不是签名检查点 / not a signed note")
    body, _, sigs = text.partition("\n\n")
    body += "\n"
    signed = False
    for line in sigs.rstrip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or parts[1] != name:
            continue
        blob = base64.b64decode(parts[2].encode("ascii"))
        if blob[:4] != kid:
            continue
        if not ed25519_verify(public, body.encode("utf-8"), blob[4:]):
            raise ValueError(
                "检查点签名无效 / the checkpoint's signature is wrong: forged or altered"
            )
        signed = True
    if not signed:
        raise ValueError("检查点不是此公钥签名 / the checkpoint is not signed by this key")
    head = body.split("\n")
    root = base64.b64decode(head[2].encode("ascii"))
    if not head[1].isdigit() or len(root) != 32:
        raise ValueError("不是检查点 / not a checkpoint")
    return head[0], int(head[1]), root


def canonical(obj):
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# ---------------------------------------------------------------------------------------------


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def find(root, entry):
    for key in ("path", "joliet_path", "iso_path"):
        rel = entry.get(key)
        if not rel:
            continue
        for candidate in (rel, rel + ";1", rel.lower(), rel.upper()):
            full = os.path.join(root, *candidate.split("/"))
            if os.path.isfile(full):
                return full
    return None


_SUPPORT: dict = {}  # support files by full name, from MANIFEST.json (their Joliet and ISO names)


def _support(root, name):
    return find(root, _SUPPORT.get(name) or {"path": name, "joliet_path": name})


def _read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


class Report:
    def __init__(self):
        self.bad = 0

    def ok(self, text):
        print("OK      通过  " + text)

    def fail(self, text):
        print("FAILED  失败  " + text)
        self.bad += 1


def check_files(root, out):
    """Step 1. Returns (what was checked, disc facts or None, kind)."""
    manifest_path = find(
        root, {"path": "MANIFEST.json", "joliet_path": "MANIFEST.json", "iso_path": "MANIFEST.JSO"}
    )
    manifest = json.loads(_read(manifest_path)) if manifest_path is not None else {}
    if str(manifest.get("format", "")).startswith("station-disc/"):  # a disc, not an export
        for entry in manifest.get("support_files", []):
            _SUPPORT[entry["path"]] = entry
        entries = manifest["files"] + manifest.get("support_files", [])
        for entry in entries:
            path = find(root, entry)
            if path is None:
                out.fail("MISSING 缺失 " + entry["path"])
            elif os.path.getsize(path) != entry["size"] or sha256_of(path) != entry["sha256"]:
                out.fail(entry["path"])
            else:
                out.ok(entry["path"])
        return len(entries), manifest.get("disc", {}), "disc"
    sums = os.path.join(root, "SHA256SUMS")
    if not os.path.isfile(sums):
        return None, None, None
    n = 0
    for line in _read(sums).splitlines():
        if len(line) < 67 or line[64:66] != "  ":
            continue
        want, rel = line[:64], line[66:]
        n += 1
        path = os.path.join(root, *rel.split("/"))
        if not os.path.isfile(path):
            out.fail("MISSING 缺失 " + rel)
        elif sha256_of(path) != want:
            out.fail(rel)
        else:
            out.ok(rel)
    return n, None, "export"


def check_signature(root, kind, out, expected):
    """Step 2. Returns the checkpoint (origin, size, root) or None."""
    if kind == "disc":
        cp_path = _support(root, "CHECKPOINT.txt")
        key_path = _support(root, "STATION-KEY.txt")
    else:
        cp_path = os.path.join(root, "checkpoint.note")
        key_path = os.path.join(root, "station-key.txt")
        if not os.path.isfile(key_path):
            key_path = cp_path
    if cp_path is None or not os.path.isfile(cp_path):
        out.fail("MISSING 缺失 signed checkpoint / 签名检查点")
        return None
    if key_path is None or not os.path.isfile(key_path):
        out.fail("MISSING 缺失 station key / 采集站公钥 STATION-KEY.txt")
        return None
    try:
        key = parse_vkey(_read(key_path))
    except ValueError as exc:
        out.fail("采集站公钥 / station key: " + str(exc))
        return None
    if key is None:
        out.fail("找不到采集站公钥 / no station key found: " + os.path.basename(key_path))
        return None
    fp = fingerprint(key[2])
    print("")
    print("采集站公钥指纹 / station key fingerprint: " + fp)
    print("  请与光盘标签或移交清单上印的指纹、以及采集站公布的指纹核对")
    print("  compare with the fingerprint printed on the disc label / handover list and")
    print("  published by the station: a different one means the key is not the station's.")
    if expected is not None:
        if "".join(expected.split()).lower() != "".join(fp.split()):
            out.fail("指纹 / fingerprint: expected 应为 " + expected + ", the key has 实为 " + fp)
            return None
        out.ok("指纹与给定一致 / fingerprint as given")
    try:
        cp = open_checkpoint(_read(cp_path), key)
    except (ValueError, IndexError) as exc:
        out.fail("检查点签名 / checkpoint signature: " + str(exc))
        return None
    out.ok(
        f"checkpoint signed by {key[0]} over {cp[1]} audit entries / "
        f"检查点签名有效，覆盖 {cp[1]} 条审计记录"
    )
    return cp


def _load_audit(root, kind):
    """The audit entries to check as (body dict, stored entry hash or None), and the proofs by
    sequence number."""
    entries, proofs = [], {}
    if kind == "disc":
        audit = _support(root, "AUDIT.jsonl")
        proof = _support(root, "AUDIT-PROOF.json")
        if audit is not None:
            for line in _read(audit).splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                body = {k: row.get(k) for k in ("seq", "at", "actor", "event", "subject")}
                body["prev_hash"] = row.get("prev_hash")
                try:
                    body["data"] = json.loads(row.get("data") or "{}")
                except ValueError:
                    body["data"] = {"__unreadable__": row.get("data")}
                entries.append((body, row.get("entry_hash")))
    else:
        proof = os.path.join(root, "audit-proof.json")
        if not os.path.isfile(proof):
            proof = None
    if proof is not None:
        for p in json.loads(_read(proof)).get("entries", []):
            proofs[p["seq"]] = p
    if kind != "disc":
        for seq in sorted(proofs):
            entries.append((json.loads(proofs[seq]["entry"]), None))
    return entries, proofs


def check_audit(root, kind, cp, out):
    """Step 3."""
    entries, proofs = _load_audit(root, kind)
    if not entries:
        out.fail("MISSING 缺失 audit excerpt / 审计记录摘录")
        return 0
    prev = None
    for body, stored in entries:
        seq = body.get("seq")
        text = canonical(body)
        digest = hashlib.sha256(text).hexdigest()
        what = "审计记录 {0} / audit entry {0} ({1})".format(seq, body.get("event"))
        if stored is not None and digest != stored:
            out.fail(what + ": 与自身哈希不符（被改动）/ does not match its own hash (edited)")
            prev = None
            continue
        if prev is not None and prev[0] + 1 == seq and body.get("prev_hash") != prev[1]:
            out.fail(what + ": 与前一条记录链接不符 / does not link to the entry before")
            prev = (seq, digest)
            continue
        prev = (seq, digest)
        p = proofs.get(seq)
        if cp is None:
            out.fail(what + ": 无有效检查点 / no valid checkpoint to check it against")
        elif p is None or p.get("entry") != text.decode("utf-8"):
            out.fail(what + ": 未被签名检查点证明 / not proven in the signed checkpoint")
        elif not verify_inclusion(
            p["leaf_index"],
            cp[1],
            hashlib.sha256(b"\x00" + text).digest(),
            [bytes.fromhex(x) for x in p["proof"]],
            cp[2],
        ):
            out.fail(what + ": 包含证明不成立（被改动）/ inclusion proof fails (edited)")
        else:
            out.ok(what)
    return len(entries)


def main(argv):
    args = list(argv[1:])
    expected = None
    if "--fingerprint" in args:
        i = args.index("--fingerprint")
        if i + 1 >= len(args):
            print("需要给出指纹 / --fingerprint needs the printed fingerprint")
            return 2
        expected = args[i + 1]
        del args[i : i + 2]
    root = args[0] if args else os.path.dirname(os.path.abspath(__file__))
    out = Report()
    print("1. 文件 / files")
    files, disc, kind = check_files(root, out)
    if kind is None:
        print("MANIFEST.json / SHA256SUMS not found / 找不到清单: " + root)
        return 2
    print("")
    print("2. 签名 / signature")
    cp = check_signature(root, kind, out, expected)
    print("")
    print("3. 审计记录 / audit entries")
    entries = check_audit(root, kind, cp, out)
    print("")
    if disc is not None:
        print(
            "第 {0} 张，共 {1} 张 / disc {0} of {1}".format(
                disc.get("disc_no", "?"), disc.get("discs_total", "?")
            )
        )
    print(
        f"{files} files and {entries} audit entries checked / "
        f"已校验 {files} 个文件、{entries} 条审计记录, {out.bad} failed / {out.bad} 项失败"
    )
    if out.bad:
        print("校验失败：内容被改动或不完整 / CHECK FAILED: altered or incomplete")
        return 1
    print("全部一致，签名有效 / all match, signature valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
