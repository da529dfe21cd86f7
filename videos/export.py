"""Stitching a chain's main line into one MP4 with PyAV, and the export task's work.

Each segment contributes only its new footage between its in and out points
(``Clip.kept_range``). When every segment has the same codec parameters and each cut falls on
a keyframe (or the piece runs to its video's end), the packets are copied as they are (no
quality loss, seconds for minutes of video). Otherwise every frame is decoded, fitted into
the first segment's frame size and encoded again with H.264 (and AAC when any segment has
sound)."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import ceil

import av
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage

from videos import media, storage_upload
from videos.models import ChainExport, Clip

log = logging.getLogger(__name__)

Progress = Callable[[float], None]
AUDIO_RATE = 48000
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Piece:
    """The part of one local video file that goes into the export: [start, end) seconds."""

    path: str
    start: float
    end: float

    @property
    def length(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class Stitched:
    stream_copied: bool


def _parameters(stream) -> tuple:
    context = stream.codec_context
    if stream.type == "video":
        return (
            "video",
            context.name,
            context.width,
            context.height,
            context.format.name,
            bytes(context.extradata or b""),
        )
    return (
        "audio",
        context.name,
        context.sample_rate,
        context.layout.name,
        bytes(context.extradata or b""),
    )


def _starts_on_keyframe(path: str, start: float) -> bool:
    if start <= 0:
        return True
    with av.open(path) as container:
        stream = container.streams.video[0]
        half_frame = 0.5 / float(stream.average_rate or 24)
        for packet in container.demux(stream):
            if packet.pts is None or not packet.is_keyframe:
                continue
            at = float(packet.pts * packet.time_base)
            if abs(at - start) <= half_frame:
                return True
            if at > start:
                return False
    return False


def _ends_on_keyframe(path: str, end: float) -> bool:
    """A piece may stop at its video's own end, or just before a keyframe (the out point of a
    trim): then every packet kept decodes from the ones kept before it."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        half_frame = 0.5 / float(stream.average_rate or 24)
        length = float(stream.duration * stream.time_base) if stream.duration else None
    if length is not None and end >= length - half_frame:
        return True
    return _starts_on_keyframe(path, end)


def can_copy(pieces: Sequence[Piece]) -> bool:
    """True when the packets can be joined as they are, without decoding anything."""
    signatures = set()
    for piece in pieces:
        with av.open(piece.path) as container:
            signatures.add(
                tuple(
                    _parameters(s)
                    for s in (*container.streams.video[:1], *container.streams.audio[:1])
                )
            )
        if len(signatures) > 1:
            return False
    return all(
        _starts_on_keyframe(piece.path, piece.start) and _ends_on_keyframe(piece.path, piece.end)
        for piece in pieces
    )


def stitch(pieces: Sequence[Piece], out_path: str, *, progress: Progress | None = None) -> Stitched:
    if not pieces:
        raise ValueError("Nothing to stitch.")
    report = progress or (lambda fraction: None)
    if can_copy(pieces):
        _copy(pieces, out_path, report)
        return Stitched(stream_copied=True)
    _reencode(pieces, out_path, report)
    return Stitched(stream_copied=False)


# --- stream copy -------------------------------------------------------------------------------


def _copy(pieces: Sequence[Piece], out_path: str, report: Progress) -> None:
    with (
        av.open(pieces[0].path) as first,
        av.open(out_path, "w", format="mp4", options={"movflags": "faststart"}) as output,
    ):
        video_out = output.add_stream_from_template(first.streams.video[0])
        audio_out = (
            output.add_stream_from_template(first.streams.audio[0]) if first.streams.audio else None
        )
        offset = 0.0
        for index, piece in enumerate(pieces):
            with av.open(piece.path) as source:
                video = source.streams.video[0]
                streams = [video, *source.streams.audio[:1]] if audio_out else [video]
                for packet in source.demux(streams):
                    if packet.pts is None or packet.dts is None:
                        continue  # the demuxer's end-of-stream marker
                    at = float(packet.pts * packet.time_base)
                    is_video = packet.stream.index == video.index
                    # The new part starts on a keyframe (checked), so nothing before it is
                    # needed; an out point falls on one too, so nothing after it is; sound
                    # past the piece's end would overlap the next segment.
                    if at < piece.start - 1e-3 or at >= piece.end - 1e-3:
                        continue
                    shift = round((offset - piece.start) / packet.time_base)
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = video_out if is_video else audio_out
                    output.mux(packet)
            offset += piece.length
            report((index + 1) / len(pieces))


# --- re-encode ---------------------------------------------------------------------------------


def _frame_rate(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or 24
    return Fraction(rate).limit_denominator(1001)


def _video_graph(stream, width: int, height: int) -> tuple[av.filter.Graph, object]:
    # Letterboxed into the first segment's size, so segments of another shape keep theirs.
    graph = av.filter.Graph()
    chain = [
        graph.add_buffer(template=stream),
        graph.add(
            "scale", f"{width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2"
        ),
        graph.add("pad", f"{width}:{height}:(ow-iw)/2:(oh-ih)/2"),
        graph.add("setsar", "1"),
        graph.add("format", "yuv420p"),
        graph.add("buffersink"),
    ]
    for upstream, downstream in zip(chain, chain[1:], strict=False):
        upstream.link_to(downstream)
    graph.configure()
    return graph, chain[-1]


def _audio_graph(stream, piece: Piece, samples: int) -> av.filter.Graph:
    """Sound for one segment: its new part resampled, padded or cut to exactly ``samples``."""
    graph = av.filter.Graph()
    if stream is None:
        chain = [graph.add("anullsrc", f"r={AUDIO_RATE}:cl=stereo")]
    else:
        chain = [
            graph.add_abuffer(template=stream),
            graph.add("atrim", f"start={piece.start}"),
            graph.add("asetpts", "PTS-STARTPTS"),
            graph.add("aresample", str(AUDIO_RATE)),
        ]
    chain += [
        graph.add("aformat", f"sample_fmts=fltp:channel_layouts=stereo:sample_rates={AUDIO_RATE}"),
        graph.add("apad", f"whole_len={samples}"),
        graph.add("atrim", f"end_sample={samples}"),
        graph.add("abuffersink"),
    ]
    for upstream, downstream in zip(chain, chain[1:], strict=False):
        upstream.link_to(downstream)
    graph.configure()
    return graph


def _drain(graph: av.filter.Graph) -> list:
    frames = []
    while True:
        try:
            frames.append(graph.pull())
        except (av.BlockingIOError, av.EOFError):
            return frames


def _reencode(pieces: Sequence[Piece], out_path: str, report: Progress) -> None:
    with av.open(pieces[0].path) as first:
        template = first.streams.video[0]
        width = template.codec_context.width // 2 * 2
        height = template.codec_context.height // 2 * 2
        fps = _frame_rate(template)
    with_audio = False
    for piece in pieces:
        with av.open(piece.path) as container:
            with_audio = with_audio or bool(container.streams.audio)
    counts = [round(piece.length * fps) for piece in pieces]
    total_frames = max(1, sum(counts))
    with av.open(out_path, "w", format="mp4", options={"movflags": "faststart"}) as output:
        video_out = output.add_stream(
            "libx264", rate=fps, options={"preset": "veryfast", "crf": "20"}
        )
        video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
        video_out.time_base = 1 / fps
        audio_out = None
        if with_audio:
            audio_out = output.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        written = 0
        samples_written = 0
        for piece, count in zip(pieces, counts, strict=True):
            with av.open(piece.path) as source:
                written = _encode_video(
                    source,
                    piece,
                    count,
                    written,
                    fps,
                    output,
                    video_out,
                    lambda done: report(done / total_frames),
                )
            if audio_out is not None:
                # Sound follows the picture exactly: each segment's sound ends where its last
                # frame does, so drift never builds up across segments.
                target = round(written / fps * AUDIO_RATE)
                with av.open(piece.path) as source:
                    samples_written = _encode_audio(
                        source, piece, target - samples_written, samples_written, output, audio_out
                    )
        for packet in video_out.encode():
            output.mux(packet)
        if audio_out is not None:
            for packet in audio_out.encode():
                output.mux(packet)


def _encode_video(source, piece, count, written, fps, output, video_out, report) -> int:
    stream = source.streams.video[0]
    stream.thread_type = "AUTO"
    graph, _ = _video_graph(stream, video_out.width, video_out.height)
    source_frame = 1 / float(_frame_rate(stream))
    next_slot, last = 0, None

    def emit(frame, upto: int) -> None:
        nonlocal next_slot, written
        while next_slot < min(upto, count):
            frame.pts = written
            frame.time_base = 1 / fps
            for packet in video_out.encode(frame):
                output.mux(packet)
            next_slot += 1
            written += 1
            if written % 24 == 0:
                report(written)

    for decoded in source.decode(stream):
        if decoded.time is None:
            continue
        # The output slots this frame covers: [t, t + one source frame), on the new part.
        after = decoded.time - piece.start
        if after + source_frame <= 1e-6:
            continue
        graph.push(decoded)
        for frame in _drain(graph):
            last = frame
            emit(frame, ceil((after + source_frame) * float(fps) - 1e-6))
        if next_slot >= count:
            break
    if last is None:
        raise media.NotAVideo("A segment has no frames in its new part.")
    emit(last, count)  # a video a little short of its stated length: hold its last frame
    report(written)
    return written


def _encode_audio(source, piece, samples, written, output, audio_out) -> int:
    if samples <= 0:
        return written
    stream = source.streams.audio[0] if source.streams.audio else None
    graph = _audio_graph(stream, piece, samples)

    def send(frames) -> None:
        nonlocal written
        for frame in frames:
            frame.pts = written
            frame.time_base = Fraction(1, AUDIO_RATE)
            written += frame.samples
            for packet in audio_out.encode(frame):
                output.mux(packet)

    if stream is not None:
        for decoded in source.decode(stream):
            graph.push(decoded)
            send(_drain(graph))
        graph.push(None)
    send(_drain(graph))
    return written


# --- the export task's work --------------------------------------------------------------------

# Left for the probe, the upload and the bookkeeping once stitching is done.
FINISHING_SECONDS = 60.0


class TooLong(Exception):
    pass


def _task_seconds() -> float:
    """How long an export task may run: the queue kills it at its timeout."""
    return float(settings.Q_CLUSTER.get("timeout") or 600)


def _local_copy(clip: Clip, folder: str, number: int) -> str:
    """A local file PyAV can read several times: the stored file itself on disk storage."""
    if isinstance(default_storage, FileSystemStorage):
        path = default_storage.path(clip.file_key)
        if not os.path.exists(path):
            raise FileNotFoundError(f"The video of clip {clip.pk} is missing from storage.")
        return path
    path = os.path.join(folder, f"{number:03d}.mp4")
    with open(path, "wb") as local:
        storage_upload.download(default_storage, clip.file_key, local)
    return path


class _Bar:
    """The export's progress: fetching 0-10 %, stitching 10-90 %, uploading 90-99 %.

    While stitching it also projects when the work will end, and stops it (TooLong) once
    that falls past the queue's timeout (less a minute for the upload), so the export fails
    with a reason instead of being killed mid-way and left "Stitching".
    """

    def __init__(self, export: ChainExport) -> None:
        self.export = export
        self.shown = -1
        self.ends_at = time.monotonic() + _task_seconds()
        self.stitch_started = 0.0

    def show(self, percent: float) -> None:
        if int(percent) != self.shown:
            self.shown = int(percent)
            self.export.record_progress(self.shown)

    def stitching(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 0.1:
            projected = now + (now - self.stitch_started) * (1 - fraction) / fraction
            if projected + FINISHING_SECONDS > self.ends_at:
                minutes = ceil((now - self.stitch_started) / fraction / 60)
                raise TooLong(
                    f"Stitching this chain would take about {minutes} "
                    f"minute{'s' if minutes != 1 else ''}, more "
                    f"than an export may run ({_task_seconds() / 60:g} minutes). Ask an admin "
                    "to give exports more time (the queue's timeout)."
                )
        self.show(10 + 80 * fraction)


def _key_prefix(export: ChainExport) -> str:
    return f"exports/{export.root.project_id}/{export.pk}-"


def _upload(export: ChainExport, path: str, bar: _Bar) -> tuple[str, int, str]:
    """The stitched file into storage through the same streamed upload as a clip's video,
    straight under its final key (a random token in it: no server-side copy)."""
    size = os.path.getsize(path)
    key = f"{_key_prefix(export)}{secrets.token_hex(6)}.mp4"
    with (
        storage_upload.receive(default_storage, key, max_bytes=max(size, 1)) as incoming,
        open(path, "rb") as stitched,
    ):
        while chunk := stitched.read(CHUNK):
            incoming.write(chunk)
            bar.show(90 + 9 * incoming.size / max(size, 1))
        incoming.finish()
        return incoming.keep(), incoming.size, incoming.sha256


def run_export(*, export_id: int) -> None:
    export = ChainExport.objects.select_related("root").get(pk=export_id)
    if not export.claim():
        return
    # What an export killed mid-upload left behind (it may be this one, taken over).
    storage_upload.sweep(
        default_storage,
        prefix=_key_prefix(export),
        older_than=_task_seconds(),
        in_use=lambda: ChainExport.objects.filter(pk=export.pk).values_list("file_key", flat=True),
    )
    clips = {clip.pk: clip for clip in Clip.objects.filter(pk__in=export.segments)}
    bar = _Bar(export)
    try:
        with tempfile.TemporaryDirectory(prefix="export-") as folder:
            pieces = []
            for number, clip_id in enumerate(export.segments):
                clip = clips.get(clip_id)
                if clip is None or not clip.file_key:
                    export.mark_failed(
                        f"Clip {clip_id} of this chain no longer has a video. Export again."
                    )
                    return
                # Its new footage between the in and out points set on the timeline.
                start, end = clip.kept_range()
                pieces.append(Piece(path=_local_copy(clip, folder, number), start=start, end=end))
                bar.show(10 * (number + 1) / len(export.segments))
            out = os.path.join(folder, "chain.mp4")
            bar.stitch_started = time.monotonic()
            result = stitch(pieces, out, progress=bar.stitching)
            info = media.probe(out)
            key, size, sha256 = _upload(export, out, bar)
            recorded = export.mark_ready(
                file_key=key,
                file_size=size,
                sha256=sha256,
                duration_seconds=info.duration,
                stream_copied=result.stream_copied,
            )
            if not recorded:
                # Another run of this export recorded its file first: ours belongs to
                # nobody and would stay in the bucket for ever.
                log.warning("export %s was finished by another run; deleting %s", export.pk, key)
                default_storage.delete(key)
    except TooLong as exc:
        log.warning("export %s stopped: %s", export.pk, exc)
        export.mark_failed(str(exc))
    except (
        av.FFmpegError,
        media.NotAVideo,
        OSError,
        ValueError,
        BotoCoreError,
        ClientError,
    ) as exc:
        log.exception("export %s failed", export.pk)
        export.mark_failed(f"The chain could not be stitched: {exc}")
