from django.contrib import admin
from django.urls import include, path, register_converter

from kb.converters import KeyConverter
from kb.health import healthz

register_converter(KeyConverter, "key")  # before the includes below, whose routes use it

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("desk/", include("kb.desk.urls")),
    path("", include("kb.api.urls")),
    path("", include("kb.guided.urls")),
    path("", include("kb.urls")),
]
