"""The provider twins, each under /sandbox/<provider>/ followed by that provider's own paths."""

from django.urls import include, path

from sandbox import apimart

app_name = "sandbox"

urlpatterns = [
    path("apimart/", include(apimart.urlpatterns)),
]
