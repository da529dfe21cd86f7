"""The provider twins, each under /sandbox/<provider>/ followed by that provider's own paths."""

from django.urls import include, path

from sandbox import apimart, kie, kling, newapi

app_name = "sandbox"

urlpatterns = [
    path("apimart/", include(apimart.urlpatterns)),
    path("kie/", include(kie.urlpatterns)),
    path("kling/", include(kling.urlpatterns)),
    path("newapi/", include(newapi.urlpatterns)),
]
