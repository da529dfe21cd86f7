"""How fast, and in how little memory and disk, a provider's video is mirrored into S3.

Starts SeaweedFS (tests/seaweedfs.py), writes a playable MP4 padded with random bytes to
SIZE_MIB, and serves it from a small threaded HTTP server on loopback (its own process, so
its work is not counted as ours). Then, in rounds that alternate so that a busy machine
weighs on both alike:

- the ceiling: boto3's ``upload_file`` of the local file, at the concurrency that does best;
- the studio's mirror step (``pipeline.mirror_clip``): download, hash, multipart upload
  straight to the final key, probe (no server-side copy).

Prints the best of each, their ratio, the growth of the process's peak RSS during the mirror
(VmHWM, reset through /proc/self/clear_refs first) and the peak of temporary disk used.

Run: .venv/bin/python bench/mirror.py [SIZE_MIB] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="clipchain-bench-"))
SCRATCH = WORK / "tmp"
SCRATCH.mkdir()
# Everything this process puts in a temporary file lands here, where it is measured.
tempfile.tempdir = str(SCRATCH)
MiB = 1024 * 1024

SERVER = r"""
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

folder = sys.argv[1]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = os.path.join(folder, os.path.basename(self.path))
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.end_headers()
        with open(path, "rb") as video:
            self.connection.sendfile(video)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_port, flush=True)
server.serve_forever()
"""


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def disk_written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


@contextmanager
def measured():
    """Peak RSS growth, peak bytes under the temp folder, bytes written to disk, seconds."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    figures = {"rss_before": status_kib("VmRSS"), "temp_peak": 0}
    stop = threading.Event()

    def watch_temp() -> None:
        while not stop.is_set():
            used = sum(f.stat().st_size for f in SCRATCH.rglob("*") if f.is_file())
            figures["temp_peak"] = max(figures["temp_peak"], used)
            stop.wait(0.02)

    watcher = threading.Thread(target=watch_temp, daemon=True)
    written = disk_written()
    watcher.start()
    started, cpu = time.perf_counter(), cpu_seconds()
    try:
        yield figures
    finally:
        figures["seconds"] = time.perf_counter() - started
        figures["cpu"] = cpu_seconds() - cpu
        stop.set()
        watcher.join()
        figures["rss_growth"] = (status_kib("VmHWM") - figures["rss_before"]) * 1024
        figures["disk_written"] = disk_written() - written


def padded_video(path: Path, size_mib: int) -> None:
    from sandbox.render import render_mp4

    render_mp4(path, seconds=4, width=320, height=180, scene="bench", caption="bench")
    padding = size_mib * MiB - path.stat().st_size - 8
    with path.open("ab") as out:
        out.write(struct.pack(">I4s", padding + 8, b"free"))
        while padding > 0:
            out.write(os.urandom(min(8 * MiB, padding)))
            padding -= 8 * MiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("size_mib", nargs="?", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from tests.seaweedfs import seaweedfs

    try:
        with seaweedfs(WORK / "seaweedfs") as s3:
            os.environ.update(
                DJANGO_SETTINGS_MODULE="studio.settings",
                DATA_DIR=str(WORK / "data"),
                S3_BUCKET="bench",
                S3_ENDPOINT_URL=s3.endpoint_url,
                S3_ACCESS_KEY_ID=s3.access_key,
                S3_SECRET_ACCESS_KEY=s3.secret_key,
                S3_REGION=s3.region,
            )
            served = WORK / "served" / "video.mp4"
            served.parent.mkdir()
            padded_video(served, args.size_mib)
            padded_video(served.parent / "warm.mp4", 2)
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(served.parent)],
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                port = int(server.stdout.readline())
                run(args, served, f"http://127.0.0.1:{port}", master_url(s3.endpoint_url))
            finally:
                server.terminate()
                server.wait()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


def master_url(s3_endpoint: str) -> str:
    # tests/seaweedfs.py puts the master three ports below the S3 gateway.
    host, port = s3_endpoint.rsplit(":", 1)
    return f"{host}:{int(port) - 3}"


def reclaim(master: str) -> None:
    """Deleted objects keep their volume space until a vacuum; the test server has 12 GiB."""
    import httpx

    httpx.get(f"{master}/vol/vacuum", params={"garbageThreshold": "0.01"}, timeout=120)


def run(args, served: Path, base_url: str, master: str) -> None:
    import django

    django.setup()
    from boto3.s3.transfer import TransferConfig
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    from videos import pipeline, storage_upload
    from videos.models import Clip, ClipStatus, Project, ProviderAccount

    call_command("migrate", verbosity=0)
    client = default_storage.connection.meta.client
    client.create_bucket(Bucket="bench")
    size = served.stat().st_size
    account = ProviderAccount.objects.create(
        kind="apimart",
        label="bench (sandbox)",
        base_url="http://127.0.0.1:9/sandbox/apimart",
        credential="sk-bench-000000",
    )
    project = Project.objects.create(name="bench")

    # Keeping the upload (nothing left to do for a multipart one), timed apart from streaming.
    copy_seconds: list[float] = []
    keep = storage_upload._S3Incoming._keep

    def timed_keep(self, *args):
        started = time.perf_counter()
        try:
            return keep(self, *args)
        finally:
            copy_seconds.append(time.perf_counter() - started)

    storage_upload._S3Incoming._keep = timed_keep

    def mirror_once(name: str) -> tuple[dict, Clip]:
        clip = Clip.objects.create(
            project=project,
            provider_account=account,
            model="veo3.1-fast-official",
            prompt="bench",
            status=ClipStatus.MIRRORING,
            result_url=f"{base_url}/{name}",
        )
        with measured() as figures:
            pipeline.mirror_clip(clip_id=clip.pk)
        clip.refresh_from_db()
        assert clip.status == ClipStatus.READY, (clip.error_message, clip.provider_message)
        client.delete_object(Bucket="bench", Key=clip.file_key)
        reclaim(master)
        figures["copy"] = copy_seconds[-1]
        return figures, clip

    def ceiling_once(concurrency: int) -> dict:
        config = TransferConfig(multipart_chunksize=8 * MiB, max_concurrency=concurrency)
        with measured() as figures:
            client.upload_file(str(served), "bench", "ceiling.mp4", Config=config)
        client.delete_object(Bucket="bench", Key="ceiling.mp4")
        reclaim(master)
        return figures

    # One small mirror first, so imports and connection set-up are not counted as growth.
    mirror_once("warm.mp4")

    mib = size / MiB
    print(
        f"video: {mib:.0f} MiB, part size {storage_upload.part_size(size) // MiB} MiB, "
        f"at most {storage_upload.MAX_BUFFERED} parts in memory"
    )
    ceilings: dict[int, list[float]] = {}
    mirrors: list[dict] = []
    for round_number in range(1, args.rounds + 1):
        # Every level once, then the two best: the ceiling is boto3 at its best here.
        levels = (4, 8, 10, 16) if round_number == 1 else best_levels(ceilings)[:2]
        for concurrency in levels:
            figures = ceiling_once(concurrency)
            ceilings.setdefault(concurrency, []).append(figures["seconds"])
            print(
                f"  round {round_number}: ceiling upload_file x{concurrency}: "
                f"{figures['seconds']:.2f} s ({mib / figures['seconds']:.0f} MiB/s), "
                f"CPU {figures['cpu']:.1f} s, RSS +{figures['rss_growth'] / MiB:.0f} MiB"
            )
        figures, clip = mirror_once(served.name)
        assert clip.file_size == size and clip.duration_seconds == 4.0
        mirrors.append(figures)
        print(
            f"  round {round_number}: mirror: {figures['seconds']:.2f} s "
            f"({mib / figures['seconds']:.0f} MiB/s; keep {figures['copy']:.2f} s), "
            f"CPU {figures['cpu']:.1f} s, RSS +{figures['rss_growth'] / MiB:.1f} MiB, "
            f"temp disk peak {figures['temp_peak'] / MiB:.0f} MiB"
        )
    level = best_levels(ceilings)[0]
    ceiling = min(ceilings[level])
    best = min(mirrors, key=lambda figures: figures["seconds"])
    streaming = min(m["seconds"] - m["copy"] for m in mirrors)
    middle = statistics.median(m["seconds"] for m in mirrors)
    print(
        f"ceiling, boto3 upload_file of a local copy (best at x{level}): {mib / ceiling:.0f} MiB/s"
    )
    print(
        f"mirror path: {mib / best['seconds']:.0f} MiB/s: throughput ratio "
        f"{ceiling / best['seconds']:.2f} (medians: "
        f"{statistics.median(ceilings[level]) / middle:.2f})"
    )
    print(
        f"  of which streaming (download, hash, multipart upload, probe): "
        f"{mib / streaming:.0f} MiB/s, ratio {ceiling / streaming:.2f}; the rest is keeping "
        "it (no server-side copy)"
    )
    print(f"peak RSS growth: {max(m['rss_growth'] for m in mirrors) / MiB:.1f} MiB")
    print(
        f"peak temp disk used: {max(m['temp_peak'] for m in mirrors) / MiB:.0f} MiB "
        f"(written to disk by this process: "
        f"{max(m['disk_written'] for m in mirrors) / MiB:.1f} MiB)"
    )


def best_levels(ceilings: dict[int, list[float]]) -> list[int]:
    return sorted(ceilings, key=lambda level: min(ceilings[level]))


if __name__ == "__main__":
    main()
