"""The help desk's side: case queue and detail, resolutions, and content-gap insights."""
from django.urls import path

from . import views

app_name = "desk"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("cases/<key:reference>/", views.case, name="case"),
    path("insights/", views.insights, name="insights"),
    path("gaps/", views.gaps, name="gaps"),
    path("export/<slug:table>.csv", views.export, name="export"),
]
