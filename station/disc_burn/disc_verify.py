#!/usr/bin/env python3
"""校验本光盘与清单是否一致 / Check this disc against its manifest.

Uses only the Python standard library (3.6+), so it runs on any computer with Python:

    python3 verify.py            (Linux, macOS; or "py verify.py" on Windows)

Every file listed in MANIFEST.json is hashed with SHA-256 and compared. The file is looked up by
its full name (Rock Ridge / UDF), then by its Joliet name, then by its plain ISO 9660 name, so
the check works whichever file system the computer shows. Exit status 0: all files match.
"""

import hashlib
import json
import os
import sys


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


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    manifest_path = find(
        root, {"path": "MANIFEST.json", "joliet_path": "MANIFEST.json", "iso_path": "MANIFEST.JSO"}
    )
    if manifest_path is None:
        print("找不到清单 MANIFEST.json:  / MANIFEST.json not found" + root)
        return 2
    with open(manifest_path, "rb") as f:
        manifest = json.loads(f.read().decode("utf-8"))
    entries = manifest["files"] + manifest.get("support_files", [])
    bad = 0
    for entry in entries:
        path = find(root, entry)
        if path is None:
            print("MISSING 缺失  " + entry["path"])
            bad += 1
            continue
        if os.path.getsize(path) != entry["size"] or sha256_of(path) != entry["sha256"]:
            print("FAILED  不一致 " + entry["path"])
            bad += 1
        else:
            print("OK      一致   " + entry["path"])
    disc = manifest.get("disc", {})
    print(
        "第 {0} 张，共 {1} 张 / disc {0} of {1}: 已校验 {2} 个文件 / {2} files checked, "
        "{3} 个失败 / {3} failed".format(
            disc.get("disc_no", "?"), disc.get("discs_total", "?"), len(entries), bad
        )
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
