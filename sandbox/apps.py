from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """Local twins of the providers' APIs. Stands in for other companies' servers, so it
    never imports the studio's own models."""

    name = "sandbox"
    verbose_name = "Provider sandbox"
    default_auto_field = "django.db.models.BigAutoField"
