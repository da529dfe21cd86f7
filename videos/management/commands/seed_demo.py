"""Create (or refresh) the local demo: an admin login, a demo project, sandbox accounts."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from videos.models import Membership, Project, ProviderAccount, ProviderKind, Role

SANDBOX_ACCOUNTS = [
    (ProviderKind.APIMART, "apimart (sandbox)", "apimart"),
    (ProviderKind.NEWAPI, "NewAPI 15 s (sandbox)", "newapi"),
    (ProviderKind.KIE, "kie.ai (sandbox)", "kie"),
    (ProviderKind.KLING, "Kling (sandbox)", "kling"),
]


def sandbox_credentials(kind: str) -> tuple[str, str]:
    """Keys the twins accept: any bearer key; for Kling an access key whose secret follows
    the twin's rule; for kie, the webhook key its callbacks are signed with."""
    if kind == ProviderKind.KLING:
        access_key = f"AK{secrets.token_hex(8)}"
        return access_key, f"sandbox-secret-{access_key}"
    if kind == ProviderKind.KIE:
        return f"sk-sandbox-kie-{secrets.token_hex(8)}", settings.SANDBOX_KIE_WEBHOOK_KEY
    return f"sk-sandbox-{kind}-{secrets.token_hex(8)}", ""


class Command(BaseCommand):
    help = "Seed a demo admin, project and sandbox provider accounts. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where this studio is served; sandbox accounts point under it.",
        )

    def handle(self, *args, base_url: str, **options):
        if not settings.SANDBOX_ENABLED:
            raise CommandError(
                "The demo uses the provider sandbox, which is off in these settings."
            )
        base_url = base_url.rstrip("/")
        password_file = settings.DATA_DIR / "demo-login.txt"
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser("admin", "admin@example.com", password)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        password = password_file.read_text().strip() if password_file.exists() else "(unchanged)"
        project = Project.objects.filter(name="Demo project").first()
        if project is None:
            project = Project.objects.create(name="Demo project", created_by=user)
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.ADMIN})
        for kind, label, path in SANDBOX_ACCOUNTS:
            account = ProviderAccount.objects.filter(label=label).first()
            if account is None:
                key, secret = sandbox_credentials(kind)
                account = ProviderAccount(kind=kind, label=label, credential=key, secret_key=secret)
            # The port can change between runs; keep the sandbox URL pointing at this server.
            account.base_url = f"{base_url}/sandbox/{path}"
            account.save()
            # Offered to the demo project by choice, as staff would for a real account.
            account.projects.add(project)
        self.stdout.write(f"login: admin / {password}")
