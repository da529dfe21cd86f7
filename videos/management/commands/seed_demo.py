"""Create (or refresh) the local demo: an admin login, a demo project, sandbox accounts."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from videos.models import Membership, Project, ProviderAccount, ProviderKind, Role

SANDBOX_ACCOUNTS = [
    (ProviderKind.APIMART, "apimart (sandbox)", "apimart"),
]


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
            account = ProviderAccount.objects.filter(label=label).first() or ProviderAccount(
                kind=kind, label=label, credential=f"sk-sandbox-{path}-{secrets.token_hex(8)}"
            )
            # The port can change between runs; keep the sandbox URL pointing at this server.
            account.base_url = f"{base_url}/sandbox/{path}"
            account.save()
        self.stdout.write(f"login: admin / {password}")
