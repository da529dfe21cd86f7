from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from videos.crypto import EncryptedTextField


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
    name = models.CharField(max_length=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProjectQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("project", args=[self.pk])

    def role_of(self, user) -> str | None:
        membership = self.memberships.filter(user=user).only("role").first()
        return membership.role if membership else None


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
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProviderAccountQuerySet.as_manager()

    def __str__(self) -> str:
        return self.label

    def save(self, *args, **kwargs) -> None:
        self.credential_last4 = (self.credential or "")[-4:]
        super().save(*args, **kwargs)


class ClipStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
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
    def tracked(cls) -> frozenset[str]:
        """States in which a provider task exists and has not finished yet."""
        return frozenset({cls.RUNNING})


class ClipQuerySet(models.QuerySet["Clip"]):
    def for_user(self, user) -> ClipQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(project__memberships__user=user)

    def in_flight(self) -> ClipQuerySet:
        return self.exclude(status__in=ClipStatus.final())


class Clip(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="clips")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="clips"
    )
    # Extension chains: a clip made by extending another points at it.
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
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
    cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    provider_done_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # A tracking task holds this lease while it polls, so that the safety-net schedule
    # and a re-delivered task never poll the same clip side by side.
    tracking_lease_until = models.DateTimeField(null=True, blank=True)

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
        ]
        indexes = [
            # The project page: a project's clips, newest first.
            models.Index(fields=["project", "-created_at"], name="clip_project_newest"),
            # The safety-net schedule: clips whose provider task is still running.
            models.Index(fields=["status", "tracking_lease_until"], name="clip_status_lease"),
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
    def requested_duration(self) -> int | None:
        value = self.params.get("duration")
        return int(value) if value is not None else None

    # --- state changes -------------------------------------------------------------
    # Each transition is a conditional UPDATE on the current status, so two workers that
    # race on the same clip cannot both win: the loser sees 0 rows and stands down.

    def _transition(self, from_statuses: set[str] | frozenset[str], **changes) -> bool:
        updated = Clip.objects.filter(pk=self.pk, status__in=from_statuses).update(**changes)
        if updated:
            for name, value in changes.items():
                setattr(self, name, value)
        return bool(updated)

    def claim_submission(self) -> bool:
        """Take the right to call the provider. Only one caller ever gets True."""
        return self._transition({ClipStatus.QUEUED}, status=ClipStatus.SUBMITTING, phase="")

    def mark_submitted(self, task_id: str, *, estimate_seconds: int | None = None) -> None:
        # Saved the moment the provider answers: a crash after this line can never lead to
        # a second paid submission, and the tracker can always find the task again.
        self._transition(
            {ClipStatus.SUBMITTING},
            status=ClipStatus.RUNNING,
            provider_task_id=task_id,
            submitted_at=timezone.now(),
            provider_estimate_seconds=estimate_seconds,
            phase="Submitted",
        )

    def mark_submit_failed(self, *, code: str, message: str, provider_message: str = "") -> None:
        self._transition(
            {ClipStatus.SUBMITTING},
            status=ClipStatus.FAILED,
            error_code=code,
            error_message=message,
            provider_message=provider_message,
            finished_at=timezone.now(),
        )

    def record_progress(
        self, *, progress: int, phase: str, estimate_seconds: int | None = None
    ) -> None:
        changes: dict = {
            "progress": max(self.progress, min(100, max(0, progress))),
            "phase": phase,
            "last_polled_at": timezone.now(),
        }
        if estimate_seconds is not None:
            changes["provider_estimate_seconds"] = estimate_seconds
        self._transition({ClipStatus.RUNNING}, **changes)

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
            {ClipStatus.RUNNING},
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

    def set_poster(self, poster_key: str) -> None:
        self.poster_key = poster_key
        self.save(update_fields=["poster_key"])

    def claim_tracking(self, seconds: float) -> bool:
        now = timezone.now()
        updated = (
            Clip.objects.filter(pk=self.pk, status=ClipStatus.RUNNING)
            .filter(Q(tracking_lease_until__isnull=True) | Q(tracking_lease_until__lt=now))
            .update(tracking_lease_until=now + timedelta(seconds=seconds))
        )
        return bool(updated)

    def release_tracking(self) -> None:
        Clip.objects.filter(pk=self.pk).update(tracking_lease_until=None)
        self.tracking_lease_until = None


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
