"""Reading an image back through independent readers (R12: every copy verified).

Three checks, run side by side so the image is read from the disk about once:

- the image's own SHA-256 (compared with the one recorded when it was built);
- **xorriso** (libisofs, the Rock Ridge tree): lists every file with its size
  (``-find / -type f -exec report_lba``), streams their contents (``-concat append -``), and
  lists the Joliet tree (``-read_fs norock`` — it must come *before* ``-indev``, else xorriso
  still shows the Rock Ridge names) to check the Windows names;
- **7-Zip** (``7zz``, its own UDF reader): lists the UDF tree (``l -slt -tudf``) and streams
  every file (``x -so -tudf``).

Every file's SHA-256 and size are compared with the manifest; a missing, extra or different file
fails the check. Files over 4 GiB are read whole by both (HARNESS.md: pycdlib's own reader is
not trusted for them).

Right after a build (``content_by``) each copy's files are read once from the disk: its image
hash is the one taken while writing (no re-read); 7-Zip hashes every file's content itself
(``t -scrcSHA256``: copy A through its Joliet tree, copy B through its UDF tree) and the sum of
the digests must equal the manifest's (if not, the files are streamed to name the ones that
differ); xorriso checks the Rock Ridge and Joliet trees and 7-Zip the UDF tree of each copy by
names and sizes (``contents: false``). ``station disc verify`` keeps all three full checks.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from station.errors import ReaderMissingError

CHUNK = 1 << 20
_ENV = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
_LBA = re.compile(r"^File data lba:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*'(.*)'\s*$")


@dataclass(frozen=True)
class Expected:
    path: str  # full path (Rock Ridge, UDF), no leading slash
    joliet_path: str
    sha256: str
    size: int


@dataclass
class ReaderResult:
    reader: str
    files_checked: int = 0
    bytes_read: int = 0
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    error: str | None = None
    contents: bool = True  # False: names and sizes checked, contents not read by this reader

    @property
    def ok(self) -> bool:
        return not (self.mismatched or self.missing or self.extra or self.error)


@dataclass
class ReadbackResult:
    image_sha256: str
    image_size: int
    expected_sha256: str | None
    readers: list[ReaderResult]
    image_reread: bool = True  # False: the image hash is the one taken while writing

    @property
    def image_ok(self) -> bool:
        return self.expected_sha256 is None or self.expected_sha256 == self.image_sha256

    @property
    def ok(self) -> bool:
        return self.image_ok and all(r.ok for r in self.readers)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "image_sha256": self.image_sha256,
            "image_size": self.image_size,
            "expected_sha256": self.expected_sha256,
            "image_ok": self.image_ok,
            "image_reread": self.image_reread,
            "readers": [{**asdict(r), "ok": r.ok} for r in self.readers],
        }

    def problems(self) -> list[str]:
        out = []
        if not self.image_ok:
            out.append(f"image sha256 {self.image_sha256} != recorded {self.expected_sha256}")
        for r in self.readers:
            if r.error:
                out.append(f"{r.reader}: {r.error}")
            out += [f"{r.reader}: content differs: {p}" for p in r.mismatched]
            out += [f"{r.reader}: missing: {p}" for p in r.missing]
            out += [f"{r.reader}: unexpected: {p}" for p in r.extra]
        return out


Tick = Callable[[int], None]


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ReaderMissingError(
            f"找不到 {name} / {name} not found",
            hint="install the Debian packages xorriso and 7zip (scripts/setup.sh)",
        )
    return found


def hash_stream(stream: IO[bytes], size: int, tick: Tick | None = None) -> tuple[str, int]:
    """SHA-256 of the next ``size`` bytes of ``stream``; returns (hex, bytes actually read)."""
    h = hashlib.sha256()
    left = size
    while left > 0:
        block = stream.read(min(CHUNK, left))
        if not block:
            break
        h.update(block)
        left -= len(block)
        if tick:
            tick(len(block))
    return h.hexdigest(), size - left


def hash_file(path: Path, tick: Tick | None = None) -> tuple[str, int]:
    size = path.stat().st_size
    with open(path, "rb", buffering=0) as f:
        return hash_stream(f, size, tick)


def _run_text(args: list[str]) -> str:
    proc = subprocess.run(args, capture_output=True, env=_ENV, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{Path(args[0]).name} exited {proc.returncode}: {' | '.join(tail)}")
    return proc.stdout.decode("utf-8", "replace")


def _xorriso_unquote(text: str) -> str:
    return text.replace("'\"'\"'", "'")


def parse_report_lba(text: str) -> dict[str, tuple[int, int]]:
    """xorriso's ``-exec report_lba`` lines -> {path: (file size, number of extents)}.

    A file over 4 GiB has one line per extent, each carrying the *whole* file's size."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        m = _LBA.match(line)
        if m:
            path = _xorriso_unquote(m.group(5)).lstrip("/")
            out[path] = (int(m.group(4)), out.get(path, (0, 0))[1] + 1)
    return out


def _compare_stream(
    result: ReaderResult,
    order: list[tuple[str, int]],
    expected: dict[str, Expected],
    stream: IO[bytes],
    tick: Tick | None,
) -> None:
    for path, size in order:
        digest, got = hash_stream(stream, size, tick)
        result.bytes_read += got
        result.files_checked += 1
        want = expected[path]
        if got != size or size != want.size or digest != want.sha256:
            result.mismatched.append(path)


def _compare_sizes(
    result: ReaderResult, listed: Iterable[tuple[str, int]], expected: dict[str, Expected]
) -> None:
    """A tree-only check: every listed file the manifest names has the manifest's size."""
    result.contents = False
    for path, size in listed:
        if path in expected:
            result.files_checked += 1
            if size != expected[path].size:
                result.mismatched.append(path)


def _finish(proc: subprocess.Popen[bytes], result: ReaderResult) -> None:
    assert proc.stdout is not None and proc.stderr is not None
    leftover = proc.stdout.read(1)
    err = proc.stderr.read().decode("utf-8", "replace")
    code = proc.wait()
    if code != 0:
        result.error = f"exit {code}: {' | '.join(err.strip().splitlines()[-3:])}"
    elif leftover:
        result.error = "reader returned more data than the files' sizes"


def _stream(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_ENV, bufsize=CHUNK
    )


def read_xorriso(
    image: Path, files: list[Expected], tick: Tick | None = None, *, contents: bool = True
) -> ReaderResult:
    exe = tool("xorriso")
    result = ReaderResult("xorriso")
    expected = {f.path: f for f in files}
    try:
        listing = _run_text(
            [exe, "-indev", str(image), "-find", "/", "-type", "f", "-exec", "report_lba"]
        )
        sizes = {path: size for path, (size, _) in parse_report_lba(listing).items()}
        result.missing = sorted(set(expected) - set(sizes))
        result.extra = sorted(set(sizes) - set(expected))
        joliet = _run_text(
            [exe, "-read_fs", "norock", "-indev", str(image), "-find", "/", "-type", "f"]
        )
        jnames = {_xorriso_unquote(x.strip()[1:-1]).lstrip("/") for x in joliet.splitlines()}
        jnames.discard("")
        result.missing += [f"joliet:{f.joliet_path}" for f in files if f.joliet_path not in jnames]
        order = [(p, sizes[p]) for p in expected if p in sizes]
        if not contents:
            _compare_sizes(result, order, expected)
            return result
        for i in range(0, len(order), 200):
            batch = order[i : i + 200]
            args = [
                exe,
                "-osirrox",
                "on",
                "-iso_rr_pattern",
                "off",
                "-indev",
                str(image),
                "-concat",
                "append",
                "-",
                *["/" + p for p, _ in batch],
                "--",
            ]
            proc = _stream(args)
            assert proc.stdout is not None
            _compare_stream(result, batch, expected, proc.stdout, tick)
            _finish(proc, result)
            if result.error:
                break
    except (RuntimeError, OSError) as exc:
        result.error = str(exc)
    return result


def _parse_7z_listing(text: str) -> list[tuple[str, int]]:
    items: list[tuple[str, int]] = []
    body = text.split("\n----------\n", 1)[-1]
    for block in body.split("\n\n"):
        props: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(" = ")
            if sep:
                props[key.strip()] = value
        if "Path" not in props or props.get("Folder") == "+" or not props.get("Size"):
            continue
        items.append((props["Path"], int(props["Size"])))
    return items


def sha256_sum_7zip(digests: Iterable[str]) -> str:
    """The "SHA256 for data" line of ``7zz t -scrcSHA256``: the files' SHA-256 digests added
    as little-endian numbers, the low 32 bytes in hex, then ``-`` and the carry (``%08X``)."""
    total = sum(int.from_bytes(bytes.fromhex(d), "little") for d in digests)
    return (total % (1 << 256)).to_bytes(32, "little").hex() + "-%08X" % (total >> 256)


_7Z_SUM = re.compile(r"^SHA256 for data:\s*([0-9A-Fa-f]{64}-[0-9A-Fa-f]+)\s*$", re.M)


def read_7zip(
    image: Path,
    files: list[Expected],
    tick: Tick | None = None,
    *,
    contents: bool = True,
    summed: bool = False,
    fs: str = "udf",
) -> ReaderResult:
    """7-Zip's own reader of the UDF tree (``fs="udf"``) or of the ISO 9660 / Joliet tree
    (``fs="iso"``, Joliet names). ``summed``: 7-Zip hashes every file itself (``t
    -scrcSHA256``, nothing streamed through this process) and the sum of the digests is compared
    with the manifest's; only if it differs are the files streamed one by one, to name the ones
    that differ."""
    exe = tool("7zz")
    result = ReaderResult(f"7zip-{fs}")
    expected = {(f.path if fs == "udf" else f.joliet_path): f for f in files}
    kind = f"-t{fs}"
    try:
        listing = _parse_7z_listing(_run_text([exe, "l", "-slt", kind, "-sccUTF-8", str(image)]))
        paths = [p for p, _ in listing]
        result.missing = sorted(set(expected) - set(paths))
        result.extra = sorted(set(paths) - set(expected))
        if not contents:
            _compare_sizes(result, listing, expected)
            return result
        if summed and not (result.missing or result.extra):
            _compare_sizes(result, listing, expected)
            tested = _run_text([exe, "t", kind, "-scrcSHA256", "-sccUTF-8", str(image)])
            found = _7Z_SUM.search(tested)
            want = sha256_sum_7zip(expected[p].sha256 for p, _ in listing)
            if not result.mismatched and found and found.group(1).lower() == want.lower():
                result.contents = True
                result.bytes_read = sum(size for _, size in listing)
                if tick:
                    tick(result.bytes_read)
                return result
            # stream them to name the culprits
            result.files_checked, result.mismatched, result.contents = 0, [], True
        proc = _stream([exe, "x", "-so", kind, "-sccUTF-8", str(image)])
        assert proc.stdout is not None
        for path, size in listing:
            if path in expected:
                _compare_stream(result, [(path, size)], expected, proc.stdout, tick)
            else:
                hash_stream(proc.stdout, size)
        _finish(proc, result)
    except (RuntimeError, OSError) as exc:
        result.error = str(exc)
    if fs == "iso":  # named by their manifest paths, as the other readers name them
        result.mismatched = [expected[p].path for p in result.mismatched]
        result.missing = [expected[p].path for p in result.missing]
        result.extra = [f"joliet:{p}" for p in result.extra]
    return result


def read_back(
    image: Path,
    files: Iterable[Expected],
    expected_sha256: str | None,
    tick: Callable[[str, int], None] | None = None,
    *,
    content_by: str | None = None,
) -> ReadbackResult:
    """Run the three checks side by side; ``tick(phase, nbytes)`` reports progress.

    ``content_by`` ("7zip-iso" or "7zip-udf"): the check right after writing. The image hash
    is ``expected_sha256``, taken while writing, not re-read; that 7-Zip reader hashes every
    file's content itself (through the Joliet tree or the UDF tree) and compares the sum; the
    other trees are checked by name and size (xorriso: Rock Ridge and Joliet; 7-Zip: UDF)."""
    tool("xorriso")
    tool("7zz")
    wanted = list(files)
    lock = threading.Lock()

    def ticker(phase: str) -> Tick | None:
        if tick is None:
            return None

        def t(n: int) -> None:
            with lock:
                tick(phase, n)

        return t

    if content_by is not None:
        assert expected_sha256 is not None and content_by in ("7zip-iso", "7zip-udf")
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = [
                pool.submit(read_xorriso, image, wanted, contents=False),
                pool.submit(
                    read_7zip, image, wanted, ticker("verify-7zip"),
                    contents=content_by == "7zip-udf", summed=True,
                ),
            ]  # fmt: skip
            if content_by == "7zip-iso":
                jobs.append(
                    pool.submit(read_7zip, image, wanted, ticker("verify-7zip"), summed=True,
                                fs="iso")
                )  # fmt: skip
            readers = [j.result() for j in jobs]
        return ReadbackResult(
            expected_sha256, image.stat().st_size, expected_sha256, readers, image_reread=False
        )
    with ThreadPoolExecutor(max_workers=3) as pool:
        image_hash = pool.submit(hash_file, image, ticker("hash"))
        xorriso = pool.submit(read_xorriso, image, wanted, ticker("verify-xorriso"))
        sevenzip = pool.submit(read_7zip, image, wanted, ticker("verify-7zip"))
        digest, size = image_hash.result()
        readers = [xorriso.result(), sevenzip.result()]
    return ReadbackResult(digest, size, expected_sha256, readers)
