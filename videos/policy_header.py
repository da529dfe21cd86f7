"""The Content-Security-Policy header, built once.

django-csp builds the policy afresh for every answer (about 60 µs: an eighth of a clip
poll's time in bench/profile_pages.py), although the studio's is the same for all of them:
no view changes it and no template asks for a nonce. This middleware keeps django-csp's
answer for the plain case and reuses it. An answer that carries its own policy
(django-csp's decorators, or a view that sets the header itself) or a request that used a
nonce goes through django-csp unchanged.
"""

from __future__ import annotations

from functools import cached_property

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

# What django-csp's decorators set on an answer to change or drop its policy.
PER_ANSWER = (
    "_csp_exempt",
    "_csp_exempt_ro",
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)


class CSPMiddleware(DjangoCSPMiddleware):
    @cached_property
    def headers(self) -> tuple[tuple[str, str], ...]:
        built = (
            (HEADER, build_policy()),
            (HEADER_REPORT_ONLY, build_policy(report_only=True)),
        )
        return tuple((name, policy) for name, policy in built if policy)

    @cached_property
    def plain_case_possible(self) -> bool:
        # Excluded URL prefixes make the header depend on the path: leave those to django-csp.
        return not any(
            (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES")
            for name in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY")
        )

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        plain = (
            self.plain_case_possible
            and not settings.DEBUG
            and getattr(request, "_csp_nonce", None) is None
            and not any(hasattr(response, name) for name in PER_ANSWER)
        )
        if not plain:
            return super().process_response(request, response)
        for name, policy in self.headers:
            if name not in response:
                response[name] = policy
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
