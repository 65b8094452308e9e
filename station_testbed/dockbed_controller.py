"""Runs under ``umockdev-wrapper``: owns a umockdev Testbed, starts the station daemon as a real
subprocess inside it, and adds/removes devices on request (JSON lines on stdin -> stdout).

Driven by :class:`station_testbed.dockbed.DockBed` (the demo, the benchmark, the tests):
``umockdev-wrapper python -m station_testbed.dockbed_controller HOME LOGFILE``.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys


def flat(d: dict[str, str]) -> list[str]:
    out: list[str] = []
    for k, v in d.items():
        out += [k, v]
    return out


def main() -> int:
    import gi

    gi.require_version("UMockdev", "1.0")
    from gi.repository import UMockdev

    home, log_path = sys.argv[1], sys.argv[2]
    tb = UMockdev.Testbed.new()
    env = dict(os.environ)
    env["UMOCKDEV_DIR"] = tb.get_root_dir()  # HARNESS.md: the child needs it explicitly
    env["STATION_LOG_JSON"] = "1"
    daemon: subprocess.Popen[bytes] | None = None
    with open(log_path, "ab") as log:
        for line in sys.stdin:
            cmd = json.loads(line)
            op = cmd["op"]
            reply: dict[str, object] = {"op": op}
            if op == "start":
                daemon = subprocess.Popen(
                    [sys.executable, "-m", "station", "--home", home, "--service", "run"],
                    env=env,
                    stdout=log,
                    stderr=log,
                    cwd=cmd.get("cwd"),
                )
                reply["pid"] = daemon.pid
                reply["root"] = tb.get_root_dir()
            elif op == "add":
                reply["syspath"] = tb.add_device(
                    cmd["subsystem"],
                    cmd["name"],
                    cmd.get("parent"),
                    flat(cmd.get("attrs", {})),
                    flat(cmd.get("props", {})),
                )
            elif op == "add_many":
                # several devices in one go, no round trip between them (several docks
                # announced at once); a parent given as {"ref": i} is the i-th added here
                paths: list[str] = []
                for dev in cmd["devices"]:
                    parent = dev.get("parent")
                    if isinstance(parent, dict):
                        parent = paths[parent["ref"]]
                    paths.append(
                        tb.add_device(
                            dev["subsystem"],
                            dev["name"],
                            parent,
                            flat(dev.get("attrs", {})),
                            flat(dev.get("props", {})),
                        )
                    )
                reply["syspaths"] = paths
            elif op == "root":
                reply["root"] = tb.get_root_dir()
            elif op == "run":
                proc = subprocess.run(cmd["argv"], env=env, capture_output=True, text=True)
                reply.update(rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
            elif op == "remove":
                # remove_device() sends nothing (HARNESS.md): send the uevent first.
                tb.uevent(cmd["syspath"], "remove")
                tb.remove_device(cmd["syspath"])
            elif op == "uevent":
                tb.uevent(cmd["syspath"], cmd["action"])
            elif op == "stop":
                if daemon is None:
                    print(json.dumps({"op": op, "rc": None}), flush=True)
                    break
                daemon.send_signal(signal.SIGTERM)
                try:
                    reply["rc"] = daemon.wait(cmd.get("timeout", 60))
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    reply["rc"] = "killed"
                daemon = None
            print(json.dumps(reply), flush=True)
            if op == "stop":
                break
    root = tb.get_root_dir()
    del tb
    gc.collect()
    shutil.rmtree(root, ignore_errors=True)  # the Testbed's finalizer may not run at exit
    if daemon is not None:
        daemon.kill()
        daemon.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
