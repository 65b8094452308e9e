"""The vault on disk: the station's home folder and where everything in it lives.

$STATION_HOME/
  station.toml                      settings
  catalog.sqlite                    catalog + audit log (WAL)
  originals/ab/<sha256>.<ext>       bit-exact originals, content-addressed, mode 0444 (R7)
  archival/ab/<sha256>.<profile>.<ext>      derivatives, named by the original's hash
  staging/                          partial copies; reaped at start-up
  discs/<job>/                      ISO images copy A and B, label sheets
  keys/                             the station's signing key
  run/                              status file, mount points

One level of 256 folders (pre-created by ``init``): a second level (65,536 folders) made a young
vault pay a mkdir for nearly every small file; 256 folders hold a million recordings at about
4,000 entries each, which ext4's hashed directories serve without effort.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from station.config import Settings, load_settings
from station.errors import StationError


def default_home() -> Path:
    env = os.environ.get("STATION_HOME")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/station")
    return Path.home() / ".local/share/station"


@dataclass(frozen=True)
class Vault:
    home: Path

    @property
    def settings_path(self) -> Path:
        return self.home / "station.toml"

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.sqlite"

    @property
    def originals(self) -> Path:
        return self.home / "originals"

    @property
    def archival(self) -> Path:
        return self.home / "archival"

    @property
    def staging(self) -> Path:
        return self.home / "staging"

    @property
    def discs(self) -> Path:
        return self.home / "discs"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    def original_path(self, sha256: str, ext: str) -> Path:
        return self.originals / sha256[:2] / f"{sha256}{_dot(ext)}"

    def archival_path(self, sha256: str, profile: str, ext: str) -> Path:
        return self.archival / sha256[:2] / f"{sha256}.{profile}{_dot(ext)}"

    def settings(self) -> Settings:
        return load_settings(self.settings_path)

    def init(self) -> None:
        """Create the vault folders (idempotent)."""
        for d in (
            self.home,
            self.originals,
            self.archival,
            self.staging,
            self.discs,
            self.keys,
            self.run,
            self.exports,
            # made here, by the vault's owner, so that no other writer (the root daemon) owns them
            self.home / "checkpoints",
            self.home / "backups",
        ):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StationError(
                    f"cannot create {d}: {exc.strerror}",
                    where=str(d),
                    hint="choose another --home or fix permissions",
                ) from exc
        self.protect()
        for top in (self.originals, self.archival):
            for i in range(256):
                (top / f"{i:02x}").mkdir(exist_ok=True)

    def protect(self) -> None:
        """Who may read what (R8, R14): the home 0750 (the owner, and a group such as the
        station's operators may list it); the catalog with its WAL files (recorders' HMAC
        secrets, password hashes, the audit log) and the keys readable by the owner only.
        Repairs a home made before these modes."""
        os.chmod(self.home, 0o750)
        os.chmod(self.keys, 0o700)
        for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
            path = self.home / name
            if path.exists():
                os.chmod(path, 0o600)
        for path in self.keys.iterdir():
            if path.is_file() and path.suffix != ".vkey":
                os.chmod(path, 0o600)

    def check(self) -> None:
        if not self.catalog_path.exists():
            raise StationError(
                "采集站尚未初始化 / the station's home is not initialised",
                where=str(self.home),
                hint="run `station init` first",
            )


def hand_to_owner(path: Path) -> None:
    """A file root made inside a home another user owns (the Debian package's ``station``
    user; the daemon runs as root) is given to the owner of its folder: the station's own
    files stay owner-only (0600) and still usable by both."""
    if os.geteuid() != 0:
        return
    st = path.parent.stat()
    if st.st_uid != 0:
        os.chown(path, st.st_uid, st.st_gid)


def _dot(ext: str) -> str:
    if not ext:
        return ""
    return ext if ext.startswith(".") else "." + ext
