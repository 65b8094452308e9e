"""Optical media and how much of each a disc plan may fill (R11, R12).

Capacities are exact sector counts of recordable media (2048-byte sectors), the smaller of the
"-R" and "+R" variants where they differ, so an image that fits here burns on either. The
planner keeps headroom for the file systems' own structures (ISO 9660 + Joliet + Rock Ridge +
UDF: descriptors, path tables, directory records, UDF file entries) and the metadata files every
disc carries; the image builder then checks the exact image size against the exact capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

SECTOR = 2048


@dataclass(frozen=True)
class Media:
    key: str
    label: str  # for people, Chinese / English
    sectors: int

    @property
    def capacity(self) -> int:
        """Exact bytes a blank disc takes."""
        return self.sectors * SECTOR


MEDIA: dict[str, Media] = {
    # DVD+R single layer: 2,295,104 sectors (DVD-R: 2,298,496); the smaller is used.
    "dvd": Media("dvd", "DVD±R 4.7 GB", 2_295_104),
    # BD-R single layer 25 GB: 12,219,392 sectors.
    "bd25": Media("bd25", "BD-R 25 GB", 12_219_392),
    # BD-R dual layer 50 GB: 24,438,784 sectors.
    "bd50": Media("bd50", "BD-R DL 50 GB", 24_438_784),
    # BD-R XL triple layer 100 GB: 48,878,592 sectors.
    "bd100": Media("bd100", "BD-R XL 100 GB", 48_878_592),
}

# Headroom, generous on purpose: the exact check happens when the image is laid out.
DISC_OVERHEAD = 16 * 1024 * 1024  # system area, volume descriptors, UDF anchors, README, verify.py
CASE_OVERHEAD = 64 * 1024  # a case's folders and its part of MANIFEST.json
FILE_OVERHEAD = 8 * 1024  # directory records in three trees, UDF file entry, manifest and audit


def get_media(key: str) -> Media:
    from station.errors import StationError

    try:
        return MEDIA[key]
    except KeyError:
        raise StationError(
            f"未知的光盘类型 / unknown media {key!r}",
            hint="use one of: " + ", ".join(MEDIA),
        ) from None


def file_cost(size: int) -> int:
    """Bytes a file of ``size`` bytes takes on a disc, with its share of the overhead."""
    return -(-size // SECTOR) * SECTOR + FILE_OVERHEAD


def usable(media: Media) -> int:
    """Bytes of files-with-overhead one disc of ``media`` may hold."""
    return media.capacity - DISC_OVERHEAD


def smallest_fitting(cost: int) -> Media | None:
    """The smallest media on which a single item of ``cost`` (with case overhead) fits."""
    for m in sorted(MEDIA.values(), key=lambda m: m.sectors):
        if cost + CASE_OVERHEAD <= usable(m):
            return m
    return None
