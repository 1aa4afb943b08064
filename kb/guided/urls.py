from django.urls import path

from . import views

app_name = "guided"

urlpatterns = [
    path("troubleshoot/", views.start, name="start"),
    path("troubleshoot/<key:token>/", views.answer, name="answer"),
    path("troubleshoot/<key:token>/feedback/", views.feedback, name="feedback"),
    path("troubleshoot/<key:token>/fixed/", views.fixed, name="fixed"),
    path("troubleshoot/<key:token>/case/", views.case, name="case"),
    path("feedback/", views.section_feedback, name="section-feedback"),
    path("api/v1/recommend", views.api_recommend, name="api-recommend"),
]
