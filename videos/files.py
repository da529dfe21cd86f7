"""Serving stored files to members: a presigned redirect on S3, ranged reads on disk.

Browsers seek in <video> with Range requests; Django's FileResponse ignores Range, so
local files get a small single-range implementation here.
"""

from __future__ import annotations

import re

from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def _is_local() -> bool:
    try:
        default_storage.path("x")
    except NotImplementedError:
        return False
    return True


def serve(request: HttpRequest, key: str, *, content_type: str, filename: str) -> HttpResponse:
    if not key:
        raise Http404("No file.")
    if not _is_local():
        # S3: a short-lived presigned URL; the bytes never pass through the web server.
        return HttpResponseRedirect(default_storage.url(key))
    try:
        path = default_storage.path(key)
        handle = open(path, "rb")  # noqa: SIM115 (closed by the response)
    except FileNotFoundError:
        raise Http404("File missing.") from None
    size = default_storage.size(key)
    match = RANGE_RE.match(request.headers.get("Range", "").strip())
    if not match or (not match[1] and not match[2]):
        response = FileResponse(handle, content_type=content_type, filename=filename)
        response["Accept-Ranges"] = "bytes"
        return response
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]) if match[2] else size - 1, size - 1)
    else:  # "bytes=-500": the last 500 bytes
        start, end = max(0, size - int(match[2])), size - 1
    if start > end or start >= size:
        handle.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    handle.seek(start)

    def chunks(remaining: int = end - start + 1):
        try:
            while remaining > 0:
                data = handle.read(min(CHUNK, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data
        finally:
            handle.close()

    response = StreamingHttpResponse(chunks(), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response
