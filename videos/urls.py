from django.urls import path

from videos import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/", views.projects, name="projects"),
    path("projects/<int:pk>/", views.project_detail, name="project"),
    path("projects/<int:pk>/clips/new/", views.clip_new, name="clip-new"),
    path("clips/<int:pk>/", views.clip_detail, name="clip"),
    path("clips/<int:pk>/video.mp4", views.clip_video, name="clip-video"),
    path("clips/<int:pk>/poster.jpg", views.clip_poster, name="clip-poster"),
    path(
        "callbacks/<str:kind>/<int:account_id>/",
        views.provider_callback,
        name="provider-callback",
    ),
]
