from django.urls import path, re_path

from . import views

app_name = "kb"

urlpatterns = [
    path("", views.home, name="home"),
    path("topics/", views.topics, name="topics"),
    path("kb/<str:guide>/", views.guide, name="guide"),
    # AWS-style links (`article.html`) keep working; must precede the article pattern.
    re_path(r"^kb/(?P<guide>[^/]+)/(?P<article>[^/]+)\.html$", views.article_html, name="article-html"),
    path("kb/<str:guide>/<str:article>/", views.article, name="article"),
]
