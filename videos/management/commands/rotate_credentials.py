"""Re-encrypt every stored credential under the newest key in FERNET_KEYS.

Rotation: put a new key first in FERNET_KEYS (keep the old ones after it), run this
command, then remove the old keys. The tokens are rotated as they are stored, so no
plaintext is held by the command; MultiFernet.rotate keeps each token's original time.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.db.models.functions import Cast

from videos import audit, crypto
from videos.models import ProviderAccount

FIELDS = ("credential", "secret_key")


class Command(BaseCommand):
    help = "Re-encrypt every provider credential under the newest key in FERNET_KEYS."

    def handle(self, *args, **options) -> None:
        # Cast to a plain text column: the raw Fernet tokens, not EncryptedTextField's
        # decrypted values.
        raw = {f"raw_{name}": Cast(name, models.TextField()) for name in FIELDS}
        count = 0
        with transaction.atomic():
            rows = (
                ProviderAccount.objects.select_for_update()
                .annotate(**raw)
                .order_by("pk")
                .values_list("pk", *raw)
            )
            for pk, *tokens in rows:
                changes = {}
                for name, token in zip(FIELDS, tokens, strict=True):
                    if not token:
                        continue
                    try:
                        rotated = crypto.rotate(token)
                    except InvalidToken:
                        raise CommandError(
                            f"Provider account {pk}: its {name} cannot be decrypted with any "
                            "key in FERNET_KEYS. Put the key it was encrypted with back in "
                            "the list and run this again; nothing was changed."
                        ) from None
                    # A Value with a plain TextField is written as it is, not encrypted again.
                    changes[name] = models.Value(rotated, output_field=models.TextField())
                if changes:
                    ProviderAccount.objects.filter(pk=pk).update(**changes)
                    count += 1
            audit.record(
                actor=None,
                action=audit.Action.KEYS_REENCRYPTED,
                target=f"{count} provider account(s)",
                detail={"accounts": count},
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted the credentials of {count} provider account(s) under the newest "
                "key. Older keys can now be removed from FERNET_KEYS."
            )
        )
