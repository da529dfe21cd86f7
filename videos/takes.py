"""Takes: several versions of one request, compared side by side, one starred as the pick.

A request for N takes (2-4) makes one take group. apimart documents ``sample_count`` on its
generations, so it gets one submission asking for N samples (each video becomes a clip of
the group when the task finishes, videos/pipeline/samples.py); every other provider gets N
submissions. Either way the whole request is counted against the budget before anything is
sent, and refused whole if it does not fit.

The pick is what the team builds on: Extend and Continue offer it first, and among takes
that follow one parent it is the take on the chain's main line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from videos import ledger, review, seams, services
from videos.frames import NewFrame
from videos.ledger import BudgetExceeded, money
from videos.models import Clip, ClipStatus, Project, ProviderAccount, ProviderKind, TakeGroup
from videos.pipeline import enqueue
from videos.pricing import estimate_cost

MAX_TAKES = 4
# apimart's generations page documents sample_count 1-4; its remix page does not.
ONE_REQUEST_KINDS = frozenset({ProviderKind.APIMART})


class TakesError(Exception):
    """A pick the studio refuses, with the reason in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def in_one_request(account: ProviderAccount, *, parent: Clip | None = None) -> bool:
    return account.kind in ONE_REQUEST_KINDS and parent is None


def create_takes(
    *,
    project: Project,
    user,
    account: ProviderAccount,
    model: str,
    prompt: str,
    params: dict,
    count: int,
    frames: Sequence[NewFrame] = (),
    parent: Clip | None = None,
) -> TakeGroup:
    """``count`` takes of one request, in one group; nothing at all when the budget is short."""
    if not 2 <= count <= MAX_TAKES:
        raise ValueError(f"Takes come 2 to {MAX_TAKES} at a time, not {count}.")
    try:
        with transaction.atomic():
            group = TakeGroup.objects.create(project=project, created_by=user)
            # Each submission is checked against the budget with the ones before it already
            # counted (queued clips are promised money), and any refusal undoes them all.
            if in_one_request(account, parent=parent):
                asks = [{**params, "sample_count": count}]
            else:
                asks = [dict(params) for _ in range(count)]
            clips = [
                services.create_clip(
                    project=project,
                    user=user,
                    account=account,
                    model=model,
                    prompt=prompt,
                    params=ask,
                    frames=frames,
                    parent=parent,
                )
                for ask in asks
            ]
            Clip.objects.filter(pk__in=[clip.pk for clip in clips]).update(take_group=group)
    except BudgetExceeded as exc:
        raise BudgetExceeded(
            _over_budget(project, account=account, model=model, params=params, count=count)
            or str(exc)
        ) from exc
    return group


def _over_budget(
    project: Project, *, account: ProviderAccount, model: str, params: dict, count: int
) -> str | None:
    each = estimate_cost(account.kind, model, params.get("duration"))
    if each is None:
        return None
    status = ledger.budget_status(Project.objects.get(pk=project.pk))
    left = max(ledger.ZERO, status.left or ledger.ZERO)
    return (
        f"{count} takes would cost about {money(each * count)} ({money(each)} each), but "
        f"{project.name} has {money(left)} left of its {money(status.budget)} budget. "
        "Nothing was sent: ask for fewer takes, or a project admin can raise the budget."
    )


# --- comparing -----------------------------------------------------------------------------


@dataclass
class Comparison:
    group: TakeGroup
    takes: list[Clip]
    # Videos asked for in one request that have not become clips yet (apimart's samples
    # arrive together when its task finishes).
    waiting: int

    @property
    def count(self) -> int:
        return len(self.takes) + self.waiting

    @property
    def waiting_numbers(self) -> list[int]:
        return list(range(len(self.takes) + 1, self.count + 1))

    @property
    def playable(self) -> list[Clip]:
        return [take for take in self.takes if _has_video(take)]

    @property
    def in_flight(self) -> bool:
        return self.waiting > 0 or any(not take.is_final for take in self.takes)

    @property
    def pick(self) -> Clip | None:
        return next((take for take in self.takes if take.pk == self.group.pick_id), None)

    @property
    def first(self) -> Clip:
        return self.takes[0]


def _has_video(clip: Clip) -> bool:
    return clip.has_video and clip.status in {ClipStatus.READY, ClipStatus.PARTIAL}


def compare(group: TakeGroup) -> Comparison:
    takes = list(group.takes.select_related("provider_account").order_by("created_at", "pk"))
    asked = sum(
        int(take.params.get("sample_count") or 1)
        for take in takes
        if "sample_of" not in take.params
    )
    # A one-request task that ended without its samples will not make them any more.
    pending = any(not take.is_final and take.params.get("sample_count") for take in takes)
    return Comparison(group=group, takes=takes, waiting=asked - len(takes) if pending else 0)


def preferred(clip: Clip) -> Clip:
    """The take to build on from ``clip``: its group's pick when the team chose one."""
    if clip.take_group_id is None:
        return clip
    group = TakeGroup.objects.select_related("pick").filter(pk=clip.take_group_id).first()
    if group is None or group.pick is None or not _has_video(group.pick):
        return clip
    return group.pick


# --- picking -------------------------------------------------------------------------------


def pick(*, group: TakeGroup, take: Clip, user) -> None:
    """Star ``take`` as the group's pick; after a parent it also continues the main line."""
    if take.take_group_id != group.pk:
        raise TakesError("That clip is not one of these takes.")
    if not _has_video(take):
        raise TakesError("Only a take with a finished video can be the pick.")
    with transaction.atomic():
        TakeGroup.objects.filter(pk=group.pk).update(pick=take)
        group.pick = take
        if take.parent_id is not None:
            take.make_main_take()
            if not seams.is_scored(take):
                enqueue("score_seams", take.pk)
        review.record(
            project=group.project,
            actor=user,
            verb="picked a take",
            clip=take,
            summary=f"picked clip {take.pk} of {group.takes.count()} takes"
            + (f" to continue clip {take.parent_id}" if take.parent_id else ""),
        )
