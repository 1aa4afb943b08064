from django.contrib import admin
from django.urls import include, path

from kb.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("desk/", include("kb.desk.urls")),
    path("", include("kb.api.urls")),
    path("", include("kb.guided.urls")),
    path("", include("kb.urls")),
]
