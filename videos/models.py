from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models, transaction
from django.db.models import ExpressionWrapper, Q, Value
from django.db.models.functions import Now
from django.urls import reverse
from django.utils import timezone

from videos.compiled import CompiledQuery
from videos.crypto import EncryptedTextField
from videos.redact import redact


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    CREATOR = "creator", "Creator"
    REVIEWER = "reviewer", "Reviewer"


class ProjectQuerySet(models.QuerySet["Project"]):
    def for_user(self, user) -> ProjectQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Project(models.Model):
    """A team's space. Creating one, and spending in one, needs the site-level ``spend`` right."""

    name = models.CharField(max_length=120)
    budget = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Optional spending limit in USD; a submission that would pass it is refused.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        permissions = [
            ("spend", "Can create projects and spend with provider accounts"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("project", args=[self.pk])

    def role_of(self, user) -> str | None:
        if not user.is_authenticated:
            return None
        return self.memberships.filter(user=user).values_list("role", flat=True).first()


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CREATOR)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.get_role_display()})"

    @property
    def can_generate(self) -> bool:
        return self.role in {Role.ADMIN, Role.CREATOR}


class ProviderKind(models.TextChoices):
    APIMART = "apimart", "apimart (Veo 3.1)"
    NEWAPI = "newapi", "NewAPI gateway (15 s remix)"
    KIE = "kie", "kie.ai (Veo 3.1)"
    KLING = "kling", "Kling"


class ProviderAccountQuerySet(models.QuerySet["ProviderAccount"]):
    def enabled(self) -> ProviderAccountQuerySet:
        return self.filter(is_enabled=True)

    def enabled_for(self, project: Project) -> ProviderAccountQuerySet:
        """The accounts a project may spend with: enabled, and open to all or assigned to it."""
        return self.enabled().filter(Q(all_projects=True) | Q(projects=project)).distinct()


class ProviderAccount(models.Model):
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    label = models.CharField(max_length=80)
    base_url = models.URLField(
        max_length=500,
        help_text="Where this provider's API lives: resellers, gateways and regions differ.",
    )
    # Encrypted at rest; see videos.crypto. Kling keeps its access key here and the secret
    # key below; every other provider uses a single bearer key.
    credential = EncryptedTextField()
    secret_key = EncryptedTextField(blank=True, default="")
    credential_last4 = models.CharField(max_length=4, blank=True, editable=False)
    is_enabled = models.BooleanField(default=True)
    # Off by default: an account is offered only to the projects staff chose, so creating a
    # project never brings money with it.
    all_projects = models.BooleanField(
        default=False,
        help_text="Offer this account to every project, not only those chosen. Staff only.",
    )
    projects = models.ManyToManyField(Project, blank=True, related_name="provider_accounts")
    unit_price = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=(
            "What one unit of the provider's reported cost (credits, units) costs in USD. "
            "Empty: the provider reports money, or costs are estimated from the price table."
        ),
    )
    max_in_flight = models.PositiveIntegerField(
        default=20,
        help_text=(
            "How many tasks this account runs at the provider at once. Further clips wait in "
            "order for a free slot, so a burst does not trip the provider's limits."
        ),
    )
    requests_per_minute = models.PositiveIntegerField(
        default=300,
        help_text="The most status checks the studio sends this account's provider per minute.",
    )
    # Shared by every tracker process (a token bucket on this row), so the limit holds
    # however many machines poll.
    poll_tokens = models.FloatField(default=0, editable=False)
    poll_tokens_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The provider answered 429: this account is not polled again before then.
    paused_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProviderAccountQuerySet.as_manager()

    def __str__(self) -> str:
        return self.label

    def save(self, *args, **kwargs) -> None:
        self.credential_last4 = (self.credential or "")[-4:]
        super().save(*args, **kwargs)

    @property
    def is_sandbox(self) -> bool:
        """Points at this studio's own provider twins (only ever true where the sandbox runs).

        Fetches for a sandbox account may reach loopback; every other account's may not.
        """
        from urllib.parse import urlsplit

        return settings.SANDBOX_ENABLED and urlsplit(self.base_url).path.startswith("/sandbox/")

    def secrets(self) -> tuple[str, str]:
        return (self.credential, self.secret_key)

    def pause(self, *, seconds: float) -> datetime:
        """The provider asked this account to slow down: no status checks before then."""
        until = timezone.now() + timedelta(seconds=seconds)
        ProviderAccount.objects.filter(pk=self.pk).filter(
            Q(paused_until__isnull=True) | Q(paused_until__lt=until)
        ).update(paused_until=until)
        self.paused_until = until
        return until


# How long a queued step (mirror, poster) holds a clip before it starts: time for the queue
# to reach it. Once running, a step renews a shorter lease (RUNNING_LEASE) as it works, so a
# worker killed mid-step is noticed within a minute and a live one is never doubled.
WORK_LEASE = timedelta(minutes=3)
RUNNING_LEASE = timedelta(seconds=60)


class ClipStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    # The provider may have taken the task, but its answer was lost: never sent again, looked
    # up where the provider allows it, otherwise a person checks.
    UNKNOWN = "unknown", "Outcome unknown"
    RUNNING = "running", "Generating"
    MIRRORING = "mirroring", "Saving video"
    READY = "ready", "Ready"
    PARTIAL = "partial", "Partly ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"

    @classmethod
    def final(cls) -> frozenset[str]:
        return frozenset({cls.READY, cls.PARTIAL, cls.FAILED, cls.EXPIRED, cls.CANCELLED})

    @classmethod
    def in_flight(cls) -> list[str]:
        """Every state that is not final, in a fixed order (SQL compiled once stays the same)."""
        return sorted(set(cls.values) - cls.final())

    @classmethod
    def tracked(cls) -> frozenset[str]:
        """States in which a provider task exists and has not finished yet."""
        return frozenset({cls.RUNNING})

    @classmethod
    def occupying(cls) -> frozenset[str]:
        """States that hold one of the account's slots at the provider."""
        return frozenset({cls.SUBMITTING, cls.RUNNING})

    @classmethod
    def active(cls) -> frozenset[str]:
        """States the studio is working on by itself (the page keeps polling)."""
        return frozenset({cls.QUEUED, cls.SUBMITTING, cls.RUNNING, cls.MIRRORING})


class ClipKind(models.TextChoices):
    GENERATE = "generate", "Generation"
    EXTEND = "extend", "Extension"
    CONTINUE = "continue", "Continuation from the last frame"
    # kie's get-1080p-video of a finished 720p clip: its own file, beside its parent's.
    UPSCALE = "upscale", "1080p version"


class ClipQuerySet(models.QuerySet["Clip"]):
    def for_user(self, user) -> ClipQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(project__memberships__user=user)

    def in_flight(self) -> ClipQuerySet:
        # The states named, not "none of the final ones": a project's clips in flight are
        # then a few seeks in (project, status), not a walk through its finished clips.
        return self.filter(status__in=ClipStatus.in_flight())

    def counted(self) -> models.QuerySet:
        """How many of one project's clips these are, as a query of one row and one column
        rather than a number, so it can be compiled once (videos/compiled.py) and run again.
        Grouped by project: callers filter on one."""
        return (
            self.order_by()
            .values("project")
            .annotate(count=models.Count("pk"))
            .values_list("count")
        )


class Clip(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="clips")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="clips"
    )
    # Extension chains: a clip made by extending another points at it.
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    # The first clip of the chain (None for a root): a chain is one query, not one per hop.
    root = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="chain_clips"
    )
    kind = models.CharField(max_length=16, choices=ClipKind.choices, default=ClipKind.GENERATE)
    # Among the takes that extend one parent, the one that continues the chain's main line.
    is_main_line = models.BooleanField(default=False)
    # Where this clip's new footage starts in its own video: 0 for generations and for
    # providers that return only the new part; the source's length when the provider
    # returns the whole extended video (the timeline then skips the repeated part).
    new_from_seconds = models.FloatField(default=0)
    # Several takes asked for in one request (Takes: 1-4) belong to one group.
    take_group = models.ForeignKey(
        "TakeGroup", on_delete=models.SET_NULL, null=True, blank=True, related_name="takes"
    )
    # In and out points within this clip's new footage (seconds); None plays it all.
    trim_in = models.FloatField(null=True, blank=True)
    trim_out = models.FloatField(null=True, blank=True)
    # "Retry" makes a new clip on the creator's click; it remembers the one it retries.
    retry_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries"
    )
    provider_account = models.ForeignKey(
        ProviderAccount, on_delete=models.PROTECT, related_name="clips"
    )
    model = models.CharField(max_length=80)
    prompt = models.TextField()
    params = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=16, choices=ClipStatus.choices, default=ClipStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    phase = models.CharField(max_length=80, blank=True)
    provider_task_id = models.CharField(max_length=200, blank=True)
    provider_estimate_seconds = models.PositiveIntegerField(null=True, blank=True)

    result_url = models.URLField(max_length=2000, blank=True)
    result_expires_at = models.DateTimeField(null=True, blank=True)

    file_key = models.CharField(max_length=300, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    poster_key = models.CharField(max_length=300, blank=True)

    error_code = models.CharField(max_length=80, blank=True)
    error_message = models.TextField(blank=True)
    provider_message = models.TextField(blank=True)
    # What the provider reported, in its own units (Kling units, kie credits, …).
    cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    provider_done_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # When the tracker should next ask the provider about this clip's task.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # Status checks that failed in a row (the tracker backs off, then gives up at the deadline).
    poll_failures = models.PositiveIntegerField(default=0)
    # A tracker holds this lease while it polls, so that two trackers (or a tracker and
    # the safety net) never poll the same clip side by side.
    tracking_lease_until = models.DateTimeField(null=True, blank=True)
    # Who is submitting: claimed at, and a lease the submitter renews while its call runs.
    # The safety net judges a submission by this lease, never by when the clip was made.
    submit_claimed_at = models.DateTimeField(null=True, blank=True)
    submit_lease_until = models.DateTimeField(null=True, blank=True)
    # Seam and drift scores measured on the mirrored video (videos/seams.py): against the
    # previous part of the main line and against the chain's first part.
    quality = models.JSONField(default=dict, blank=True)
    # Downloads of the provider's video that failed (bounded: then the clip says why).
    mirror_attempts = models.PositiveSmallIntegerField(default=0)

    objects = ClipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0, progress__lte=100), name="progress_is_a_percentage"
            ),
            # A provider task belongs to exactly one clip: the guard against double-recording.
            models.UniqueConstraint(
                fields=["provider_account", "provider_task_id"],
                condition=~Q(provider_task_id=""),
                name="one_clip_per_provider_task",
            ),
            models.UniqueConstraint(
                fields=["parent"], condition=Q(is_main_line=True), name="one_main_take_per_parent"
            ),
        ]
        indexes = [
            # The project page: a project's clips, newest first.
            models.Index(fields=["project", "-created_at"], name="clip_project_newest"),
            # The safety-net schedule: clips whose provider task is still running.
            models.Index(fields=["status", "tracking_lease_until"], name="clip_status_lease"),
            # The tracker's round: running clips whose next poll is due.
            models.Index(fields=["status", "next_poll_at"], name="clip_status_next_poll"),
            # Free slots per account: clips submitting or running at one account.
            models.Index(fields=["provider_account", "status"], name="clip_account_status"),
            # Read on every view of a project page, from the index alone instead of from
            # every clip's row: the accounts and creators its filters offer, and its chains
            # (roots that clips of the project continue).
            models.Index(fields=["project", "provider_account"], name="clip_project_account"),
            models.Index(fields=["project", "created_by"], name="clip_project_creator"),
            models.Index(fields=["project", "root", "kind"], name="clip_project_root_kind"),
            # Whether any clip of a project is in flight, on every view and poll of its page.
            models.Index(fields=["project", "status"], name="clip_project_status"),
        ]

    def __str__(self) -> str:
        return f"Clip {self.pk} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("clip", args=[self.pk])

    @property
    def is_final(self) -> bool:
        return self.status in ClipStatus.final()

    @property
    def has_video(self) -> bool:
        return bool(self.file_key)

    @property
    def elapsed_seconds(self) -> float | None:
        """Time since the provider took the task (or since it finished, when it has)."""
        if self.submitted_at is None:
            return None
        end = self.provider_done_at or self.finished_at or timezone.now()
        return (end - self.submitted_at).total_seconds()

    @property
    def saving_is_slow(self) -> bool:
        """Mirroring for longer than a worker ever takes to start: probably no worker runs."""
        done = self.provider_done_at
        return done is not None and timezone.now() - done > timedelta(minutes=3)

    @property
    def requested_duration(self) -> int | None:
        value = self.params.get("duration")
        return int(value) if value is not None else None

    # --- state changes -------------------------------------------------------------
    # Each transition is a conditional UPDATE on the current status, so two workers that
    # race on the same clip cannot both win: the loser sees 0 rows and stands down.

    def _transition(self, from_statuses: set[str] | frozenset[str], **changes) -> bool:
        # A provider's words may echo the key it was sent: never saved as they came.
        for name in ("provider_message", "error_message"):
            if changes.get(name):
                changes[name] = redact(changes[name], self.provider_account.secrets())
        updated = Clip.objects.filter(pk=self.pk, status__in=from_statuses).update(**changes)
        if updated:
            for name, value in changes.items():
                setattr(self, name, value)
        return bool(updated)

    def claim_submission(self, *, lease_seconds: float) -> bool:
        """Take the right to call the provider. Only one caller ever gets True.

        The lease is renewed while the call runs (``renew_submit_lease``); only when it has
        lapsed may the safety net conclude that the submitter died.
        """
        now = timezone.now()
        return self._transition(
            {ClipStatus.QUEUED},
            status=ClipStatus.SUBMITTING,
            phase="",
            submit_claimed_at=now,
            submit_lease_until=now + timedelta(seconds=lease_seconds),
        )

    def renew_submit_lease(self, *, lease_seconds: float) -> bool:
        until = timezone.now() + timedelta(seconds=lease_seconds)
        return self._transition({ClipStatus.SUBMITTING}, submit_lease_until=until)

    def mark_submitted(self, task_id: str, *, estimate_seconds: int | None = None) -> bool:
        # Saved the moment the provider answers: a crash after this line can never lead to
        # a second paid submission, and the tracker can always find the task again. An
        # answer that arrives after the safety net gave the clip up as unknown still counts.
        now = timezone.now()
        return self._transition(
            {ClipStatus.SUBMITTING, ClipStatus.UNKNOWN},
            status=ClipStatus.RUNNING,
            provider_task_id=task_id,
            submitted_at=self.submitted_at or now,
            provider_estimate_seconds=estimate_seconds,
            phase="Submitted",
            submit_lease_until=None,
            error_code="",
            error_message="",
            provider_message="",
            next_poll_at=now + timedelta(seconds=settings.TRACK_POLL_SECONDS),
            poll_failures=0,
            tracking_lease_until=None,
        )

    def mark_outcome_unknown(self, *, message: str, provider_message: str = "") -> bool:
        """The submission may have reached the provider, but no answer came back."""
        return self._transition(
            {ClipStatus.SUBMITTING},
            status=ClipStatus.UNKNOWN,
            phase="",
            error_code="outcome_unknown",
            error_message=message,
            provider_message=provider_message,
            submit_lease_until=None,
        )

    def mark_not_sent(self, *, message: str) -> bool:
        """A person checked the provider's dashboard: the unknown submission never arrived."""
        return self._transition(
            {ClipStatus.UNKNOWN},
            status=ClipStatus.FAILED,
            error_code="not_sent",
            error_message=message,
            finished_at=timezone.now(),
        )

    def mark_submit_failed(self, *, code: str, message: str, provider_message: str = "") -> bool:
        return self._transition(
            {ClipStatus.SUBMITTING},
            status=ClipStatus.FAILED,
            error_code=code,
            error_message=message,
            provider_message=provider_message,
            finished_at=timezone.now(),
            submit_lease_until=None,
        )

    def record_progress(
        self,
        *,
        progress: int,
        phase: str,
        estimate_seconds: int | None = None,
        next_poll_at: datetime | None = None,
    ) -> None:
        changes: dict = {
            "progress": max(self.progress, min(100, max(0, progress))),
            "phase": phase,
            "last_polled_at": timezone.now(),
            "poll_failures": 0,
            "tracking_lease_until": None,
        }
        if estimate_seconds is not None:
            changes["provider_estimate_seconds"] = estimate_seconds
        if next_poll_at is not None:
            changes["next_poll_at"] = next_poll_at
        self._transition({ClipStatus.RUNNING}, **changes)

    def record_poll_failure(self, *, next_poll_at: datetime) -> None:
        """A status check failed (the task is paid for and keeps running): ask again later."""
        Clip.objects.filter(pk=self.pk, status=ClipStatus.RUNNING).update(
            poll_failures=models.F("poll_failures") + 1,
            next_poll_at=next_poll_at,
            tracking_lease_until=None,
        )
        self.poll_failures += 1
        self.next_poll_at = next_poll_at

    def schedule_poll(self, at: datetime) -> None:
        """Hand the clip back to the tracker, due at ``at``, without polling it now."""
        self._transition({ClipStatus.RUNNING}, next_poll_at=at, tracking_lease_until=None)

    def mark_provider_done(
        self,
        *,
        result_url: str,
        expires_at: datetime | None,
        cost: Decimal | None,
        partial: bool = False,
        error_code: str = "",
        error_message: str = "",
        provider_message: str = "",
    ) -> bool:
        return self._transition(
            {ClipStatus.RUNNING},
            status=ClipStatus.MIRRORING,
            progress=100,
            phase="Saving the video" if not partial else "Saving the partial video",
            result_url=result_url,
            result_expires_at=expires_at,
            # The mirror step queued now holds the clip; the safety net waits this long.
            tracking_lease_until=timezone.now() + WORK_LEASE,
            cost=cost,
            provider_done_at=timezone.now(),
            last_polled_at=timezone.now(),
            # A partial result keeps its explanation so the page can offer what comes next.
            error_code=error_code,
            error_message=error_message,
            provider_message=provider_message,
            params={**self.params, "partial": partial},
        )

    def mark_failed(self, *, code: str, message: str, provider_message: str = "") -> bool:
        return self._transition(
            {ClipStatus.RUNNING, ClipStatus.MIRRORING},
            status=ClipStatus.FAILED,
            error_code=code,
            error_message=message,
            provider_message=provider_message,
            finished_at=timezone.now(),
            tracking_lease_until=None,
        )

    def mark_expired(self, *, message: str, provider_message: str = "") -> bool:
        return self._transition(
            {ClipStatus.RUNNING, ClipStatus.MIRRORING},
            status=ClipStatus.EXPIRED,
            error_code="expired",
            error_message=message,
            provider_message=provider_message,
            finished_at=timezone.now(),
            tracking_lease_until=None,
        )

    def mark_cancelled(self, *, message: str) -> bool:
        return self._transition(
            {ClipStatus.RUNNING, ClipStatus.UNKNOWN},
            status=ClipStatus.CANCELLED,
            error_code="cancelled",
            error_message=message,
            finished_at=timezone.now(),
            tracking_lease_until=None,
        )

    def mark_mirrored(
        self,
        *,
        file_key: str,
        file_size: int,
        sha256: str,
        duration_seconds: float | None,
        width: int | None,
        height: int | None,
    ) -> bool:
        final = ClipStatus.PARTIAL if self.params.get("partial") else ClipStatus.READY
        return self._transition(
            {ClipStatus.MIRRORING},
            status=final,
            phase="",
            file_key=file_key,
            file_size=file_size,
            sha256=sha256,
            duration_seconds=duration_seconds,
            width=width,
            height=height,
            finished_at=timezone.now(),
            tracking_lease_until=None,
        )

    def renew_work_lease(self, *, status: str) -> bool:
        """A queue step still working on this clip: the safety net leaves it alone."""
        until = timezone.now() + RUNNING_LEASE
        return bool(
            Clip.objects.filter(pk=self.pk, status=status).update(tracking_lease_until=until)
        )

    def set_poster(self, poster_key: str) -> None:
        self.poster_key = poster_key
        self.save(update_fields=["poster_key"])

    # --- chains --------------------------------------------------------------------------

    def timeline_range(self) -> tuple[float, float]:
        """The new footage in this clip's own video, as (start, end) seconds.

        A provider that was expected to return the whole extended video but sent only the
        new part gives a video no longer than the source: then all of it is new. One expected
        to send the new part (kie's continuation, apimart's raw remix) that sent the source
        and the new part stitched together gives a video longer than the source by at least
        half a hop: then the new footage starts where the source ended.
        """
        end = self.duration_seconds or 0.0
        start = max(0.0, self.new_from_seconds)
        source = float(self.params.get("source_seconds") or 0)
        added = float(self.params.get("duration") or 0)
        stitched = source and added and end >= source + added / 2
        if start == 0 and self.kind == ClipKind.EXTEND and stitched:
            start = source
        return (start if start < end else 0.0), end

    def kept_range(self) -> tuple[float, float]:
        """What a chain plays and exports of this clip, as (start, end) seconds of its video:
        its new footage between the in and out points set on the timeline (``trim_in`` and
        ``trim_out`` count from the first new frame; None keeps that end as it is)."""
        start, end = self.timeline_range()
        cut_in = start + max(0.0, self.trim_in or 0.0)
        cut_out = end if self.trim_out is None else min(end, start + self.trim_out)
        return (cut_in, cut_out) if cut_out > cut_in else (start, end)

    def chain_root(self) -> Clip:
        if self.root_id is None:
            return self
        return Clip.objects.select_related("provider_account").get(pk=self.root_id)

    def make_main_take(self) -> None:
        """Make this take the one that continues its parent's main line (one per parent)."""
        with transaction.atomic():
            # Cleared first: the unique constraint allows one main take per parent at a time.
            Clip.objects.filter(parent_id=self.parent_id, is_main_line=True).exclude(
                pk=self.pk
            ).update(is_main_line=False)
            Clip.objects.filter(pk=self.pk).update(is_main_line=True)
        self.is_main_line = True


class TakeGroup(models.Model):
    """The takes of one request, compared side by side; the team stars one as the pick."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="take_groups")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    pick = models.ForeignKey(
        "Clip", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Takes {self.pk}"


class FrameRole(models.TextChoices):
    FIRST = "first", "First frame"
    LAST = "last", "Last frame"
    REFERENCE = "reference", "Reference"


def frame_upload_to(instance: Frame, filename: str) -> str:
    return f"frames/{instance.clip.project_id}/{instance.clip_id}/{instance.role}-{filename}"


class Frame(models.Model):
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="frames")
    role = models.CharField(max_length=16, choices=FrameRole.choices)
    position = models.PositiveSmallIntegerField(default=0)
    image = models.FileField(upload_to=frame_upload_to, max_length=300, blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    content_type = models.CharField(max_length=40, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clip", "role", "position"], name="one_frame_per_slot"),
            models.CheckConstraint(
                condition=~Q(image="") | ~Q(source_url=""), name="frame_has_an_image"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} of clip {self.clip_id}"


class ModelPrice(models.Model):
    """The price table estimates are made from; admins edit it."""

    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    model = models.CharField(max_length=80)
    per_clip = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    per_second = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "model"], name="one_price_per_model"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.model}"


class LedgerEntry(models.Model):
    """One paid submission: what it was expected to cost and what it did cost."""

    clip = models.OneToOneField(Clip, on_delete=models.PROTECT, related_name="ledger_entry")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="ledger")
    provider_account = models.ForeignKey(
        ProviderAccount, on_delete=models.PROTECT, related_name="ledger"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    model = models.CharField(max_length=80)
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    actual_cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    # True when the provider reported no cost and the estimate stands in for it.
    actual_is_estimate = models.BooleanField(default=False)
    # The provider charged although the clip failed.
    failed_but_charged = models.BooleanField(default=False)
    submitted_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes = [
            # Usage pages: a project's spending by day.
            models.Index(fields=["project", "submitted_at"], name="ledger_project_day"),
        ]

    def __str__(self) -> str:
        return f"Ledger entry for clip {self.clip_id}"

    @property
    def amount(self):
        return self.actual_cost if self.actual_cost is not None else self.estimated_cost


class AuditEvent(models.Model):
    """Who added, changed, rotated or disabled a key, and who spent what."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    action = models.CharField(max_length=40)
    project = models.ForeignKey(Project, on_delete=models.SET_NULL, null=True, blank=True)
    target = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The audit page: newest first.
            models.Index(fields=["-created_at"], name="audit_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target}"


class CommentScope(models.TextChoices):
    CLIP = "clip", "Clip"
    CHAIN = "chain", "Chain"


class Comment(models.Model):
    """A reviewer's note at a timecode, on a clip or on a whole chain (clip = chain root)."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="comments")
    scope = models.CharField(max_length=8, choices=CommentScope.choices, default=CommentScope.CLIP)
    reply_to = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # A guest who came through a review link (then author is empty).
    review_link = models.ForeignKey(
        "ReviewLink", on_delete=models.SET_NULL, null=True, blank=True, related_name="comments"
    )
    guest_name = models.CharField(max_length=80, blank=True)
    body = models.TextField(max_length=4000)
    timecode = models.FloatField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(timecode__isnull=True) | Q(timecode__gte=0),
                name="timecode_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"Comment {self.pk} on clip {self.clip_id}"

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None

    def resolve(self, user) -> None:
        self.resolved_at = timezone.now()
        self.resolved_by = user
        self.save(update_fields=["resolved_at", "resolved_by"])

    def reopen(self) -> None:
        self.resolved_at = None
        self.resolved_by = None
        self.save(update_fields=["resolved_at", "resolved_by"])


class Verdict(models.TextChoices):
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes", "Changes requested"


class Decision(models.Model):
    """An approval or a request for changes, on a clip or a chain; a user's latest counts."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="decisions")
    scope = models.CharField(max_length=8, choices=CommentScope.choices, default=CommentScope.CLIP)
    # A member, or a guest who came through a review link (then user is empty).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    review_link = models.ForeignKey(
        "ReviewLink", on_delete=models.SET_NULL, null=True, blank=True, related_name="decisions"
    )
    guest_name = models.CharField(max_length=80, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    note = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.get_verdict_display()} by {self.user}"


class ReviewLink(models.Model):
    """A link that lets someone without an account review one chain or clip, until it ends."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_links")
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="review_links")
    scope = models.CharField(max_length=8, choices=CommentScope.choices, default=CommentScope.CHAIN)
    # Stored hashed (like a password): the link itself carries the secret.
    token_hash = models.CharField(max_length=128, unique=True)
    passcode_hash = models.CharField(max_length=128, blank=True)
    label = models.CharField(max_length=120, blank=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.label or f"Review link {self.pk}"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class Activity(models.Model):
    """The project's feed: generations, extensions, comments and decisions."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="activities")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    verb = models.CharField(max_length=40)
    clip = models.ForeignKey(
        Clip, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    summary = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "activities"
        indexes = [
            # The project feed: newest first.
            models.Index(fields=["project", "-created_at"], name="activity_project_newest"),
        ]

    def __str__(self) -> str:
        return self.summary


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Stitching"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ChainExport(models.Model):
    """The main line of a chain stitched into one MP4 (PyAV), stored like a clip's video."""

    root = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="exports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    segments = models.JSONField(default=list, help_text="Clip ids of the main line, in order.")
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    progress = models.PositiveSmallIntegerField(default=0)
    file_key = models.CharField(max_length=300, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    stream_copied = models.BooleanField(default=False)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Which run holds the export: each claim takes the next number, and only that run's
    # progress and failure are recorded (a stalled run taken over may still be running).
    attempt = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Export {self.pk} of chain {self.root_id}"

    # Longer than the queue's task timeout (600 s): an export still unfinished after this
    # lost its worker, so it may be stitched again and the page offers a new export.
    STALLED_AFTER = timedelta(minutes=11)

    @property
    def is_final(self) -> bool:
        return self.status in {ExportStatus.READY, ExportStatus.FAILED}

    @property
    def is_active(self) -> bool:
        return not self.is_final and self.created_at > timezone.now() - self.STALLED_AFTER

    def claim(self) -> bool:
        """Take the right to stitch this export. Only one caller ever gets True for each
        attempt number: a compare-and-set on ``attempt``."""
        current = ChainExport.objects.filter(pk=self.pk).values_list("attempt", flat=True).first()
        if current is None:
            return False
        stalled = Q(status=ExportStatus.RUNNING, created_at__lt=timezone.now() - self.STALLED_AFTER)
        updated = (
            ChainExport.objects.filter(pk=self.pk, attempt=current)
            .filter(Q(status=ExportStatus.QUEUED) | stalled)
            .update(status=ExportStatus.RUNNING, progress=0, attempt=current + 1)
        )
        if updated:
            self.status, self.progress, self.attempt = ExportStatus.RUNNING, 0, current + 1
        return bool(updated)

    def _mine(self):
        return ChainExport.objects.filter(
            pk=self.pk, status=ExportStatus.RUNNING, attempt=self.attempt
        )

    def record_progress(self, progress: int) -> None:
        self.progress = max(0, min(99, progress))
        self._mine().update(progress=self.progress)

    def mark_ready(
        self,
        *,
        file_key: str,
        file_size: int,
        sha256: str,
        duration_seconds: float,
        stream_copied: bool,
    ) -> bool:
        """Record the stitched file. The first run to finish wins, even one that was taken
        over; False when another run recorded its file first: the caller's file is then
        not the export's and must be deleted."""
        fields = {
            "status": ExportStatus.READY,
            "progress": 100,
            "file_key": file_key,
            "file_size": file_size,
            "sha256": sha256,
            "duration_seconds": duration_seconds,
            "stream_copied": stream_copied,
            "finished_at": timezone.now(),
        }
        won = (
            ChainExport.objects.filter(pk=self.pk)
            .exclude(status=ExportStatus.READY)
            .update(**fields)
        )
        if won:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(won)

    def mark_failed(self, message: str) -> bool:
        """Record this run's failure, unless another run holds the export (it may still
        finish) or it is finished."""
        finished_at = timezone.now()
        failed = self._mine().update(
            status=ExportStatus.FAILED, error_message=message, finished_at=finished_at
        )
        if failed:
            self.status, self.error_message, self.finished_at = (
                ExportStatus.FAILED,
                message,
                finished_at,
            )
        return bool(failed)


class WorkerHeartbeat(models.Model):
    """A tracker or worker process says it is alive; the pages warn when none is."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20)
    seen_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def beat(cls, *, name: str, kind: str) -> None:
        cls.objects.update_or_create(name=name, defaults={"kind": kind, "seen_at": timezone.now()})

    @classmethod
    def alive(cls, kind: str) -> bool:
        """Whether a process of this kind beat within HEARTBEAT_WITHIN (asked on every
        redraw of a queued or running clip's status, so compiled once)."""
        return SEEN_LATELY.first(kind=kind, converted=False) is not None


# Trackers beat every 5 s: a process silent for this long is taken for gone.
HEARTBEAT_WITHIN = timedelta(seconds=30)
# The database's clock, as the beats are written with the web server's: both are UTC.
SEEN_LATELY = CompiledQuery(
    lambda kind: WorkerHeartbeat.objects.filter(
        kind=kind,
        seen_at__gte=ExpressionWrapper(
            Now() - Value(HEARTBEAT_WITHIN), output_field=models.DateTimeField()
        ),
    ).values_list("pk")[:1],
    kind=str,
)
