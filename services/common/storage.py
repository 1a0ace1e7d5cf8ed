"""Object storage: datasets are prefixes of one bucket, images objects under them.

Works against MinIO, any S3 API, and the local stack's localbucket (which has no
notifications, credentials or object metadata, so nothing here relies on them).
"""

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import urllib3
from minio import Minio
from minio.error import S3Error

from services.common.config import StorageSettings


class ObjectNotFound(LookupError):
    pass


class ObjectTooLarge(ValueError):
    def __init__(self, message: str, signature: str = ""):
        super().__init__(message)
        self.signature = signature


_MISSING = ("NoSuchKey", "NoSuchBucket", "NotFound")


def object_name(dataset: str, key: str) -> str:
    return f"{dataset}/{key}"


def signature(size: int, etag: str, modified: datetime | None) -> str:
    """What storage says about an object's version. It changes when the object is
    replaced, so it tells a rescan what to look at again; it is not a content hash
    (ETags of multipart uploads are not), the sha256 of the bytes is."""
    seconds = int(modified.timestamp()) if modified else 0
    tag = etag.strip('"')
    return f"{size}:{tag}:{seconds}"


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the dataset prefix
    signature: str
    modified: float  # epoch seconds


@dataclass(frozen=True)
class Fetched:
    data: bytes
    signature: str


class ObjectStore:
    def __init__(self, settings: StorageSettings):
        self.bucket = settings.bucket
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key or None,
            secret_key=settings.s3_secret_key or None,
            secure=settings.s3_secure,
            region=settings.s3_region,  # set, so the client never asks the server for it
            # Bounded: a storage that hangs or fails costs a caller seconds, not minutes of retries.
            http_client=urllib3.PoolManager(
                maxsize=32, timeout=urllib3.Timeout(connect=settings.s3_timeout_s, read=settings.s3_timeout_s),
                retries=urllib3.Retry(total=settings.s3_retries, backoff_factor=0.2,
                                      status_forcelist=[500, 502, 503, 504]),
            ),
        )

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put(self, dataset: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(self.bucket, object_name(dataset, key), io.BytesIO(data), len(data), content_type)

    def put_stream(self, dataset: str, key: str, stream, size: int, content_type: str) -> None:
        """Stores `size` bytes read from a file-like object (multipart above 64 MiB)."""
        self.client.put_object(self.bucket, object_name(dataset, key), stream, size, content_type,
                               part_size=64 * 2**20)

    def datasets(self) -> list[str]:
        """The top-level prefixes of the bucket."""
        return [o.object_name.rstrip("/") for o in self.client.list_objects(self.bucket, recursive=False) if o.is_dir]

    def list(self, dataset: str) -> Iterator[StoredObject]:
        """Every object under the dataset's prefix, with its signature."""
        prefix = f"{dataset}/"
        for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            if not item.is_dir:
                modified = item.last_modified.timestamp() if item.last_modified else 0.0
                yield StoredObject(item.object_name[len(prefix):],
                                   signature(item.size or 0, item.etag or "", item.last_modified), modified)

    @contextlib.contextmanager
    def _missing_as_not_found(self, name: str):
        try:
            yield
        except S3Error as error:
            if error.code in _MISSING:
                raise ObjectNotFound(f"no object {name} in bucket {self.bucket}") from error
            raise

    def open(self, dataset: str, key: str):
        """The object's HTTP response, to read (its headers carry size and type) and
        then close and release; ObjectNotFound if absent."""
        name = object_name(dataset, key)
        with self._missing_as_not_found(name):
            return self.client.get_object(self.bucket, name)

    def stat(self, dataset: str, key: str):
        """The object's metadata; ObjectNotFound if absent."""
        name = object_name(dataset, key)
        with self._missing_as_not_found(name):
            return self.client.stat_object(self.bucket, name)

    def fetch(self, dataset: str, key: str, max_bytes: int) -> Fetched:
        """The object's bytes and signature, read in one request."""
        response = self.open(dataset, key)
        try:
            size = int(response.headers.get("Content-Length", 0))
            modified = response.headers.get("Last-Modified")
            sig = signature(size, response.headers.get("ETag", ""), parsedate_to_datetime(modified) if modified else None)
            if size > max_bytes:
                raise ObjectTooLarge(f"{key} is {size} bytes, over the {max_bytes}-byte limit", sig)
            return Fetched(response.read(), sig)
        finally:
            response.close()
            response.release_conn()

    def get(self, dataset: str, key: str, max_bytes: int) -> bytes:
        """The object's bytes; ObjectNotFound if absent, ObjectTooLarge past max_bytes."""
        name = object_name(dataset, key)
        size = self.stat(dataset, key).size
        if size is not None and size > max_bytes:
            raise ObjectTooLarge(f"{name} is {size} bytes, over the {max_bytes}-byte limit")
        response = self.open(dataset, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()
