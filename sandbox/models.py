from django.db import models
from django.utils import timezone


class SandboxTask(models.Model):
    """A task as a provider would hold it. Its status is derived from the time elapsed."""

    provider = models.CharField(max_length=16)
    task_id = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=24, default="generate")
    api_key_hint = models.CharField(max_length=8, blank=True)
    request = models.JSONField(default=dict)
    model = models.CharField(max_length=80, blank=True)
    prompt = models.TextField(blank=True)
    seconds = models.FloatField(default=8)
    width = models.PositiveIntegerField(default=1280)
    height = models.PositiveIntegerField(default=720)
    # For continuations: the task whose video this one continues, and where its counter
    # starts, so an extension visibly carries on from the source.
    source = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    start_at = models.FloatField(default=0)
    run_seconds = models.FloatField(default=6)
    fault = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.provider} {self.task_id}"

    @property
    def elapsed(self) -> float:
        return (timezone.now() - self.created_at).total_seconds()

    @property
    def fraction_done(self) -> float:
        if self.run_seconds <= 0:
            return 1.0
        return min(1.0, self.elapsed / self.run_seconds)

    @property
    def finished_at(self):
        return self.created_at + timezone.timedelta(seconds=self.run_seconds)
