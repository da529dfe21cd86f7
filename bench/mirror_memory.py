"""How much memory mirroring a large video takes: it must stream, not hold the file.

Serves a real MP4 padded with an MP4 `free` box to SIZE_MB over local HTTP, mirrors it with
the studio's own pipeline step, and prints the size, the time taken and the growth of the
process's peak memory. Run: .venv/bin/python bench/mirror_memory.py [SIZE_MB]
"""

from __future__ import annotations

import os
import resource
import struct
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="clipchain-bench-"))
os.environ.update(DJANGO_SETTINGS_MODULE="studio.settings", DATA_DIR=str(WORK / "data"))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from sandbox.render import render_mp4  # noqa: E402
from videos import pipeline  # noqa: E402
from videos.models import Clip, ClipStatus, Project, ProviderAccount  # noqa: E402


def padded_video(path: Path, size_mb: int) -> None:
    render_mp4(path, seconds=4, width=320, height=180, scene="bench", caption="bench")
    padding = size_mb * 1024 * 1024 - path.stat().st_size - 8
    with path.open("ab") as out:
        out.write(struct.pack(">I4s", padding + 8, b"free"))
        chunk = b"\0" * (1024 * 1024)
        while padding > 0:
            out.write(chunk[: min(len(chunk), padding)])
            padding -= len(chunk)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    call_command("migrate", verbosity=0)
    files = WORK / "served"
    files.mkdir()
    padded_video(files / "big.mp4", size_mb)
    handler = partial(SimpleHTTPRequestHandler, directory=str(files))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    account = ProviderAccount.objects.create(
        kind="apimart", label="bench", base_url="http://127.0.0.1:9", credential="sk-bench"
    )
    clip = Clip.objects.create(
        project=Project.objects.create(name="bench"),
        provider_account=account,
        model="veo3.1-fast-official",
        prompt="bench",
        status=ClipStatus.MIRRORING,
        result_url=f"http://127.0.0.1:{server.server_port}/big.mp4",
    )
    before = peak_mb()
    started = time.perf_counter()
    pipeline.mirror_clip(clip_id=clip.pk)
    elapsed = time.perf_counter() - started
    clip.refresh_from_db()
    server.shutdown()
    assert clip.status == ClipStatus.READY, (clip.status, clip.error_message)
    print(
        f"mirrored: {clip.file_size / 1024 / 1024:.0f} MiB in {elapsed:.2f} s "
        f"({clip.file_size / 1024 / 1024 / elapsed:.0f} MiB/s), duration {clip.duration_seconds} s"
    )
    print(
        f"peak memory: {before:.0f} MiB before, {peak_mb():.0f} MiB after "
        f"(growth {peak_mb() - before:.0f} MiB for a {size_mb} MiB video)"
    )


if __name__ == "__main__":
    main()
