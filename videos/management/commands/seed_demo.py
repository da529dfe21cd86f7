"""Create (or refresh) the local demo: an admin login, a demo project, sandbox accounts."""

import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from videos import providers
from videos.models import Membership, ModelPrice, Project, ProviderAccount, ProviderKind, Role

SANDBOX_ACCOUNTS = [
    (ProviderKind.APIMART, "apimart (sandbox)", "apimart"),
    (ProviderKind.NEWAPI, "NewAPI 15 s (sandbox)", "newapi"),
    (ProviderKind.KIE, "kie.ai (sandbox)", "kie"),
    (ProviderKind.KLING, "Kling (sandbox)", "kling"),
]


# Demo prices in USD, near what the providers list (check your own plan before relying on
# them): (per clip, per second). Admins change them under Admin → Model prices; seeding
# never overwrites a price that is already there.
DEMO_PRICES: dict[tuple[str, str], tuple[str, str]] = {
    (ProviderKind.APIMART, "veo3.1-fast-official"): ("0", "0.10"),
    (ProviderKind.APIMART, "veo3.1-quality-official"): ("0", "0.25"),
    (ProviderKind.NEWAPI, "veo_3_1-fast-remix"): ("0.60", "0"),
    (ProviderKind.NEWAPI, "veo_3_1-fast-fl-remix"): ("0.60", "0"),
    (ProviderKind.NEWAPI, "veo_3_1-fast-hd-remix"): ("0.80", "0"),
    (ProviderKind.NEWAPI, "veo_3_1-fast-fl-hd-remix"): ("0.80", "0"),
    (ProviderKind.NEWAPI, "veo_3_1-hd-remix"): ("2.00", "0"),
    (ProviderKind.NEWAPI, "veo_3_1-hd-fl-remix"): ("2.00", "0"),
    (ProviderKind.NEWAPI, "veo_3_1-remix"): ("1.50", "0"),
    (ProviderKind.NEWAPI, "veo_3_1-fl-remix"): ("1.50", "0"),
    # kie: 60 and 250 credits a video at $0.005 a credit.
    (ProviderKind.KIE, "veo3_fast"): ("0.30", "0"),
    (ProviderKind.KIE, "veo3"): ("1.25", "0"),
    # Kling: 1 unit ($0.14) per 5 s in standard mode; the 2.1 master model 10 units.
    (ProviderKind.KLING, "kling-v1"): ("0", "0.028"),
    (ProviderKind.KLING, "kling-v1-5"): ("0", "0.028"),
    (ProviderKind.KLING, "kling-v1-6"): ("0", "0.028"),
    (ProviderKind.KLING, "kling-v2-1-master"): ("0", "0.28"),
}
# What one unit the sandbox reports costs, so its reported costs show in dollars.
DEMO_UNIT_PRICES = {ProviderKind.KIE: Decimal("0.005"), ProviderKind.KLING: Decimal("0.14")}


def seed_prices() -> int:
    """A price for every model the demo's sandbox accounts offer; returns how many were added."""
    added = 0
    for (kind, model), (per_clip, per_second) in DEMO_PRICES.items():
        if providers.model_spec(kind, model) is None:
            continue
        _, created = ModelPrice.objects.get_or_create(
            kind=kind,
            model=model,
            defaults={"per_clip": Decimal(per_clip), "per_second": Decimal(per_second)},
        )
        added += created
    return added


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
                account = ProviderAccount(
                    kind=kind,
                    label=label,
                    credential=key,
                    secret_key=secret,
                    unit_price=DEMO_UNIT_PRICES.get(kind),
                )
            # The port can change between runs; keep the sandbox URL pointing at this server.
            account.base_url = f"{base_url}/sandbox/{path}"
            account.save()
            # Offered to the demo project by choice, as staff would for a real account.
            account.projects.add(project)
        seed_prices()
        self.stdout.write(f"login: admin / {password}")
