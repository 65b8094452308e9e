"""One-pass copy+hash, verify-after-write from disk, durable renames."""

from station.hashing.copy import (
    copy_and_hash,
    evict,
    fsync_dir,
    hash_file,
    link_no_replace,
    syncfs,
)

__all__ = ["copy_and_hash", "evict", "fsync_dir", "hash_file", "link_no_replace", "syncfs"]
