from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("desk/", include("kb.desk.urls")),
    path("", include("kb.guided.urls")),
    path("", include("kb.urls")),
]

