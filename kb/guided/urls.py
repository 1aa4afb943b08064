from django.urls import path

app_name = "guided"

urlpatterns: list = []
