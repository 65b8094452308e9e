"""Helpers of the fleet tests: a station configured for the test store and database, the
command line, and direct clients of both engines for checking what they hold."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from fleet_engines import Ceph

from station.cli import main
from station.vault import Vault


def cli(vault: Vault, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, ["--home", str(vault.home), *args], catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def configure(
    vault: Vault,
    ceph: Ceph | None,
    dsn: str | None,
    *,
    bucket: str | None = None,
    station_id: str = "STATION-T1",
    secret: str | None = None,
    extra: str = "",
) -> str:
    """Write station.toml with a [fleet] table; returns the bucket name."""
    bucket = bucket or f"fleet-{uuid.uuid4().hex[:12]}"
    vault.home.mkdir(parents=True, exist_ok=True)
    lines = [f'[station]\nid = "{station_id}"\n', "[fleet]"]
    if ceph is not None:
        key_file = vault.home / "s3.secret"
        key_file.write_text((secret or ceph.secret_key) + "\n")
        os.chmod(key_file, 0o600)
        lines += [
            f's3_endpoint = "{ceph.endpoint}"',
            f'bucket = "{bucket}"',
            f'access_key = "{ceph.access_key}"',
            f'secret_key_file = "{key_file}"',
        ]
    if dsn:
        lines.append(f'postgres_dsn = "{dsn}"')
    vault.settings_path.write_text("\n".join(lines) + "\n" + extra)
    return bucket


def s3(ceph: Ceph) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=ceph.endpoint,
        aws_access_key_id=ceph.access_key,
        aws_secret_access_key=ceph.secret_key,
        region_name="us-east-1",
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
        ),
    )


def sync(vault: Vault) -> tuple[int, dict[str, Any]]:
    code, out, _err = cli(vault, "fleet", "sync", "--json")
    return code, json.loads(out)


def ingest(vault: Vault, folder: Path) -> list[str]:
    code, out, err = cli(vault, "ingest", str(folder), "--json")
    assert code == 0, err
    return sorted(f["sha256"] for f in json.loads(out)["files_detail"])


def pg_rows(dsn: str, sql: str, args: list[Any] | None = None) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return list(conn.execute(sql, args or []).fetchall())


def random_clip(folder: Path, name: str, size: int, seed: int) -> Path:
    """A file named like a recorder's clip, with ``size`` bytes of seeded random content."""
    import random

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    rnd = random.Random(seed)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rnd.randbytes(n))
            left -= n
    return path
