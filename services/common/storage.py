"""Object storage: datasets are prefixes of one bucket, images objects under them.

Works against MinIO, any S3 API, and the local stack's localbucket (which has no
notifications, credentials or object metadata, so nothing here relies on them).
"""

import io

from minio import Minio
from minio.error import S3Error

from services.common.config import StorageSettings


class ObjectNotFound(LookupError):
    pass


class ObjectTooLarge(ValueError):
    pass


def object_name(dataset: str, key: str) -> str:
    return f"{dataset}/{key}"


class ObjectStore:
    def __init__(self, settings: StorageSettings):
        self.bucket = settings.bucket
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key or None,
            secret_key=settings.s3_secret_key or None,
            secure=settings.s3_secure,
            region=settings.s3_region,  # set, so the client never asks the server for it
        )

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put(self, dataset: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(self.bucket, object_name(dataset, key), io.BytesIO(data), len(data), content_type)

    def get(self, dataset: str, key: str, max_bytes: int) -> bytes:
        """The object's bytes; ObjectNotFound if absent, ObjectTooLarge past max_bytes."""
        name = object_name(dataset, key)
        try:
            size = self.client.stat_object(self.bucket, name).size
            if size is not None and size > max_bytes:
                raise ObjectTooLarge(f"{name} is {size} bytes, over the {max_bytes}-byte limit")
            response = self.client.get_object(self.bucket, name)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket", "NotFound"):
                raise ObjectNotFound(f"no object {name} in bucket {self.bucket}") from error
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()
