"""The tree of one disc: every folder and file with its names in the three trees (pure).

/README.txt  /verify.py  /verify.ps1  /MANIFEST.json  /MANIFEST.SHA256  /AUDIT.jsonl
[/CHECKPOINT.txt  /STATION-KEY.txt  /AUDIT-PROOF.json]  (with the signed checkpoint, R7)
/<case number> <case name>/原始录像 originals/<original file name>
/<case number> <case name>/存档转码 archival/<original stem>.<profile>.<ext>

With archive records (``with_records``): /DISC.xml (the disc's metadata record),
/station-av-record-1.xsd (the schema both kinds of record validate against) and
/<case number> <case name>/档案元数据 metadata/<original stem>.xml (one per recording, DA/T 63).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from station.disc_burn import names
from station.disc_burn.plan import DiscPlan, PlanFile

ORIGINALS = "原始录像 originals"
ARCHIVAL = "存档转码 archival"
RECORDS = "档案元数据 metadata"
DISC_RECORD = "DISC.xml"
RECORD_SCHEMA = "station-av-record-1.xsd"


@dataclass(frozen=True)
class Entry:
    path: str  # full path, "/"-separated, no leading slash (Rock Ridge, UDF)
    joliet_path: str
    iso_path: str  # without ";1"
    is_dir: bool
    case: str | None = None
    file: PlanFile | None = None
    record_of: str | None = None  # the recording whose metadata record this file is


@dataclass
class Layout:
    entries: list[Entry] = field(default_factory=list)
    _folders: dict[str, names.Folder] = field(default_factory=dict)
    _dirs: dict[str, Entry] = field(default_factory=dict)

    def _folder(self, parent: str) -> names.Folder:
        return self._folders.setdefault(parent, names.Folder())

    def add_dir(self, parent: Entry | None, name: str) -> Entry:
        key = f"{parent.path if parent else ''}/{name}"
        if key in self._dirs:
            return self._dirs[key]
        full, jol, iso = self._folder(parent.path if parent else "").add(name, is_dir=True)
        entry = Entry(
            _join(parent.path if parent else "", full),
            _join(parent.joliet_path if parent else "", jol),
            _join(parent.iso_path if parent else "", iso),
            True,
        )
        self._dirs[key] = entry
        self.entries.append(entry)
        return entry

    def add_file(
        self,
        parent: Entry | None,
        name: str,
        *,
        case: str | None = None,
        f: PlanFile | None = None,
        record_of: str | None = None,
    ) -> Entry:
        full, jol, iso = self._folder(parent.path if parent else "").add(name, is_dir=False)
        entry = Entry(
            _join(parent.path if parent else "", full),
            _join(parent.joliet_path if parent else "", jol),
            _join(parent.iso_path if parent else "", iso),
            False,
            case,
            f,
            record_of,
        )
        self.entries.append(entry)
        return entry

    @property
    def payload(self) -> list[Entry]:
        return [e for e in self.entries if e.file is not None]

    @property
    def records(self) -> list[Entry]:
        return [e for e in self.entries if e.record_of is not None]


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


SUPPORT_FILES = (
    "README.txt",
    "verify.py",
    "verify.ps1",
    "MANIFEST.json",
    "AUDIT.jsonl",
    "MANIFEST.SHA256",
)

SIGNED_FILES = ("CHECKPOINT.txt", "STATION-KEY.txt", "AUDIT-PROOF.json")


def lay_out(
    disc: DiscPlan, case_names: dict[str, str], with_checkpoint: bool, with_records: bool = False
) -> Layout:
    layout = Layout()
    for name in SUPPORT_FILES:
        layout.add_file(None, name)
    if with_checkpoint:
        for name in SIGNED_FILES:
            layout.add_file(None, name)
    if with_records:
        layout.add_file(None, DISC_RECORD)
        layout.add_file(None, RECORD_SCHEMA)
    for number in disc.cases:
        case_dir = layout.add_dir(None, f"{number} {case_names[number]}")
        for case, f in disc.files:
            if case != number:
                continue
            sub = layout.add_dir(case_dir, ORIGINALS if f.role == "original" else ARCHIVAL)
            layout.add_file(sub, f.name, case=case, f=f)
            if with_records and f.role == "original":
                rec_dir = layout.add_dir(case_dir, RECORDS)
                stem = f.name.rsplit(".", 1)[0] if "." in f.name else f.name
                layout.add_file(rec_dir, f"{stem}.xml", case=case, record_of=f.recording_sha256)
    return layout
