from django.urls import path, re_path

from . import views
from .search import views as search_views

app_name = "kb"

urlpatterns = [
    path("", views.home, name="home"),
    path("topics/", views.topics, name="topics"),
    path("search/", search_views.search_page, name="search"),
    path("search/opened/<str:token>/", search_views.search_opened, name="search-opened"),
    path("api/v1/search", search_views.api_search, name="api-search"),
    path("api/v1/suggest", search_views.api_suggest, name="api-suggest"),
    path("kb/<str:guide>/", views.guide, name="guide"),
    # AWS-style links (`article.html`) keep working; must precede the article pattern.
    re_path(r"^kb/(?P<guide>[^/]+)/(?P<article>[^/]+)\.html$", views.article_html, name="article-html"),
    path("kb/<str:guide>/<str:article>/", views.article, name="article"),
]
