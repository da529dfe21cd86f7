from django.urls import path

from videos import (
    chain_views,
    guest_views,
    project_views,
    reconcile_views,
    review_link_views,
    settings_views,
    takes_views,
    views,
)

urlpatterns = [
    path("", project_views.home, name="home"),
    path("projects/", project_views.projects, name="projects"),
    path("projects/<int:pk>/", project_views.project_detail, name="project"),
    path("projects/<int:pk>/clips/new/", views.clip_new, name="clip-new"),
    path("clips/<int:pk>/", views.clip_detail, name="clip"),
    path("clips/<int:pk>/video.mp4", views.clip_video, name="clip-video"),
    path("clips/<int:pk>/poster.jpg", views.clip_poster, name="clip-poster"),
    path("clips/<int:pk>/retry/", views.clip_retry, name="clip-retry"),
    path("clips/<int:pk>/1080p/", views.clip_hd, name="clip-hd"),
    path(
        "clips/<int:pk>/retry-extension/",
        views.clip_retry_extension,
        name="clip-retry-extension",
    ),
    path("clips/<int:pk>/template/", views.clip_template, name="clip-template"),
    path("clips/<int:pk>/download/", views.clip_download, name="clip-download"),
    path("frames/<int:pk>/image", views.frame_image, name="frame-image"),
    # Submissions whose answer was lost (videos/reconcile_views.py).
    path("clips/<int:pk>/check/", reconcile_views.clip_check, name="clip-check"),
    path("clips/<int:pk>/adopt/", reconcile_views.clip_adopt, name="clip-adopt"),
    path("clips/<int:pk>/not-sent/", reconcile_views.clip_not_sent, name="clip-not-sent"),
    path("usage/mismatches/", reconcile_views.mismatches, name="mismatches"),
    # Public on purpose: providers fetch frames here; the signed token expires.
    path("frames/<str:token>/<str:name>", views.frame_link, name="frame-link"),
    # Money and members (videos/settings_views.py).
    path("projects/<int:pk>/settings/", settings_views.project_settings, name="project-settings"),
    path("projects/<int:pk>/settings/members/", settings_views.member_add, name="member-add"),
    path(
        "projects/<int:pk>/settings/members/<int:membership_id>/role/",
        settings_views.member_role,
        name="member-role",
    ),
    path(
        "projects/<int:pk>/settings/members/<int:membership_id>/remove/",
        settings_views.member_remove,
        name="member-remove",
    ),
    path("projects/<int:pk>/settings/budget/", settings_views.budget, name="project-budget"),
    path("projects/<int:pk>/usage/", settings_views.project_usage, name="project-usage"),
    path("usage/", settings_views.site_usage, name="site-usage"),
    path("audit/", settings_views.audit_log, name="audit"),
    # Chains and review (videos/chain_views.py).
    path("clips/<int:pk>/chain/", chain_views.chain, name="chain"),
    path("clips/<int:pk>/extend/", chain_views.clip_extend, name="clip-extend"),
    path("clips/<int:pk>/continue/", chain_views.clip_continue, name="clip-continue"),
    path("clips/<int:pk>/main-take/", chain_views.choose_main_take, name="clip-main-take"),
    path("clips/<int:pk>/trim/", chain_views.clip_trim, name="clip-trim"),
    path("clips/<int:pk>/comments/", chain_views.clip_comment, name="clip-comment"),
    path("clips/<int:pk>/decisions/", chain_views.clip_decide, name="clip-decide"),
    path("clips/<int:pk>/export/", chain_views.chain_export, name="chain-export"),
    path(
        "clips/<int:pk>/export/status/",
        chain_views.chain_export_status,
        name="chain-export-status",
    ),
    path("comments/<int:pk>/resolve/", chain_views.comment_resolve, name="comment-resolve"),
    path("exports/<int:pk>/video.mp4", chain_views.export_video, name="export-video"),
    # Takes of one request, side by side (videos/takes_views.py).
    path("takes/<int:pk>/", takes_views.takes_page, name="takes"),
    path("takes/<int:pk>/pick/", takes_views.take_pick, name="take-pick"),
    # Review links: made by admins (videos/review_link_views.py), opened by guests
    # (videos/guest_views.py), who reach everything by the link's token.
    path("clips/<int:pk>/share/", review_link_views.clip_share, name="clip-share"),
    path(
        "review-links/<int:pk>/revoke/",
        review_link_views.review_link_revoke,
        name="review-link-revoke",
    ),
    path("review/<str:token>/", guest_views.guest_page, name="guest"),
    path("review/<str:token>/comments/", guest_views.guest_comment, name="guest-comment"),
    path("review/<str:token>/decisions/", guest_views.guest_decide, name="guest-decide"),
    path(
        "review/<str:token>/clips/<int:clip_id>/video.mp4",
        guest_views.guest_video,
        name="guest-video",
    ),
    path(
        "review/<str:token>/clips/<int:clip_id>/poster.jpg",
        guest_views.guest_poster,
        name="guest-poster",
    ),
    path(
        "callbacks/<str:kind>/<int:account_id>/",
        views.provider_callback,
        name="provider-callback",
    ),
]
