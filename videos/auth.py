"""The signed-in user of each request, read with SQL made once.

``request.user`` is read on every page (the guest boundary and the views ask who is
signed in). Django's ModelBackend builds that lookup with the ORM each time, about 250 µs
of Python per request in bench/profile_pages.py; this backend runs the same query compiled
once and is otherwise Django's ModelBackend (passwords, permissions, inactive users).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError

from videos.compiled import CompiledQuery

USER_BY_ID = CompiledQuery(
    lambda user_id: get_user_model()._default_manager.filter(pk=user_id), user_id=int
)


class StudioModelBackend(ModelBackend):
    def get_user(self, user_id):
        try:
            user_id = get_user_model()._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        user = USER_BY_ID.instance(user_id=user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
