"""The API's own routes. Search, suggest and recommend keep theirs (kb:api-search,
kb:api-suggest, guided:api-recommend); the OpenAPI document lists them all."""

from django.urls import path

from . import views

app_name = "api"

urlpatterns = [
    path("api/v1/", views.reference_page, name="reference"),
    path("api/v1/openapi.json", views.document, name="openapi"),
    path("api/v1/cases", views.cases, name="cases"),
    path("api/v1/cases/<key:reference>", views.case, name="case"),
    path("api/v1/cases/<key:reference>/status", views.case_status, name="case-status"),
    path("api/v1/cases/<key:reference>/resolve", views.case_resolve, name="case-resolve"),
    path("api/v1/cases/<key:reference>/replies", views.case_reply, name="case-reply"),
    path("api/v1/feedback", views.feedback, name="feedback"),
]
