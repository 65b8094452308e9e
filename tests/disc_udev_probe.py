"""Runs under ``umockdev-wrapper``: a umockdev testbed with the block devices given as JSON on
argv[1] (name -> udev properties), then ``station disc ARGS…`` as a real child process inside
it. Prints the child's exit code, stdout and stderr as one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main() -> None:
    import gi

    gi.require_version("UMockdev", "1.0")
    from gi.repository import UMockdev

    tb = UMockdev.Testbed.new()
    for name, props in json.loads(sys.argv[1]).items():
        flat = [x for kv in {"DEVNAME": f"/dev/{name}", **props}.items() for x in kv]
        tb.add_device("block", name, None, ["size", "0"], flat)
    env = dict(os.environ, UMOCKDEV_DIR=tb.get_root_dir())  # HARNESS.md: pass it explicitly
    proc = subprocess.run(
        [sys.executable, "-m", "station", *sys.argv[2:]], env=env, capture_output=True, text=True
    )
    print(json.dumps({"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}))


if __name__ == "__main__":
    main()
