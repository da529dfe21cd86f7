"""Chains: extending a clip at its provider, continuing from its last frame, the main line.

A chain is a root clip and every clip made from it (``Clip.parent``). Each clip may have
several takes after it (alternatives); the main line goes root -> the main take at each
step. Each provider's extension rules are checked here, before anything is sent, so a
refusal costs nothing and says why.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import transaction
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from videos import frames as frame_store
from videos import handoff, media, providers, review, seams, services
from videos.compiled import CompiledQuery, compared_columns
from videos.models import (
    ChainExport,
    Clip,
    ClipKind,
    ClipStatus,
    FrameRole,
    ProviderAccount,
    ProviderKind,
    Role,
)
from videos.picture import Look
from videos.pipeline import enqueue
from videos.providers import ModelSpec

# Kling adds "4-5 s" per extension: the worst case decides whether 3 minutes would be passed.
KLING_MOST_ADDED_SECONDS = 5.0
# Kling deletes its media after 30 days, and only videos it still holds can be extended.
KLING_EXTEND_WITHIN = timedelta(days=30)
# apimart's remix turns an 8 s generation into 15 s, nothing else.
APIMART_REMIX_SOURCE_SECONDS = 8
# Chains listed per page on the project page.
CHAINS_PER_PAGE = 10


class ChainError(Exception):
    """A chain action the studio refuses, with the reason in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def can_generate(role: str | None) -> bool:
    """Creators and admins generate, extend, continue and spend; reviewers do not."""
    return role in {Role.ADMIN, Role.CREATOR}


# --- extending at the provider ---------------------------------------------------------------


@dataclass(frozen=True)
class ExtendOffer:
    """What "Extend" will do for one clip, for the form and the button."""

    provider: str
    adds_seconds: float
    most_seconds: float
    whole_video: bool
    offers_raw: bool
    note: str


def _spec(clip: Clip) -> ModelSpec | None:
    return providers.model_spec(clip.provider_account.kind, clip.model)


def extend_refusal(clip: Clip, *, now: datetime | None = None) -> str | None:
    """Why this clip cannot be extended at its provider, or None when it can."""
    account = clip.provider_account
    kind = account.kind
    if kind == ProviderKind.NEWAPI:
        if retry_extension_refusal(clip) is None:
            return (
                "NewAPI extends only within its 15 s request: retry this clip's failed "
                "extension above, or use “Continue from last frame”."
            )
        return (
            "NewAPI has no way to extend a finished video. Use “Continue from last frame” "
            "to carry on from its last frame, with any provider."
        )
    spec = _spec(clip)
    if spec is None or spec.extend is None:
        return (
            f"{clip.model} videos cannot be extended at {account.label}. Use “Continue from "
            "last frame” instead."
        )
    if clip.params.get("sample_of") or int(clip.params.get("sample_count") or 1) > 1:
        # A remix names a task, and which of a several-sample task's videos it would
        # extend is not documented: nothing is paid for on a guess.
        return (
            f"{account.label} made this take in one task together with the other takes, and "
            "its extension works on a whole task, not one of its videos. Use “Continue from "
            "last frame” instead."
        )
    if clip.status != ClipStatus.READY or not clip.has_video or not clip.provider_task_id:
        return "Only a clip that finished successfully can be extended."
    if not ProviderAccount.objects.enabled_for(clip.project).filter(pk=account.pk).exists():
        return f"The {account.label} account is no longer open to this project."
    duration = clip.duration_seconds or 0.0
    adds = spec.extend.adds_seconds
    if kind == ProviderKind.APIMART:
        if clip.kind == ClipKind.EXTEND or round(duration) != APIMART_REMIX_SOURCE_SECONDS:
            return (
                "apimart's remix turns an 8 s generation into 15 s, once. This clip is "
                f"{duration:.1f} s{' and already a remix' if clip.kind == ClipKind.EXTEND else ''}"
                ": use “Continue from last frame” to go further."
            )
    elif kind == ProviderKind.KIE:
        # The studio asks kie for 720p; a 1080p result can only come from elsewhere (an
        # imported clip, a 1080p version), and its size says so. Seed: "生成1080P之后的视频不能
        # 扩展", so once its 1080p version was asked for, the 720p clip cannot be either.
        is_1080p = min(clip.width or 0, clip.height or 0) >= 1080
        if (
            clip.kind == ClipKind.UPSCALE
            or str(clip.params.get("resolution", "")).lower() == "1080p"
            or is_1080p
            or has_1080p_version(clip)
        ):
            return (
                "kie cannot extend a video once its 1080p version has been made. Use "
                "“Continue from last frame” instead."
            )
    elif kind == ProviderKind.KLING:
        adds = KLING_MOST_ADDED_SECONDS
        made_at = clip.submitted_at or clip.created_at
        if (now or timezone.now()) - made_at >= KLING_EXTEND_WITHIN:
            return (
                "Kling only extends videos made in the last 30 days (it deletes older ones). "
                "Use “Continue from last frame” instead."
            )
        if not clip.params.get("provider_video_id"):
            return (
                "Kling did not report this video's id, which it needs to extend it. Use "
                "“Continue from last frame” instead."
            )
    if duration + adds > spec.extend.max_total_seconds + 0.01:
        return (
            f"{account.label} extends a video up to {spec.extend.max_total_seconds:g} s in "
            f"all; this one is {duration:.1f} s. Use “Continue from last frame” to go further."
        )
    return None


def extend_offer(clip: Clip) -> ExtendOffer | None:
    if extend_refusal(clip) is not None:
        return None
    spec = _spec(clip)
    assert spec is not None and spec.extend is not None
    kind = clip.provider_account.kind
    return ExtendOffer(
        provider=clip.provider_account.label,
        adds_seconds=spec.extend.adds_seconds,
        most_seconds=KLING_MOST_ADDED_SECONDS if kind == ProviderKind.KLING else 0,
        whole_video=spec.extend.returns == "whole",
        offers_raw=kind == ProviderKind.APIMART,
        note=spec.extend.note,
    )


def has_1080p_version(clip: Clip) -> bool:
    """kie was asked for this clip's 1080p version (a refusal before sending does not count)."""
    return (
        clip.children.filter(kind=ClipKind.UPSCALE)
        .exclude(status__in=(ClipStatus.FAILED, ClipStatus.CANCELLED), provider_task_id="")
        .exists()
    )


def extend_clip(
    *,
    source: Clip,
    user,
    prompt: str,
    raw: bool = False,
    negative_prompt: str = "",
    options: dict | None = None,
) -> Clip:
    """A new take after ``source``, made by the provider's own extension endpoint.

    ``options``: the extension endpoint's own fields (``ModelSpec.extend_options``: kie's
    seeds and watermark, Kling's cfg_scale), already checked by the form.
    """
    refusal = extend_refusal(source)
    if refusal:
        raise ChainError(refusal)
    spec = _spec(source)
    assert spec is not None and spec.extend is not None
    kind = source.provider_account.kind
    # apimart's raw remix and kie (its resultUrls: the continuation alone) return only the
    # new part; otherwise the new footage starts where the source ends, and the timeline
    # skips what came before.
    whole = spec.extend.returns == "whole" and not (kind == ProviderKind.APIMART and raw)
    params: dict = {
        "duration": round(
            KLING_MOST_ADDED_SECONDS if kind == ProviderKind.KLING else spec.extend.adds_seconds
        ),
        "aspect_ratio": source.params.get("aspect_ratio", ""),
        "resolution": source.params.get("resolution", ""),
        # How long the source was: the timeline tells a stitched whole from a new part by it.
        "source_seconds": source.duration_seconds or 0.0,
    }
    if kind == ProviderKind.APIMART:
        params["raw"] = bool(raw)
    if negative_prompt:
        params["negative_prompt"] = negative_prompt
    allowed = {option.name for option in spec.extend_options}
    params.update({k: v for k, v in (options or {}).items() if k in allowed})
    with transaction.atomic():
        clip = services.create_clip(
            project=source.project,
            user=user,
            account=source.provider_account,
            # The chain keeps the generation's model name; the pipeline maps it to the
            # provider's extension model where the names differ (apimart's remix page).
            model=source.model,
            prompt=prompt,
            params=params,
            parent=source,
        )
        clip.kind = ClipKind.EXTEND
        clip.new_from_seconds = (source.duration_seconds or 0.0) if whole else 0.0
        clip.save(update_fields=["kind", "new_from_seconds"])
        review.record(
            project=source.project,
            actor=user,
            verb="extended",
            clip=clip,
            summary=f"extended clip {source.pk} at {source.provider_account.label}",
        )
    return clip


# --- NewAPI: retrying a failed extension --------------------------------------------------


def retry_extension_refusal(clip: Clip) -> str | None:
    """Why this clip's failed extension cannot be retried at NewAPI, or None when it can.

    Only NewAPI's partial results qualify: the 8 s were made and the 7 s extension failed
    (``extend_failed``); the seed's remix_id names the 8 s for a retry.
    """
    if clip.provider_account.kind != ProviderKind.NEWAPI or clip.status != ClipStatus.PARTIAL:
        return "Only a NewAPI clip whose extension failed can have its extension retried."
    if not clip.params.get("remix_id"):
        return "NewAPI did not report the first part's id, so its extension cannot be retried."
    if not clip.has_video:
        return "The first 8 s are not saved yet; retry the extension once they are."
    account = clip.provider_account
    if not ProviderAccount.objects.enabled_for(clip.project).filter(pk=account.pk).exists():
        return f"The {account.label} account is no longer open to this project."
    return None


def retry_extension(*, source: Clip, user, prompt: str) -> Clip:
    """A new take after a partial NewAPI clip: its 7 s extension asked for again (remix)."""
    refusal = retry_extension_refusal(source)
    if refusal:
        raise ChainError(refusal)
    with transaction.atomic():
        clip = services.create_clip(
            project=source.project,
            user=user,
            account=source.provider_account,
            model=source.model,
            prompt=prompt,
            params={
                "duration": 7,
                "aspect_ratio": source.params.get("aspect_ratio", ""),
                "resolution": source.params.get("resolution", ""),
                "source_seconds": source.duration_seconds or 0.0,
            },
            parent=source,
            kind=ClipKind.EXTEND,
        )
        # The remix answers with the whole 15 s: the new footage starts after the 8 s.
        clip.new_from_seconds = source.duration_seconds or 0.0
        clip.save(update_fields=["new_from_seconds"])
        review.record(
            project=source.project,
            actor=user,
            verb="extended",
            clip=clip,
            summary=f"retried the extension of clip {source.pk} at {source.provider_account.label}",
        )
    return clip


# --- continuing from the last frame ----------------------------------------------------------


def continue_refusal(clip: Clip) -> str | None:
    if not clip.has_video or clip.status not in {ClipStatus.READY, ClipStatus.PARTIAL}:
        return "Only a clip with a finished video can be continued from its last frame."
    return None


def _transport(spec: ModelSpec) -> str | None:
    return frame_store.default_transport(frame_store.usable_transports(spec.frame_transports))


def continue_targets(project) -> list[tuple[ProviderAccount, ModelSpec]]:
    """Every (account, model) the project may use that starts from a first frame the studio
    can hand over (a model that only fetches links needs a public address or S3)."""
    return [
        (account, spec)
        for account in ProviderAccount.objects.enabled_for(project).order_by("label", "pk")
        for spec in providers.models_for(account.kind)
        if "first" in spec.frame_roles and _transport(spec)
    ]


def continue_clip(
    *,
    source: Clip,
    user,
    account: ProviderAccount,
    model: str,
    prompt: str,
    params: dict,
    match_colours: bool = False,
) -> Clip:
    """A new image-to-video take after ``source``, starting from its hand-off still: the
    sharpest of its last frames, colour-matched to the chain's first part if asked."""
    refusal = continue_refusal(source)
    if refusal:
        raise ChainError(refusal)
    if not ProviderAccount.objects.enabled_for(source.project).filter(pk=account.pk).exists():
        raise ChainError(f"The {account.label} account is not open to this project.")
    spec = providers.model_spec(account.kind, model)
    if spec is None or "first" not in spec.frame_roles:
        raise ChainError(f"{model} at {account.label} does not start from a first frame.")
    transport = _transport(spec)
    if transport is None:
        raise ChainError(
            f"{account.label} fetches images by link only, and this studio has no public "
            "address for it to fetch from. An admin can set PUBLIC_URL or use S3 storage."
        )
    # Media work first, outside the transaction: nothing is written if the video is unreadable.
    hand = handoff_for(
        source,
        match_colours=match_colours,
        min_short_side=frame_store.rules_for(account.kind).min_short_side,
    )
    still = hand.still
    try:
        frame_store.check_image(still.content, kind=account.kind)
    except frame_store.FrameError as exc:
        raise ChainError(f"The last frame cannot go to {account.label}: {exc}") from exc
    first_frame = frame_store.NewFrame(
        role=FrameRole.FIRST,
        content=still.content,
        content_type=still.content_type,
        width=still.width,
        height=still.height,
    )
    with transaction.atomic():
        # Stored like an uploaded first frame: the pipeline hands it to the provider the way
        # that provider takes images (a file part, Base64, a link).
        clip = services.create_clip(
            project=source.project,
            user=user,
            account=account,
            model=model,
            prompt=prompt,
            params={**params, "frame_transport": transport},
            parent=source,
            frames=[first_frame],
        )
        clip.kind = ClipKind.CONTINUE
        # Which frame it starts from, for the chain page's seam strip.
        clip.quality = {"handoff": hand.as_json()}
        clip.save(update_fields=["kind", "quality"])
        review.record(
            project=source.project,
            actor=user,
            verb="continued",
            clip=clip,
            summary=(
                f"continued clip {source.pk} from its last frame at {account.label} ({model})"
            ),
        )
    return clip


def can_match_colours(source: Clip) -> bool:
    """Matching needs a first part other than the clip itself."""
    return source.parent_id is not None


def _picked(source: Clip, *, match_colours: bool) -> tuple[handoff.Pick, Look | None]:
    try:
        picked = handoff.pick(source)
        reference = (
            seams.look_of(source.chain_root())
            if match_colours and can_match_colours(source)
            else None
        )
    except (media.NotAVideo, OSError, ValueError) as exc:
        raise ChainError(
            "The last frames of this clip could not be read, so it cannot be continued."
        ) from exc
    return picked, reference


def handoff_for(
    source: Clip, *, match_colours: bool = False, min_short_side: int = 0
) -> handoff.Handoff:
    """The still a continuation of ``source`` starts from."""
    picked, reference = _picked(source, match_colours=match_colours)
    return handoff.prepare(picked, reference=reference, min_short_side=min_short_side)


@dataclass(frozen=True)
class HandoffPreview:
    handoff: handoff.Handoff
    sent: str
    # The still before its colours were matched, to compare (None when not matched).
    unmatched: str | None


def handoff_preview(source: Clip, *, match_colours: bool) -> HandoffPreview:
    """What the continue page shows of the still that will be sent, as data: URIs."""
    picked, reference = _picked(source, match_colours=match_colours)
    plain = handoff.prepare(picked)
    if reference is None:
        return HandoffPreview(
            handoff=plain, sent=handoff.preview_uri(plain.still.content), unmatched=None
        )
    matched = handoff.prepare(picked, reference=reference)
    return HandoffPreview(
        handoff=matched,
        sent=handoff.preview_uri(matched.still.content),
        unmatched=handoff.preview_uri(plain.still.content),
    )


# --- the main line ---------------------------------------------------------------------------


@dataclass
class Segment:
    clip: Clip
    start: float
    end: float
    offset: float
    # Every take at this step (the main one included), oldest first.
    takes: list[Clip] = field(default_factory=list)

    @property
    def length(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def until(self) -> float:
        return self.offset + self.length

    # Trimming: the in and out points, as seconds into the clip's new footage.

    @property
    def footage_length(self) -> float:
        start, end = self.clip.timeline_range()
        return max(0.0, end - start)

    @property
    def cut_in(self) -> float:
        return self.start - self.clip.timeline_range()[0]

    @property
    def cut_out(self) -> float:
        return self.end - self.clip.timeline_range()[0]

    @property
    def is_trimmed(self) -> bool:
        return self.length < self.footage_length - 1e-3

    @property
    def alternatives(self) -> list[Clip]:
        return [take for take in self.takes if take.pk != self.clip.pk]


@dataclass
class Timeline:
    root: Clip
    segments: list[Segment]
    # Takes after the last segment that have no video (yet): in flight, failed.
    pending: list[Clip]
    clip_count: int

    @property
    def total(self) -> float:
        return self.segments[-1].until if self.segments else 0.0

    @property
    def clip_ids(self) -> list[int]:
        return [segment.clip.pk for segment in self.segments]

    def position_of(self, clip: Clip) -> int | None:
        """1-based place of ``clip`` on the main line, or None when it is not on it."""
        for index, segment in enumerate(self.segments, start=1):
            if segment.clip.pk == clip.pk:
                return index
        return None


def _has_video(clip: Clip) -> bool:
    return clip.has_video and clip.status in {ClipStatus.READY, ClipStatus.PARTIAL}


def main_take(takes: list[Clip]) -> Clip | None:
    """The chosen take, else the first that succeeded (takes are oldest first)."""
    playable = [take for take in takes if _has_video(take)]
    chosen = next((take for take in playable if take.is_main_line), None)
    return chosen or (playable[0] if playable else None)


def _children_of(clips) -> dict[int, list[Clip]]:
    children: dict[int, list[Clip]] = defaultdict(list)
    # A 1080p version is the same footage as its parent: never a take or a segment.
    for clip in clips.exclude(kind=ClipKind.UPSCALE).order_by("created_at", "pk"):
        children[clip.parent_id].append(clip)
    return children


def _walk(root: Clip, children: dict[int, list[Clip]]) -> Timeline:
    segments: list[Segment] = []
    pending: list[Clip] = []
    count = 1
    current: Clip | None = root if _has_video(root) else None
    if current is None:
        pending = [root]
    offset = 0.0
    takes = [root]
    while current is not None:
        start, end = current.kept_range()
        segment = Segment(clip=current, start=start, end=end, offset=offset, takes=takes)
        segments.append(segment)
        offset = segment.until
        takes = children.get(current.pk, [])
        current = main_take(takes)
        if current is None:
            pending = takes
    # Every clip of the chain, the branches off the main line included.
    stack = [root.pk]
    while stack:
        kids = children.get(stack.pop(), [])
        count += len(kids)
        stack.extend(kid.pk for kid in kids)
    return Timeline(root=root, segments=segments, pending=pending, clip_count=count)


def timeline(root: Clip) -> Timeline:
    """The chain's main line, in order, with where each segment sits on the timeline."""
    # Every clip of a chain points at its root: one query, however deep the chain is, and
    # one for its accounts (a chain uses a few; each would otherwise decrypt a credential).
    return _walk(
        root, _children_of(Clip.objects.filter(root=root).prefetch_related("provider_account"))
    )


def chain_roots(project_id: int):
    """The project's chains (roots with at least one clip after them), newest first."""
    return Clip.objects.filter(
        project=project_id,
        parent__isnull=True,
        pk__in=Clip.objects.filter(project=project_id, root__isnull=False)
        .exclude(kind=ClipKind.UPSCALE)
        .values("root"),
    ).order_by("-created_at", "-pk")


# Read on every view of a project page: compiled to SQL once. The first page of chains is
# the one nearly every visit shows, so its ids are compiled too; later pages use the ORM.
CHAIN_COUNT = CompiledQuery(lambda project_id: chain_roots(project_id).counted(), project_id=int)


def first_chain_page(project_id: int):
    """The first page's ids, each with the count of all chains (one query, not two) and its
    place on the page (so a read that aggregates the rows can put them back in order)."""
    return (
        chain_roots(project_id)
        .annotate(
            chains=Window(Count("pk")),
            n=Window(RowNumber(), order_by=[F("created_at").desc(), F("pk").desc()]),
        )
        .values_list("pk", "chains", "n")[:CHAINS_PER_PAGE]
    )


FIRST_CHAIN_PAGE = CompiledQuery(first_chain_page, project_id=int)


def _asks_first_page(page: int | str) -> bool:
    # As Paginator.validate_number reads it: what is no whole number means the first page.
    try:
        return int(page) == 1
    except (TypeError, ValueError):
        return True


def project_chain_page(
    project, *, page: int | str = 1, per_page: int = CHAINS_PER_PAGE, first_page=None
) -> Page:
    """One page of the ids of the project's chains, newest first; a page number past the
    end gives the last page, and one that is not a number the first. ``first_page``: a
    callable giving FIRST_CHAIN_PAGE's rows, where the caller reads them with others."""
    paginator = Paginator([], per_page)
    if per_page == CHAINS_PER_PAGE and _asks_first_page(page):
        rows = first_page() if first_page else FIRST_CHAIN_PAGE.rows(project_id=project.pk)
        paginator.count = rows[0][1] if rows else 0
        return Page([row[0] for row in rows], 1, paginator)
    count = paginator.count = CHAIN_COUNT.value(0, project_id=project.pk)
    try:
        number = paginator.validate_number(page)
    except PageNotAnInteger:
        number = 1
    except EmptyPage:
        number = paginator.num_pages
    paginator = Paginator(chain_roots(project.pk).values_list("pk", flat=True), per_page)
    paginator.count = count
    return paginator.page(number)


# What a chain's row on the project page is drawn from and can change: each clip's place,
# state, trim and length (kept_range), the root's poster. Prompts and params are written
# once, with the row: its id and creation time stand for them (ids alone can come again in
# a database restored from a backup).
CHAIN_SHOWN = (
    "pk",
    "created_at",
    "parent_id",
    "root_id",
    "kind",
    "status",
    "file_key",
    "poster_key",
    "is_main_line",
    "trim_in",
    "trim_out",
    "duration_seconds",
    "new_from_seconds",
)
# chains_version's query for each number of chains on a page (at most a page's worth).
_CHAIN_CLIPS: dict[int, CompiledQuery] = {}


def _chain_clips(ids: list[int]):
    """The columns chain rows are drawn from, of every clip of these chains."""
    return (
        Clip.objects.filter(Q(pk__in=ids) | Q(root__in=ids))
        .order_by("pk")
        .values_list(*compared_columns(Clip, CHAIN_SHOWN))
    )


def _chain_clips_query(count: int) -> CompiledQuery:
    if count not in _CHAIN_CLIPS:
        _CHAIN_CLIPS[count] = CompiledQuery(
            lambda **roots: _chain_clips(list(roots.values())),
            **{f"root{n}": int for n in range(count)},
        )
    return _CHAIN_CLIPS[count]


def chains_version(page: Page) -> list[tuple]:
    """Everything a page of chain rows shows, read as plain columns (one query, compiled
    once for each number of chains a page holds)."""
    ids = list(page.object_list)
    if not ids:
        return []
    if len(ids) > CHAINS_PER_PAGE:  # a caller's own page size: not worth keeping
        return list(_chain_clips(ids))
    query = _chain_clips_query(len(ids))
    # Compared, never shown: the database's own values will do.
    return query.rows(converted=False, **{f"root{n}": pk for n, pk in enumerate(ids)})


def walk_page(page: Page) -> Page:
    """The page of chain ids, its rows replaced by each chain's timeline."""
    ids = list(page.object_list)
    roots = {root.pk: root for root in Clip.objects.filter(pk__in=ids)}
    children = _children_of(Clip.objects.filter(root__in=ids))
    page.object_list = [_walk(roots[pk], children) for pk in ids if pk in roots]
    return page


def choose_main_take(*, take: Clip, user) -> None:
    if take.parent_id is None:
        raise ChainError("The first clip of a chain is always on its main line.")
    if not _has_video(take):
        raise ChainError("Only a take with a finished video can continue the main line.")
    take.make_main_take()
    if not seams.is_scored(take):
        enqueue("score_seams", take.pk)
    review.record(
        project=take.project,
        actor=user,
        verb="chose main take",
        clip=take,
        summary=f"made clip {take.pk} the main take after clip {take.parent_id}",
    )


# --- export ----------------------------------------------------------------------------------


def start_export(*, root: Clip, user) -> ChainExport:
    line = timeline(root)
    if not line.segments:
        raise ChainError("This chain has no finished video to export yet.")
    with transaction.atomic():
        export = ChainExport.objects.create(root=root, created_by=user, segments=line.clip_ids)
        review.record(
            project=root.project,
            actor=user,
            verb="exported",
            clip=root,
            summary=(
                f"exported the chain of clip {root.pk} ({len(line.segments)} segments, "
                f"{line.total:.1f} s)"
            ),
        )
        enqueue("export", export.pk)
    return export
