"""Run many ``station`` command lines fast: one process imports the station once, then forks a
child per command line, as ``station ARGS`` would run (real stdin/stdout/stderr files, real exit
code). A child that has not finished after ``--timeout`` seconds is killed (reported as a hang).

Input on stdin: JSON ``{"env": {...}, "cases": [{"args": [...], "term_after": s?}, ...]}``
(non-UTF-8 bytes as lone surrogates, exactly as Python decodes ``argv``). Output on stdout: JSON
list of ``{"args", "code", "signal", "terminated", "stderr", "stdout", "seconds"}``.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import signal
import sys
import tempfile
import time
import traceback


def _preload() -> None:
    import station

    for mod in pkgutil.walk_packages(station.__path__, "station."):
        if mod.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except Exception:  # an optional part (GI, umockdev) may be missing; the child will see
            pass


def _child(args: list[str], env: dict[str, str], out: int, err: int, timeout: int) -> None:
    code = 1
    try:
        os.environ.update(env)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        signal.alarm(timeout)
        from station.cli import main

        try:
            main.main(args=args, prog_name="station")
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_all(cases: list[dict], env: dict[str, str], timeout: int, jobs: int) -> list[dict]:
    """Run every case, ``jobs`` at a time. A case with ``term_after`` (a command that runs until
    stopped) gets SIGTERM after that many seconds if it is still running, and must then stop."""
    results: list[dict] = [{} for _ in cases]
    running: dict[int, tuple[int, str, str, float, bool]] = {}
    todo = list(enumerate(cases))
    tmp = tempfile.mkdtemp(prefix="hostile-")

    def finish(pid: int, status: int) -> None:
        i, out_p, err_p, t0, termed = running.pop(pid)
        with open(out_p, encoding="utf-8", errors="backslashreplace") as f:
            out = f.read()
        with open(err_p, encoding="utf-8", errors="backslashreplace") as f:
            err = f.read()
        os.unlink(out_p)
        os.unlink(err_p)
        results[i] = {
            "args": cases[i]["args"],
            "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "terminated": termed,
            "stdout": out[-4000:],
            "stderr": err[-8000:],
            "seconds": round(time.monotonic() - t0, 3),
        }

    while todo or running:
        while todo and len(running) < jobs:
            i, case = todo.pop(0)
            out_p, err_p = os.path.join(tmp, f"{i}.out"), os.path.join(tmp, f"{i}.err")
            out = os.open(out_p, os.O_WRONLY | os.O_CREAT, 0o600)
            err = os.open(err_p, os.O_WRONLY | os.O_CREAT, 0o600)
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(case["args"], env, out, err, timeout)
            os.close(out)
            os.close(err)
            running[pid] = (i, out_p, err_p, time.monotonic(), False)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            finish(pid, status)
            continue
        now = time.monotonic()
        for pid, (i, out_p, err_p, t0, termed) in list(running.items()):
            after = cases[i].get("term_after")
            if after is not None and not termed and now - t0 > after:
                os.kill(pid, signal.SIGTERM)
                running[pid] = (i, out_p, err_p, t0, True)
        time.sleep(0.02)
    os.rmdir(tmp)
    return results


def main() -> None:
    timeout = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    spec = json.loads(sys.stdin.read())
    _preload()
    results = run_all(spec["cases"], spec["env"], timeout, jobs)
    sys.stdout.write(json.dumps(results, ensure_ascii=True))


if __name__ == "__main__":
    main()
