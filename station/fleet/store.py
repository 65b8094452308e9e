"""The central object store: any S3 store with Object Lock (Ceph RGW in the tests), via boto3.

Uploads are content-addressed and confirmed by reading back: an object counts only after the
store reports the size sent, the ETag computed here from the bytes sent (MD5, or for multipart
the MD5 of the part MD5s and the part count — the store's CompleteMultipartUpload answer may
carry no ETag, so it is read with HEAD), the SHA-256 in its metadata, and the COMPLIANCE
retention and legal hold read back (HEAD's lock headers, else the lock calls themselves).
Ceph RGW 16 ignores the lock given to CreateMultipartUpload: a multipart object gets its
retention and hold right after completion, and is counted only once they read back.

Objects up to ``PART_SIZE`` go in one PUT, larger ones in parts of ``PART_SIZE`` (fixed, so
every station computes the same ETag for the same bytes). Each part is sent with its MD5
(``Content-MD5``: the store refuses a part damaged in transit) and a multipart upload that
broke off is resumed: the parts the store already holds are kept when their MD5 matches.
The file's SHA-256 is computed in the same read as the upload; a mismatch with the catalog
aborts before the object is completed.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import hashlib
import os
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from station.config import FleetSection
from station.errors import ConfigError, FleetError, IntegrityError
from station.log import get

log = get()

PART_SIZE = 16 * 1024 * 1024
MAX_CLOCK_SKEW_S = 300.0
UPLOAD_THREADS = 4  # parts of one object in flight at once
PARTS_IN_MEMORY = 8  # part buffers held at once by all uploads of one Store (8 x 16 MiB)


class StoreUnreachable(FleetError):
    """无法连接中心对象存储 / The central object store cannot be reached."""


class StoreCredentialsError(FleetError):
    """中心存储拒绝了采集站的密钥 / The central store refused the station's key."""


class BucketWithoutLock(FleetError):
    """存储桶未启用对象锁定，拒绝使用 / The bucket has no Object Lock; the station refuses it."""


class ClockSkewError(FleetError):
    """采集站与中心存储时钟不一致 / The station's clock and the store's clock disagree."""


@dataclass(frozen=True)
class Confirmed:
    """What the store said about an object, read back after writing it."""

    version_id: str | None
    size: int
    etag: str
    sha256: str | None
    retain_until: dt.datetime | None
    mode: str | None
    legal_hold: bool


def read_secret(path_text: str) -> str:
    """The secret key, from a file only the station can read (mode 0600 or stricter)."""
    path = Path(path_text)
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"密钥文件无法读取 / cannot read the secret key file: {exc.strerror}",
            where=f"fleet.secret_key_file {path}",
        ) from exc
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(
            f"密钥文件权限过宽 / the secret key file is mode {stat.S_IMODE(st.st_mode):04o}",
            where=f"fleet.secret_key_file {path}",
            hint=f"chmod 600 {path}",
        )
    if not text:
        raise ConfigError("密钥文件为空 / the secret key file is empty", where=str(path))
    return text


class Throttle:
    """A token bucket shared by the upload threads: ``take(n)`` waits until n bytes may go."""

    def __init__(self, bytes_per_s: float | None, stop: threading.Event | None = None) -> None:
        self.rate = bytes_per_s
        self.stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, n: int) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + n / self.rate
            wait = start - now
        if wait > 0:
            self.stop.wait(wait)


def _meta_value(value: Any) -> str:
    return quote(str(value), safe=" -_.:/+=@,")


def classify(exc: BaseException, where: str) -> FleetError:
    """A boto3/botocore failure as the station's error, with a clear message."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, FleetError):
        return exc
    unreachable = (
        EndpointConnectionError,
        ConnectionClosedError,
        ConnectTimeoutError,
        ReadTimeoutError,
        ConnectionError,
    )
    if isinstance(exc, unreachable):
        return StoreUnreachable(
            f"无法连接中心对象存储 / the central store is unreachable: {exc}", where=where
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return StoreCredentialsError(
                f"中心存储拒绝访问 / the central store refused the station's key ({code})",
                where=where,
                hint="check fleet.access_key and fleet.secret_key_file",
            )
        if code == "RequestTimeTooSkewed":
            return ClockSkewError(
                "中心存储认为采集站时钟偏差过大 / the store says the station's clock is off",
                where=where,
                hint="set the station's clock (NTP)",
            )
        return FleetError(f"中心存储出错 / the central store answered {code}: {exc}", where=where)
    if exc.__class__.__module__.startswith(("botocore", "urllib3")):
        return StoreUnreachable(
            f"中心存储连接出错 / the central store connection failed: {exc}", where=where
        )
    return FleetError(f"中心存储出错 / the central store failed: {exc}", where=where)


@contextlib.contextmanager
def boundary(where: str) -> Iterator[None]:
    """Turn any failure of the store inside into a ``FleetError`` naming ``where``."""
    try:
        yield
    except (FleetError, IntegrityError):
        raise
    except Exception as exc:
        raise classify(exc, where) from exc


class Store:
    """One bucket of one S3 endpoint, as configured in ``[fleet]``."""

    def __init__(self, cfg: FleetSection, *, stop: threading.Event | None = None) -> None:
        import boto3
        from botocore.config import Config

        if not cfg.s3_endpoint:
            raise ConfigError("没有配置中心存储 / no central store configured", where="fleet")
        self.cfg = cfg
        self.bucket = cfg.bucket
        self.endpoint = cfg.s3_endpoint
        self.stop = stop or threading.Event()
        self.buffers = threading.BoundedSemaphore(PARTS_IN_MEMORY)
        rate = cfg.bandwidth_mbps * 1_000_000 / 8 if cfg.bandwidth_mbps else None
        self.throttle = Throttle(rate, self.stop)
        self.s3 = boto3.client(
            "s3",
            endpoint_url=cfg.s3_endpoint,
            aws_access_key_id=cfg.access_key,
            aws_secret_access_key=read_secret(cfg.secret_key_file),
            region_name=cfg.region or "us-east-1",
            config=Config(
                connect_timeout=5,
                read_timeout=120,
                retries={"max_attempts": 2, "mode": "standard"},
                # S3 stores other than AWS (Ceph RGW among them) do not all take the newer
                # default checksums; each part carries its Content-MD5 instead.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
                max_pool_connections=PARTS_IN_MEMORY + 4,
            ),
        )

    # --- the bucket and the clocks ------------------------------------------------------------

    def clock_skew(self, now: Callable[[], dt.datetime]) -> float:
        """Seconds the station's clock is ahead of the store's (from the HTTP Date header)."""
        req = urllib.request.Request(self.endpoint, method="HEAD")
        t0 = now()
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                date = resp.headers.get("Date")
        except urllib.error.HTTPError as exc:
            date = exc.headers.get("Date")
        except (OSError, ValueError) as exc:
            raise StoreUnreachable(
                f"无法连接中心对象存储 / the central store is unreachable: {exc}",
                where=self.endpoint,
            ) from exc
        t1 = now()
        if not date:
            return 0.0
        store = email.utils.parsedate_to_datetime(date)
        mid = t0 + (t1 - t0) / 2
        return (mid - store).total_seconds()

    def check_clock(self, now: Callable[[], dt.datetime]) -> float:
        skew = self.clock_skew(now)
        # The Date header has whole seconds; allow for that beside the limit.
        if abs(skew) > MAX_CLOCK_SKEW_S:
            raise ClockSkewError(
                f"采集站时钟与中心存储相差 {skew:+.0f} 秒 / the station's clock is {skew:+.0f} s "
                f"off the store's (limit {MAX_CLOCK_SKEW_S:.0f} s): retention dates would be wrong",
                where=self.endpoint,
                hint="set the station's clock (NTP), then sync again",
            )
        return skew

    def ensure_bucket(self) -> bool:
        """Create the bucket with Object Lock if it does not exist; refuse one without.
        Returns True when the bucket was created now."""
        from botocore.exceptions import ClientError

        where = f"{self.endpoint}/{self.bucket}"
        created = False
        with boundary(where):
            try:
                self.s3.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                kwargs: dict[str, Any] = {"Bucket": self.bucket, "ObjectLockEnabledForBucket": True}
                if self.cfg.region and self.cfg.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.cfg.region}
                self.s3.create_bucket(**kwargs)
                created = True
                log.info("fleet.bucket_created", bucket=self.bucket, endpoint=self.endpoint)
            try:
                conf = self.s3.get_object_lock_configuration(Bucket=self.bucket)
                enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in ("ObjectLockConfigurationNotFoundError", "404", "InvalidRequest"):
                    raise
                enabled = None
        if enabled != "Enabled":
            raise BucketWithoutLock(
                f"存储桶 {self.bucket} 未启用对象锁定 / bucket {self.bucket} has no Object Lock: "
                "footage there could be deleted or overwritten, so the station does not use it",
                where=where,
                hint="use a bucket created with Object Lock, or a new name (the station creates "
                "it with Object Lock)",
            )
        return created

    # --- reading back ---------------------------------------------------------------------------

    def head(self, key: str, version_id: str | None = None) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        with boundary(f"{self.bucket}/{key}"):
            try:
                return dict(self.s3.head_object(**kwargs))
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("404", "NoSuchKey", "NoSuchVersion", "NotFound"):
                    return None
                raise

    def confirm(self, key: str, version_id: str | None = None) -> Confirmed | None:
        """The object as the store has it: size, ETag, SHA-256 metadata, lock and hold."""
        head = self.head(key, version_id)
        if head is None:
            return None
        version = head.get("VersionId") or version_id
        vargs = {"VersionId": version} if version else {}
        if head.get("ObjectLockMode"):
            # The store answers HEAD with the object's lock (x-amz-object-lock-* headers).
            ret = {
                "Mode": head["ObjectLockMode"],
                "RetainUntilDate": head.get("ObjectLockRetainUntilDate"),
            }
            hold = {"Status": head.get("ObjectLockLegalHoldStatus", "OFF")}
        else:
            # No lock headers: ask with the lock calls themselves (an object without a lock
            # yet, or a store that does not send them on HEAD).
            with boundary(f"{self.bucket}/{key}"):
                ret = self._lock_part(
                    lambda: self.s3.get_object_retention(Bucket=self.bucket, Key=key, **vargs),
                    "Retention",
                )
                hold = self._lock_part(
                    lambda: self.s3.get_object_legal_hold(Bucket=self.bucket, Key=key, **vargs),
                    "LegalHold",
                )
        return Confirmed(
            version_id=version,
            size=int(head["ContentLength"]),
            etag=str(head.get("ETag", "")).strip('"'),
            sha256=(head.get("Metadata") or {}).get("sha256"),
            retain_until=ret.get("RetainUntilDate"),
            mode=ret.get("Mode"),
            legal_hold=hold.get("Status") == "ON",
        )

    @staticmethod
    def _lock_part(call: Callable[[], Any], name: str) -> dict[str, Any]:
        """A retention or legal hold as read back; an object without one gives {} (RGW
        answers ObjectLockConfigurationNotFoundError, others NoSuchObjectLockConfiguration)."""
        from botocore.exceptions import ClientError

        try:
            return dict(call().get(name, {}))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"):
                return {}
            raise

    def versions(self, key: str) -> list[dict[str, Any]]:
        """Every version (and delete marker) of ``key``: a duplicate upload would show here."""
        out: list[dict[str, Any]] = []
        with boundary(f"{self.bucket}/{key}"):
            pages = self.s3.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=key
            )
            for page in pages:
                out += [v for v in page.get("Versions", []) if v["Key"] == key]
                out += [
                    dict(v, DeleteMarker=True)
                    for v in page.get("DeleteMarkers", [])
                    if v["Key"] == key
                ]
        return out

    # --- locks ------------------------------------------------------------------------------------

    def extend_retention(self, key: str, version_id: str | None, until: dt.datetime) -> None:
        with boundary(f"{self.bucket}/{key}"):
            self.s3.put_object_retention(
                Bucket=self.bucket,
                Key=key,
                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
                **({"VersionId": version_id} if version_id else {}),
            )

    def set_legal_hold(self, key: str, version_id: str | None, on: bool) -> None:
        with boundary(f"{self.bucket}/{key}"):
            self.s3.put_object_legal_hold(
                Bucket=self.bucket,
                Key=key,
                LegalHold={"Status": "ON" if on else "OFF"},
                **({"VersionId": version_id} if version_id else {}),
            )

    def delete_version(self, key: str, version_id: str | None) -> None:
        with boundary(f"{self.bucket}/{key}"):
            self.s3.delete_object(
                Bucket=self.bucket, Key=key, **({"VersionId": version_id} if version_id else {})
            )

    # --- writing ----------------------------------------------------------------------------------

    def _lock_args(self, retain_until: dt.datetime, hold: bool) -> dict[str, Any]:
        return {
            "ObjectLockMode": "COMPLIANCE",
            "ObjectLockRetainUntilDate": retain_until,
            "ObjectLockLegalHoldStatus": "ON" if hold else "OFF",
        }

    def put_bytes(
        self,
        key: str,
        data: bytes,
        meta: dict[str, Any],
        retain_until: dt.datetime,
        hold: bool,
    ) -> str:
        """One PUT of ``data`` (small objects, checkpoints); returns the expected ETag."""
        md5 = hashlib.md5(data)
        self.throttle.take(len(data))
        with boundary(f"{self.bucket}/{key}"):
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentMD5=base64.b64encode(md5.digest()).decode(),
                Metadata={k: _meta_value(v) for k, v in meta.items() if v is not None},
                **self._lock_args(retain_until, hold),
            )
        return md5.hexdigest()

    def put_file(
        self,
        key: str,
        path: Path,
        sha256: str,
        meta: dict[str, Any],
        retain_until: dt.datetime,
        hold: bool,
        upload_id: str | None = None,
        on_upload_id: Callable[[str | None], None] | None = None,
    ) -> str:
        """Upload ``path`` (hashing it while reading) and return the ETag the store must show.

        ``upload_id`` resumes a multipart upload; ``on_upload_id`` is told a new one at once
        (the caller records it durably) and ``None`` once it is completed or aborted."""
        size = path.stat().st_size
        if size <= PART_SIZE:
            with self.buffers:  # one part's worth of memory, like a part of a big file
                data = path.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                if digest != sha256:
                    raise IntegrityError(
                        f"文件与目录记录不符 / the file hashes to {digest}, the catalog says "
                        f"{sha256}; not uploaded",
                        where=str(path),
                    )
                return self.put_bytes(key, data, dict(meta, sha256=sha256), retain_until, hold)
        return self._put_multipart(
            key, path, size, sha256, meta, retain_until, hold, upload_id, on_upload_id
        )

    def _existing_parts(self, key: str, upload_id: str) -> dict[int, tuple[str, int]] | None:
        from botocore.exceptions import ClientError

        parts: dict[int, tuple[str, int]] = {}
        with boundary(f"{self.bucket}/{key}"):
            try:
                pages = self.s3.get_paginator("list_parts").paginate(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                )
                for page in pages:
                    for p in page.get("Parts", []):
                        parts[int(p["PartNumber"])] = (str(p["ETag"]).strip('"'), int(p["Size"]))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in ("NoSuchUpload", "404"):
                    return None
                raise
        return parts

    def _put_multipart(
        self,
        key: str,
        path: Path,
        size: int,
        sha256: str,
        meta: dict[str, Any],
        retain_until: dt.datetime,
        hold: bool,
        upload_id: str | None,
        on_upload_id: Callable[[str | None], None] | None,
    ) -> str:
        where = f"{self.bucket}/{key}"
        have: dict[int, tuple[str, int]] = {}
        if upload_id:
            found = self._existing_parts(key, upload_id)
            if found is None:
                log.info("fleet.upload_gone", key=key, upload_id=upload_id)
                upload_id = None
            else:
                have = found
                log.info("fleet.upload_resumed", key=key, upload_id=upload_id, parts=len(have))
        if not upload_id:
            with boundary(where):
                upload_id = str(
                    self.s3.create_multipart_upload(
                        Bucket=self.bucket,
                        Key=key,
                        Metadata={
                            k: _meta_value(v)
                            for k, v in dict(meta, sha256=sha256).items()
                            if v is not None
                        },
                        **self._lock_args(retain_until, hold),
                    )["UploadId"]
                )
            if on_upload_id is not None:
                on_upload_id(upload_id)
        whole = hashlib.sha256()
        futures: list[Future[bytes]] = []
        md5s: dict[int, bytes | Future[bytes]] = {}
        slots = self.buffers  # parts held in memory at once, over every upload of this store

        def send(number: int, data: bytes) -> bytes:
            try:
                md5 = hashlib.md5(data).digest()
                self.throttle.take(len(data))
                if self.stop.is_set():
                    raise FleetError("已停止 / stopped", where=where)
                with boundary(where):
                    self.s3.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ContentMD5=base64.b64encode(md5).decode(),
                    )
                return md5
            finally:
                slots.release()

        with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="fleet-part") as pool:
            try:
                with path.open("rb") as f:
                    number = 0
                    while True:
                        slots.acquire()
                        data = f.read(PART_SIZE)
                        if not data:
                            slots.release()
                            break
                        number += 1
                        whole.update(data)  # the file's SHA-256, in order, in this read
                        known = have.get(number)
                        if known is not None and known[1] == len(data):
                            md5 = hashlib.md5(data).digest()
                            if known[0] == md5.hex():
                                md5s[number] = md5  # the store holds this part, bit-exact
                                slots.release()
                                continue
                        if any(fu.done() and fu.exception() for fu in futures):
                            slots.release()
                            break
                        fu = pool.submit(send, number, data)
                        futures.append(fu)
                        md5s[number] = fu
            finally:
                for fu in futures:
                    fu.exception()  # wait for every part sent
        for fu in futures:
            exc = fu.exception()
            if exc is not None:
                raise exc  # the upload stays open: the next attempt resumes it
        part_md5s = [v if isinstance(v, bytes) else v.result() for _n, v in sorted(md5s.items())]
        digest = whole.hexdigest()
        if digest != sha256:
            with boundary(where):
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            if on_upload_id is not None:
                on_upload_id(None)
            raise IntegrityError(
                f"文件与目录记录不符 / the file hashes to {digest}, the catalog says {sha256}; "
                "upload aborted",
                where=str(path),
            )
        with boundary(where):
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [
                        {"PartNumber": i + 1, "ETag": f'"{m.hex()}"'}
                        for i, m in enumerate(part_md5s)
                    ]
                },
            )
        if on_upload_id is not None:
            on_upload_id(None)
        return expected_etag_parts(part_md5s)

    def get_to(self, key: str, version_id: str | None, dest: Path) -> str:
        """Download into ``dest`` (a new file), returning the SHA-256 of the bytes written."""
        h = hashlib.sha256()
        with boundary(f"{self.bucket}/{key}"):
            resp = self.s3.get_object(
                Bucket=self.bucket, Key=key, **({"VersionId": version_id} if version_id else {})
            )
            with dest.open("xb") as out:
                for chunk in resp["Body"].iter_chunks(1024 * 1024):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        return h.hexdigest()


def expected_etag_parts(part_md5s: list[bytes]) -> str:
    return hashlib.md5(b"".join(part_md5s)).hexdigest() + f"-{len(part_md5s)}"


def expected_etag(path: Path) -> str:
    """The ETag the store shows for ``path`` uploaded by this module (single PUT or parts)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if size <= PART_SIZE:
            return hashlib.md5(f.read()).hexdigest()
        md5s = []
        while data := f.read(PART_SIZE):
            md5s.append(hashlib.md5(data).digest())
    return expected_etag_parts(md5s)
