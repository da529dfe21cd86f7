"""Streaming a file into storage as it arrives, and reading stored files by byte ranges.

``receive`` takes bytes in order (a provider's download, a stitched export) and writes them
under the final name the caller chose before the first byte (with a random token in it:
S3 has no rename, and the SHA-256 is only known at the end), counting size and SHA-256 on
the way, with no temporary copy anywhere:

- S3 (django-storages' S3Storage): a multipart upload to the final key. A small thread
  pool sends parts while the next one fills, with at most MAX_BUFFERED parts in memory, so
  a slow store holds the download back instead of filling memory. Completing the upload is
  the last step: there is no server-side copy. A file smaller than one part never leaves
  memory until it is kept (one PutObject). Whatever goes wrong aborts the upload (an
  incomplete multipart upload is invisible, and billed) or deletes the completed object.
- The filesystem backend: a ``.part`` file next to the final name, hard-linked to it (the
  same folder, so nothing is copied, and a link never overwrites a file).

``sweep`` clears what a killed worker left under a name prefix (``clips/3/12-``).

``open_ranged`` gives PyAV a seekable file over a stored object that fetches only the byte
ranges it reads: django-storages' S3File downloads the whole object into memory first.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from botocore.exceptions import ClientError
from django.core.files.storage import FileSystemStorage, Storage
from storages.backends.s3 import S3Storage
from storages.utils import clean_name, safe_join

MiB = 1024 * 1024
# S3's rules for multipart uploads: at most 10,000 parts of at least 5 MiB (but the last).
S3_MAX_PARTS = 10_000
S3_MIN_PART = 5 * MiB
PART_SIZE = 6 * MiB
# Parts in memory at once (the one filling included), and uploads running side by side:
# S3 reaches its write speed with about eight requests in flight (boto3's own best here),
# and nine 6 MiB buffers keep the process within 64 MiB however large the video.
MAX_BUFFERED = 9
UPLOAD_THREADS = MAX_BUFFERED - 1
# What a file being written on the filesystem backend is called until it is kept.
PARTIAL_SUFFIX = ".part"

log = logging.getLogger(__name__)


class TooLarge(ValueError):
    pass


def part_size(max_bytes: int) -> int:
    """Whole MiB, at least PART_SIZE, so that ``max_bytes`` fits in S3's 10,000 parts."""
    needed = -(-max_bytes // S3_MAX_PARTS)
    return max(PART_SIZE, S3_MIN_PART, -(-needed // MiB) * MiB)


class Incoming:
    """Bytes on their way into storage under ``name``; ``keep`` makes them stay.

    Used as a context manager: leaving the block without ``keep`` (an error, a refusal)
    removes everything written so far.
    """

    def __init__(self, name: str, *, max_bytes: int) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self.size = 0
        self._digest = hashlib.sha256()
        self._kept = False

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise TooLarge(f"The file is larger than {self.max_bytes // MiB} MiB.")
        self._digest.update(data)
        self._write(data)

    def finish(self) -> None:
        """Every byte has been written."""

    def open(self) -> BinaryIO:
        """The bytes received, as a seekable file (for probing before they are kept)."""
        raise NotImplementedError

    def keep(self) -> str:
        """Leave the file in storage (after ``finish``); returns its name."""
        self.name = self._keep()
        self._kept = True
        return self.name

    def discard(self) -> None:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _keep(self) -> str:
        raise NotImplementedError

    def __enter__(self) -> Incoming:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._kept:
            return
        try:
            self.discard()
        except Exception:
            # The error that brought us here matters more; sweep() clears the rest later.
            log.exception("could not remove an unfinished upload")


def receive(storage: Storage, name: str, *, max_bytes: int) -> Incoming:
    """Start receiving a file under ``name``, its final name, chosen before the first byte.

    The name should be unique to this try (a random token in it): two tries of one clip
    then never write over each other, and the one that loses deletes only its own file.
    """
    name = storage.get_available_name(name)
    if isinstance(storage, S3Storage):
        return _S3Incoming(storage, name, max_bytes=max_bytes)
    if isinstance(storage, FileSystemStorage):
        return _LocalIncoming(storage, name, max_bytes=max_bytes)
    raise NotImplementedError(f"Streaming into {type(storage).__name__} is not supported.")


def sweep(
    storage: Storage,
    *,
    prefix: str,
    older_than: float,
    in_use: Callable[[], Collection[str]] = tuple,
) -> int:
    """Remove what an interrupted ``receive`` under ``prefix`` left (a worker killed mid-way).

    Only what was started more than ``older_than`` seconds ago: a run still alive (no
    longer than the queue's timeout) keeps its upload. On S3: unfinished multipart uploads
    (ListMultipartUploads by prefix), and completed objects nobody recorded (a worker killed
    between completing and recording); ``in_use`` names the recorded ones, asked after the
    listing. On the filesystem: the ``.part`` files.
    """
    cutoff = time.time() - older_than
    removed = 0
    if isinstance(storage, S3Storage):
        client, bucket = storage.connection.meta.client, storage.bucket_name
        key_prefix = _s3_key(storage, prefix)
        for page in client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=key_prefix
        ):
            for upload in page.get("Uploads", ()):
                if upload["Initiated"].timestamp() <= cutoff:
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        stale = [
            entry["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=key_prefix
            )
            for entry in page.get("Contents", ())
            if entry["LastModified"].timestamp() <= cutoff
        ]
        if stale:
            recorded = {_s3_key(storage, name) for name in in_use() if name}
            for key in stale:
                if key not in recorded:
                    client.delete_object(Bucket=bucket, Key=key)
                    removed += 1
    elif isinstance(storage, FileSystemStorage):
        folder, start = os.path.split(storage.path(prefix))
        if os.path.isdir(folder):
            for entry in os.scandir(folder):
                if (
                    entry.name.startswith(start)
                    and entry.name.endswith(PARTIAL_SUFFIX)
                    and entry.stat().st_mtime <= cutoff
                ):
                    os.unlink(entry.path)
                    removed += 1
    return removed


# --- S3 ----------------------------------------------------------------------------------------


def _s3_key(storage: S3Storage, name: str) -> str:
    # As S3Storage names its objects (its LOCATION prefix included).
    return safe_join(storage.location, clean_name(name))


def _s3_write_parameters(storage: S3Storage, name: str) -> dict:
    params = storage.get_object_parameters(name)
    params.setdefault("ContentType", "video/mp4")
    if "ACL" not in params and storage.default_acl:
        params["ACL"] = storage.default_acl
    return params


class _S3Incoming(Incoming):
    def __init__(self, storage: S3Storage, name: str, *, max_bytes: int) -> None:
        super().__init__(name, max_bytes=max_bytes)
        self._storage = storage
        # boto3 clients are thread-safe (resources are not): one client for every part.
        self._client = storage.connection.meta.client
        self._bucket = storage.bucket_name
        self._key = _s3_key(storage, name)
        self._part_size = part_size(max_bytes)
        self._buffer = bytearray(self._part_size)
        self._filled = 0
        # Buffers of parts S3 has taken, refilled for the next parts: MAX_BUFFERED in all,
        # allocated once (a fresh buffer per part costs page faults all the way).
        self._spare: list[bytearray] = []
        self._upload_id: str | None = None
        self._parts: list[Future] = []
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(MAX_BUFFERED - 1)
        self._finished = False
        self._completed = False  # the multipart upload is complete: the object is there

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = self._part_size - self._filled
            taken = view[:room]
            self._buffer[self._filled : self._filled + len(taken)] = taken
            self._filled += len(taken)
            view = view[len(taken) :]
            if self._filled == self._part_size:
                self._send_part()

    def _send_part(self) -> None:
        self._raise_failed_part()
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                **_s3_write_parameters(self._storage, self._key),
            )["UploadId"]
            self._pool = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="s3-part")
        # Blocks while MAX_BUFFERED - 1 parts are on their way: the reader waits for S3.
        self._slots.acquire()
        # A full part is handed over as it is; only the last, shorter one is cut (a copy).
        body = self._buffer if self._filled == self._part_size else self._buffer[: self._filled]
        number, sent = len(self._parts) + 1, self._buffer
        future = self._pool.submit(self._upload_part, number, body)
        future.add_done_callback(lambda _: self._recycle(sent))
        self._parts.append(future)
        self._buffer = self._spare.pop() if self._spare else bytearray(self._part_size)
        self._filled = 0

    def _recycle(self, buffer: bytearray) -> None:
        # Spare first, then the slot: whoever takes the slot finds a buffer to fill.
        self._spare.append(buffer)
        self._slots.release()

    def _upload_part(self, number: int, body: bytearray) -> dict:
        answer = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        part = {"PartNumber": number, "ETag": answer["ETag"]}
        for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
            if name in answer:
                part[name] = answer[name]
        return part

    def _raise_failed_part(self) -> None:
        for future in self._parts:
            if future.done() and future.exception() is not None:
                raise future.exception()

    def finish(self) -> None:
        if self._upload_id is None:
            self._finished = True  # smaller than a part: still in memory, sent by keep()
            return
        if self._filled:
            self._send_part()
        parts = [future.result() for future in self._parts]
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": parts},
        )
        self._upload_id = None
        self._shut_pool()
        self._buffer, self._spare = bytearray(), []
        self._parts = []
        self._finished = True
        self._completed = True

    def open(self) -> BinaryIO:
        if not self._completed:
            return io.BytesIO(self._buffer[: self._filled])
        return RangedReader(self._client, self._bucket, self._key, size=self.size)

    def _keep(self) -> str:
        assert self._finished, "finish() first"
        if not self._completed:
            self._client.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=self._buffer[: self._filled],
                **_s3_write_parameters(self._storage, self._key),
            )
            self._buffer = bytearray()
        # A completed multipart upload already is the object, under its final key.
        return self.name

    def discard(self) -> None:
        self._buffer = bytearray()
        if self._upload_id is not None:
            # Parts still on their way finish first, or one could land after the abort.
            for future in self._parts:
                future.cancel()
            self._shut_pool()
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )
            self._upload_id = None
        if self._completed:
            self._client.delete_object(Bucket=self._bucket, Key=self._key)
            self._completed = False

    def _shut_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class RangedReader(io.RawIOBase):
    """A read-only, seekable file over one S3 object, fetched by GetObject byte ranges.

    Reads ahead in windows that grow while reading runs on in order (a decoder), and stay
    small after a jump (a demuxer looking for the index at the end of an MP4).
    """

    MIN_WINDOW = 256 * 1024
    MAX_WINDOW = 8 * MiB

    def __init__(self, client, bucket: str, key: str, *, size: int | None = None) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        if size is None:
            size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        self.size = size
        self.fetched = 0  # bytes read from S3, for tests and figures
        self._pos = 0
        self._window_start = 0
        self._window = b""
        self._next_window = self.MIN_WINDOW

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view) and self._pos < self.size:
            window_end = self._window_start + len(self._window)
            if not self._window_start <= self._pos < window_end:
                self._fetch(wanted=len(view) - filled, in_order=self._pos == window_end)
            offset = self._pos - self._window_start
            data = self._window[offset : offset + len(view) - filled]
            view[filled : filled + len(data)] = data
            filled += len(data)
            self._pos += len(data)
        return filled

    def _fetch(self, *, wanted: int, in_order: bool) -> None:
        if in_order and self._window:
            self._next_window = min(self.MAX_WINDOW, self._next_window * 2)
        else:
            self._next_window = self.MIN_WINDOW
        end = min(self.size, self._pos + max(wanted, self._next_window))
        answer = self._client.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-{end - 1}"
        )
        self._window_start, self._window = self._pos, answer["Body"].read()
        self.fetched += len(self._window)


def open_ranged(storage: Storage, name: str) -> BinaryIO:
    """A seekable binary file over a stored file that reads only what is asked of it.

    A missing file raises FileNotFoundError on S3 too, as ``storage.open`` does.
    """
    if isinstance(storage, S3Storage):
        client = storage.connection.meta.client
        try:
            return RangedReader(client, storage.bucket_name, _s3_key(storage, name))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from exc
            raise
    return storage.open(name, "rb")


def download(storage: Storage, name: str, into: BinaryIO, *, chunk_size: int = MiB) -> int:
    """Copy a stored file into a local one in chunks (one streamed GET on S3)."""
    if isinstance(storage, S3Storage):
        body = storage.connection.meta.client.get_object(
            Bucket=storage.bucket_name, Key=_s3_key(storage, name)
        )["Body"]
        copied = 0
        for chunk in body.iter_chunks(chunk_size):
            into.write(chunk)
            copied += len(chunk)
        return copied
    copied = 0
    with storage.open(name, "rb") as stored:
        while chunk := stored.read(chunk_size):
            into.write(chunk)
            copied += len(chunk)
    return copied


# --- the filesystem ----------------------------------------------------------------------------


class _LocalIncoming(Incoming):
    def __init__(self, storage: FileSystemStorage, name: str, *, max_bytes: int) -> None:
        super().__init__(name, max_bytes=max_bytes)
        self._storage = storage
        # Next to the final name: linking it there is atomic and copies nothing.
        self._path = storage.path(name) + PARTIAL_SUFFIX
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        self._file: BinaryIO | None = open(self._path, "xb")  # noqa: SIM115 (closed by finish)

    def _write(self, data: bytes) -> None:
        self._file.write(data)

    def finish(self) -> None:
        self._file.close()
        self._file = None

    def open(self) -> BinaryIO:
        return open(self._path, "rb")  # noqa: SIM115 (the caller closes it)

    def _keep(self) -> str:
        stored = self.name
        for _ in range(10):
            path = self._storage.path(stored)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                # A link never replaces a file that appeared since the name was chosen.
                os.link(self._path, path)
            except FileExistsError:
                stored = self._storage.get_available_name(self.name)
                continue
            if self._storage.file_permissions_mode is not None:
                os.chmod(path, self._storage.file_permissions_mode)
            os.unlink(self._path)
            return stored
        raise FileExistsError(f"No free name for {self.name}.")

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
