"""Seconds (and memory) to score the seams of a 10-hop 1080p chain.

Draws an 11-part 1920x1080 chain with the sandbox renderer (an 8 s generation, then ten 5 s
continuations, each starting from the previous part's hand-off still; hops 5 on drift a
warm step each), stores it as a chain in a throwaway DATA_DIR, then scores it twice:

- the queue's way: ``score_seams`` once per part, as each is mirrored (each seam reads the
  part before it again, from a seek near its end);
- ``seams.score_line``: the whole main line at once, each video read once.

Prints seconds per seam, the total, the growth of the process's peak RSS while scoring, and
numpy's own peak (tracemalloc). The renders run in a child process, so the peak RSS here is
the scoring's. Rendering takes a minute or two; ``--keep DIR`` reuses the videos next time.
Run: .venv/bin/python bench/seams.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1920, 1080
HOPS = 10
DRIFT_FROM_HOP = 5
PROMPT = "A paper boat on a stream, morning light"


def setup_django(data: Path) -> None:
    os.environ["DATA_DIR"] = str(data)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def part_path(folder: Path, n: int) -> Path:
    return folder / f"part-{n:02d}.mp4"


def render(folder: Path) -> None:
    """The chain's videos (run in a child process: rendering's memory is not scoring's)."""
    setup_django(folder / "render-data")
    from sandbox.render import render_mp4
    from videos import handoff

    for n in range(HOPS + 1):
        path = part_path(folder, n)
        if path.exists():
            continue
        first = handoff.sharpest_near_end(str(part_path(folder, n - 1))).image if n else None
        render_mp4(
            path,
            seconds=8 if n == 0 else 5,
            width=WIDTH,
            height=HEIGHT,
            scene=PROMPT,
            caption=PROMPT,
            label="SANDBOX · Kling · kling-v1-6",
            first_frame=first,
            effects=("drift",) if n >= DRIFT_FROM_HOP else (),
        )
        print(f"  rendered part {n + 1}", flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path, help="folder for the rendered videos, reused")
    parser.add_argument("--render-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render_only:
        render(args.render_only)
        return
    videos = args.keep or Path(tempfile.mkdtemp(prefix="clipchain-seams-videos-"))
    videos.mkdir(parents=True, exist_ok=True)
    print(f"Rendering {HOPS + 1} parts at {WIDTH}x{HEIGHT} into {videos} …", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--render-only", str(videos)], check=True, cwd=ROOT)
    print(f"  {time.perf_counter() - started:.1f} s")

    setup_django(Path(tempfile.mkdtemp(prefix="clipchain-seams-data-")))
    from django.contrib.auth import get_user_model
    from django.core.files import File
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    from videos import chains, media, seams
    from videos.models import Clip, ClipKind, ClipStatus, Project, ProviderAccount

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench")
    project = Project.objects.create(name="Seams bench", created_by=user)
    account = ProviderAccount.objects.create(
        kind="kling", label="kling", base_url="http://127.0.0.1:1/sandbox/kling", credential="x"
    )
    parts: list[Clip] = []
    for n in range(HOPS + 1):
        path = part_path(videos, n)
        info = media.probe(str(path))
        with path.open("rb") as handle:
            key = default_storage.save(f"clips/{project.pk}/part-{n}.mp4", File(handle))
        parts.append(
            Clip.objects.create(
                project=project,
                created_by=user,
                provider_account=account,
                model="kling-v1-6",
                prompt=PROMPT,
                parent=parts[-1] if parts else None,
                root=parts[0] if parts else None,
                kind=ClipKind.CONTINUE if parts else ClipKind.GENERATE,
                status=ClipStatus.READY,
                file_key=key,
                duration_seconds=info.duration,
                width=info.width,
                height=info.height,
                provider_task_id=f"bench-{n}",
            )
        )

    rss_before = peak_rss_mib()
    tracemalloc.start()
    print("\nThe queue's way (score_seams as each part is mirrored):")
    timings = []
    cpu = []
    for n, part in enumerate(parts):
        started, cpu_started = time.perf_counter(), time.process_time()
        seams.score_clip(clip_id=part.pk)
        seconds = time.perf_counter() - started
        cpu.append(time.process_time() - cpu_started)
        part.refresh_from_db()
        if n == 0:
            print(f"  part  1  first part's look   {seconds:5.2f} s")
            continue
        timings.append(seconds)
        seam, drift = part.quality["seam"], part.quality["drift"]
        print(
            f"  seam {n:2d}→{n + 1:<2d} {seconds:5.2f} s   notes: {', '.join(seam['notes']) or '-'}"
            f";  drift ΔE {drift['delta_e']:5.2f}{'  WARN' if drift['warn'] else ''}"
        )
    queue_total = sum(timings)

    Clip.objects.filter(pk__in=[part.pk for part in parts]).update(quality={})
    line = chains.timeline(parts[0])
    started, cpu_started = time.perf_counter(), time.process_time()
    seams.score_line(line)
    line_total = time.perf_counter() - started
    line_cpu = time.process_time() - cpu_started
    numpy_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rss_growth = peak_rss_mib() - rss_before
    warning = seams.line_quality(chains.timeline(parts[0])).first_warning

    print(
        f"\n{HOPS} seams at {WIDTH}x{HEIGHT}, {line.total:.0f} s of chain:\n"
        f"  queue's way:  {queue_total:.2f} s in all, {queue_total / HOPS:.2f} s per seam "
        f"(slowest {max(timings):.2f} s); CPU {sum(cpu[1:]) / HOPS:.2f} s per seam\n"
        f"  score_line:   {line_total:.2f} s in all, {line_total / HOPS:.2f} s per seam; "
        f"CPU {line_cpu / HOPS:.2f} s per seam\n"
        f"  (wall clock on a machine whose load average was {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores; CPU counts every decoding thread)\n"
        f"  peak RSS growth while scoring: {rss_growth:.0f} MiB; numpy's peak: "
        f"{numpy_peak:.0f} MiB\n"
        f"  drift warning from part {warning.position if warning else '-'} "
        f"(drift injected from hop {DRIFT_FROM_HOP}, part {DRIFT_FROM_HOP + 1})"
    )


if __name__ == "__main__":
    main()
