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

Right after a build (``content_by``) each copy's files are read once from the disk, by one
7-Zip run: its image hash is the one taken while writing (no re-read); ``7zz t -scrcSHA256``
hashes every file (copy A through its Joliet tree, copy B through its UDF tree) and prints the
sum of the digests and the sum of the digests bound to their paths — both must equal the
manifest's (if not, the files are streamed to name the ones that differ). One xorriso run lists
the Rock Ridge and the Joliet tree with every file's extents: names and sizes, and the same
extents in both trees; the UDF tree's extents, read from its file entries (``udf.py``, a few
descriptor sectors, no file data), must be the same again. So on either copy every tree's
name points at the bytes 7-Zip hashed under that name (copy A: Joliet → Rock Ridge and UDF;
copy B: UDF → Rock Ridge and Joliet); 7-Zip also lists copy A's UDF tree by names and sizes
(``contents: false``). ``station disc verify`` keeps all three full checks.
"""

from __future__ import annotations

import contextlib
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
    by_path: bool = False  # each file's content checked under its own path in this tree
    udf_bound: bool = False  # xorriso: the UDF tree's extents compared with the ISO trees'

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


class ReadBehind(threading.Thread):
    """Drops from the page cache what a reader process has already read of an image.

    The reader's place in the image is its file offset (``/proc/PID/fdinfo``); every
    ``INTERVAL`` seconds the span it has read since (one sequential run, less the last MiB) is
    evicted (``POSIX_FADV_DONTNEED``), and the whole image when it is done. The read-back still
    reads every byte from the disk; the station just does not keep gigabytes of image pages in
    the page cache, so the reader keeps reusing the same few pages — taking fresh pages for a
    whole image cost this machine about 1–2 s of system time per GiB. Where ``/proc`` does not
    tell (another system, the reader gone), it does nothing."""

    INTERVAL = 0.05

    def __init__(self, proc: subprocess.Popen[bytes], image: Path) -> None:
        super().__init__(name="disc-read-behind", daemon=True)
        self.proc, self.image = proc, str(image.resolve())
        self.stopped = threading.Event()
        self.start()

    def _reader_fd(self) -> str | None:
        """``PID/fd/N`` of the process (or of a child of it: a wrapper) reading the image."""
        pids = [str(self.proc.pid)]
        with contextlib.suppress(OSError), open(f"/proc/{pids[0]}/task/{pids[0]}/children") as f:
            pids += f.read().split()
        for p in pids:
            with contextlib.suppress(OSError):
                for name in os.listdir(f"/proc/{p}/fd"):
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{p}/fd/{name}") == self.image:
                            return f"{p}/fdinfo/{name}"
        return None

    def run(self) -> None:
        try:
            fd = os.open(self.image, os.O_RDONLY)
        except OSError:
            return
        try:
            target: str | None = None
            last: int | None = None
            while not self.stopped.wait(self.INTERVAL):
                try:
                    target = target or self._reader_fd()
                    if target is None:
                        continue
                    with open(f"/proc/{target}") as info:
                        pos = int(info.readline().split()[1])
                except (OSError, ValueError, IndexError):
                    break
                if last is None or pos < last:  # a seek back: a new run starts here
                    last = pos
                elif pos - CHUNK > last:
                    os.posix_fadvise(fd, last, pos - CHUNK - last, os.POSIX_FADV_DONTNEED)
                    last = pos - CHUNK
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def _run_text(args: list[str], *, evict: Path | None = None) -> str:
    """Run a reader, return its output; ``evict``: the image it reads (``ReadBehind``)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_ENV)
    behind = ReadBehind(proc, evict) if evict is not None else None
    try:
        out, err = proc.communicate()
    finally:
        if behind is not None:
            behind.stop()
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{Path(args[0]).name} exited {proc.returncode}: {' | '.join(tail)}")
    return out.decode("utf-8", "replace")


def _xorriso_unquote(text: str) -> str:
    return text.replace("'\"'\"'", "'")


def parse_report_extents(text: str) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """xorriso's ``-exec report_lba`` lines -> {path: (file size, [(start lba, blocks), ...])}.

    A file over 4 GiB has one line per extent, each carrying the *whole* file's size."""
    out: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    for line in text.splitlines():
        m = _LBA.match(line)
        if m:
            path = _xorriso_unquote(m.group(5)).lstrip("/")
            _, extents = out.setdefault(path, (int(m.group(4)), []))
            extents.append((int(m.group(2)), int(m.group(3))))
    return out


def parse_report_lba(text: str) -> dict[str, tuple[int, int]]:
    """xorriso's ``-exec report_lba`` lines -> {path: (file size, number of extents)}."""
    return {p: (size, len(ext)) for p, (size, ext) in parse_report_extents(text).items()}


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


_JOLIET_MARK = "--station-joliet-tree--"


def list_xorriso(image: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both ISO 9660 trees in one xorriso run: {path: (size, extents)} of the Rock Ridge tree,
    then of the Joliet tree (``-read_fs norock`` and the image loaded again)."""
    exe = tool("xorriso")
    find = ["-find", "/", "-type", "f", "-exec", "report_lba", "--"]
    text = _run_text(
        [exe, "-indev", str(image), *find, "-print", _JOLIET_MARK,
         "-read_fs", "norock", "-indev", str(image), *find]
    )  # fmt: skip
    lines = text.splitlines()
    if _JOLIET_MARK not in lines:
        raise RuntimeError("xorriso did not list the Joliet tree")
    at = lines.index(_JOLIET_MARK)
    return (
        parse_report_extents("\n".join(lines[:at])),
        parse_report_extents("\n".join(lines[at + 1 :])),
    )


def read_xorriso(
    image: Path,
    files: list[Expected],
    tick: Tick | None = None,
    *,
    contents: bool = True,
    udf: bool = False,
) -> ReaderResult:
    """xorriso (libisofs): the Rock Ridge tree by names and sizes, the Joliet tree by names and
    sizes, and every file's extents the same in both trees (so both name the same bytes);
    ``contents``: every file streamed through its Rock Ridge path and hashed. ``udf``: every
    file's extents in the UDF tree (``udf.udf_extents``, the descriptors only) the same as in
    the ISO trees too — so each tree's name points at the bytes a reader hashed under that
    name in another tree (``udf_bound``)."""
    exe = tool("xorriso")
    result = ReaderResult("xorriso")
    expected = {f.path: f for f in files}
    try:
        rock, joliet = list_xorriso(image)
        if udf:
            _bind_udf(result, image, rock, files)
        sizes = {path: size for path, (size, _) in rock.items()}
        result.missing = sorted(set(expected) - set(sizes))
        result.extra = sorted(set(sizes) - set(expected))
        for f in files:
            j = joliet.get(f.joliet_path)
            if j is None:
                result.missing.append(f"joliet:{f.joliet_path}")
            elif f.path in rock and j != rock[f.path]:
                result.mismatched.append(
                    f"{f.path} (Joliet {f.joliet_path}: other size or extents than Rock Ridge)"
                )
        known = {f.joliet_path for f in files}
        result.extra += sorted(f"joliet:{p}" for p in joliet if p not in known)
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
        result.by_path = True
    except (RuntimeError, OSError) as exc:
        result.error = str(exc)
    return result


def _bind_udf(
    result: ReaderResult, image: Path, rock: dict[str, Any], files: list[Expected]
) -> None:
    """Every manifest file's place in the UDF tree equals its place in the Rock Ridge tree."""
    from station.disc_burn.udf import UdfError, runs, udf_extents

    try:
        places = udf_extents(image)
    except (UdfError, OSError) as exc:
        result.error = f"UDF tree not read: {exc}"
        return
    for f in files:
        if f.path not in rock or f.path not in places:
            continue  # missing in a tree: named by that tree's own check
        size, extents = places[f.path]
        rr_size, rr_extents = rock[f.path]
        if size != rr_size or runs(extents) != runs([(s, n) for s, n in rr_extents]):
            result.mismatched.append(f"{f.path} (UDF: other size or extents than Rock Ridge)")
    result.missing += sorted(f"udf:{f.path}" for f in files if f.path not in places)
    result.udf_bound = True


def _parse_7z_listing(text: str, *, folders: bool = False) -> list[tuple[str, int]]:
    """``7zz l -slt`` -> [(path, size)] of the files (``folders``: of the folders, size 0)."""
    items: list[tuple[str, int]] = []
    body = text.split("\n----------\n", 1)[-1]
    for block in body.split("\n\n"):
        props: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(" = ")
            if sep:
                props[key.strip()] = value
        if "Path" not in props:
            continue
        if folders:
            if props.get("Folder") == "+":
                items.append((props["Path"], 0))
        elif props.get("Folder") != "+" and props.get("Size"):
            items.append((props["Path"], int(props["Size"])))
    return items


def sha256_sum_7zip(digests: Iterable[str]) -> str:
    """The "SHA256 for data" line of ``7zz t -scrcSHA256``: the files' SHA-256 digests added
    as little-endian numbers, the low 32 bytes in hex, then ``-`` and the carry (``%08X``)."""
    return _sum_7zip(bytes.fromhex(d) for d in digests)


def _sum_7zip(values: Iterable[bytes]) -> str:
    total = sum(int.from_bytes(v, "little") for v in values)
    return (total % (1 << 256)).to_bytes(32, "little").hex() + "-%08X" % (total >> 256)


def sha256_names_sum_7zip(files: Iterable[tuple[str, str]], folders: Iterable[str]) -> str:
    """The "SHA256 for data and names" line of ``7zz t -scrcSHA256``: for every item, the
    SHA-256 of 16 bytes (the first 1 for a folder, else 0), the file's SHA-256 digest (32 zero
    bytes for a folder) and its path as UTF-16LE ("/"-separated, as 7-Zip lists it), summed as
    the data line is. It binds each file's digest to its path: two files whose contents were
    swapped give the same data sum but not this one."""

    def item(path: str, digest: bytes, folder: bool) -> bytes:
        head = bytes([1 if folder else 0]) + bytes(15)
        return hashlib.sha256(head + digest + path.encode("utf-16-le")).digest()

    return _sum_7zip(
        [item(p, bytes.fromhex(d), False) for p, d in files]
        + [item(p, bytes(32), True) for p in folders]
    )


def folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder above the given files ("/"-separated paths)."""
    out: set[str] = set()
    for path in paths:
        parts = path.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


_7Z_SUM = re.compile(r"^SHA256 for data:\s*([0-9A-Fa-f]{64}-[0-9A-Fa-f]+)\s*$", re.M)
_7Z_NAMES_SUM = re.compile(
    r"^SHA256 for data and names:\s*([0-9A-Fa-f]{64}-[0-9A-Fa-f]+)\s*$", re.M
)


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
    (``fs="iso"``, Joliet names).

    ``summed``: one ``7zz t -scrcSHA256`` run reads and hashes every file itself (nothing is
    streamed through this process) and prints two sums, compared with the manifest's: the
    files' digests ("data"), and the digests bound to their paths ("data and names",
    ``sha256_names_sum_7zip``) — so a file whose content sits under another file's name fails,
    not only a changed byte. The names sum covers every path and folder of the tree, so a
    missing, extra or renamed file fails it as well. Only when a sum differs is the tree listed
    and every file streamed, to name the ones that differ. ``contents=False``: the tree is
    listed and checked by names and sizes only."""
    exe = tool("7zz")
    result = ReaderResult(f"7zip-{fs}")
    expected = {(f.path if fs == "udf" else f.joliet_path): f for f in files}
    kind = f"-t{fs}"
    try:
        if summed and contents:
            tested = _run_text(
                [exe, "t", kind, "-scrcSHA256", "-sccUTF-8", str(image)], evict=image
            )
            data, named = _7Z_SUM.search(tested), _7Z_NAMES_SUM.search(tested)
            want_data = sha256_sum_7zip(f.sha256 for f in expected.values())
            want_named = sha256_names_sum_7zip(
                ((p, f.sha256) for p, f in expected.items()), folders_of(expected)
            )
            if (
                data is not None
                and named is not None
                and data.group(1).lower() == want_data.lower()
                and named.group(1).lower() == want_named.lower()
            ):
                result.files_checked = len(expected)
                result.bytes_read = sum(f.size for f in expected.values())
                result.by_path = True
                if tick:
                    tick(result.bytes_read)
                return result
        text = _run_text([exe, "l", "-slt", kind, "-sccUTF-8", str(image)])
        listing = _parse_7z_listing(text)
        paths = [p for p, _ in listing]
        result.missing = sorted(set(expected) - set(paths))
        result.extra = sorted(set(paths) - set(expected))
        if not contents:
            _compare_sizes(result, listing, expected)
            return result
        proc = _stream([exe, "x", "-so", kind, "-sccUTF-8", str(image)])
        assert proc.stdout is not None
        for path, size in listing:
            if path in expected:
                _compare_stream(result, [(path, size)], expected, proc.stdout, tick)
            else:
                hash_stream(proc.stdout, size)
        _finish(proc, result)
        result.by_path = True
        if summed and result.ok:  # the sums differed: then a folder does, or the image changed
            folders = set(_parse_7z_listing(text, folders=True)) - set(paths)
            result.missing += sorted(f"folder:{p}" for p in folders_of(expected) - folders)
            result.extra += sorted(f"folder:{p}" for p in folders - folders_of(expected))
            if result.ok:
                result.error = "7-Zip's sums differ from the manifest's, the files streamed do not"
    except (RuntimeError, OSError) as exc:
        result.error = str(exc)
    if fs == "iso":  # named by their manifest paths, as the other readers name them
        result.mismatched = [expected[p].path if p in expected else p for p in result.mismatched]
        result.missing = [expected[p].path if p in expected else p for p in result.missing]
        result.extra = [p if p.startswith("folder:") else f"joliet:{p}" for p in result.extra]
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
    file's content itself (through the Joliet tree or the UDF tree) and compares the sums of
    the digests and of the digests bound to their paths; the other trees are checked by names
    and sizes (xorriso: Rock Ridge and Joliet, with the same extents in both; 7-Zip: copy A's
    UDF tree)."""
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
                pool.submit(read_xorriso, image, wanted, contents=False, udf=True),
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
