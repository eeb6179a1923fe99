"""A dataset's remote datastore: an ``s3-bucket`` block (prefect-aws) on S3 or any S3-compatible store.

The block's ``bucket_folder`` is the base of the dataset layout, its ``aws-credentials`` block gives the keys,
the region and (for S3-compatible stores) ``aws_client_parameters.endpoint_url``. One PUT replaces an object
whole, so readers see the old object or the new one, never half of it. Failures become
:class:`~prefect_julia.core.errors.DatastoreError` naming the fix; secrets never appear in a message.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prefect_julia.core.errors import DatastoreError

#: S3 error codes that mean "these credentials are not accepted".
CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}


class ObjectMissing(Exception):
    """The object does not exist (the caller turns it into DatasetMissing)."""


@dataclass(frozen=True)
class S3Store:
    """Objects under ``s3://bucket/folder/`` with a boto3 client built from the block's credentials."""

    block_name: str
    bucket: str
    folder: str
    client: Any
    endpoint: str

    def key(self, relative: str) -> str:
        folder = self.folder.strip("/")
        return f"{folder}/{relative}" if folder else relative

    def location(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self.key(relative)}"

    def read(self, relative: str) -> bytes:
        buffer = io.BytesIO()
        try:
            with self._errors(relative):
                self.client.download_fileobj(self.bucket, self.key(relative), buffer)
        except ObjectMissing:
            with self._errors(""):  # a HEAD answers 404 without a code: tell a missing bucket apart
                self.client.head_bucket(Bucket=self.bucket)
            raise
        return buffer.getvalue()

    def write(self, relative: str, data: bytes) -> str:
        with self._errors(relative):
            self.client.upload_fileobj(io.BytesIO(data), self.bucket, self.key(relative))
        return self.location(relative)

    def keys(self, prefix: str) -> list[str]:
        """Keys (relative to the folder) that start with ``prefix``."""
        found: list[str] = []
        start = len(self.key(""))
        with self._errors(prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(prefix)
            ):
                found.extend(item["Key"][start:] for item in page.get("Contents", []))
        return found

    @contextlib.contextmanager
    def _errors(self, relative: str) -> Iterator[None]:
        """Turn botocore's failures into the kit's errors; ``relative`` names the object (empty: the bucket)."""
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        where = f"the {self.block_name} datastore (s3://{self.bucket}, endpoint {self.endpoint})"
        try:
            yield
        except EndpointConnectionError as error:
            raise DatastoreError(
                f"Cannot reach {where}: {error}.",
                hint="Start the S3 server, or correct endpoint_url in the aws-credentials block (envs/<env>.blocks.toml).",
            ) from None
        except NoCredentialsError:
            raise DatastoreError(
                f"{where} has no credentials.",
                hint="Declare an aws-credentials block with secret_from in envs/<env>.blocks.toml and run `invoke blocks`.",
            ) from None
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if relative and (code in MISSING_KEY_CODES or (status == 404 and code != "NoSuchBucket")):
                raise ObjectMissing(self.location(relative)) from None
            if code == "NoSuchBucket" or status == 404:
                raise DatastoreError(
                    f"The bucket {self.bucket!r} of {where} does not exist.",
                    hint=f"Create the bucket {self.bucket!r}, or correct bucket_name in envs/<env>.blocks.toml.",
                ) from None
            if code in CREDENTIAL_CODES or status == 403:
                raise DatastoreError(
                    f"{where} refused the credentials ({code or status}).",
                    hint="Correct the access key and secret (the settings the aws-credentials block's secret_from "
                    "names, in envs/<env>.local.env), then run `invoke blocks`.",
                ) from None
            raise DatastoreError(f"{where} answered {code or status}.") from None
        except BotoCoreError as error:
            raise DatastoreError(f"{where} failed: {type(error).__name__}.") from None


def load_store(name: str) -> S3Store:
    """The ``s3-bucket`` block ``name`` from the Prefect server, as a store."""
    from prefect_aws.s3 import S3Bucket

    try:
        block: Any = S3Bucket.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError as error:
        from prefect_julia.core.errors import ConfigError

        raise ConfigError(
            f"Block s3-bucket/{name} was not found on the Prefect server: {error}",
            hint="Declare it in envs/<env>.blocks.toml and run `invoke blocks`.",
        ) from None
    credentials = block.credentials
    endpoint = ""
    params = getattr(credentials, "aws_client_parameters", None)
    if params is not None and getattr(params, "endpoint_url", None):
        endpoint = str(params.endpoint_url)
    client = credentials.get_s3_client()
    return S3Store(
        block_name=f"s3-bucket/{name}",
        bucket=block.bucket_name,
        folder=block.bucket_folder or "",
        client=client,
        endpoint=endpoint or "AWS",
    )
