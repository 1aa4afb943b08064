from django.urls import path, re_path

from . import views
from .converters import KeyConverter
from .search import views as search_views

app_name = "kb"
KEY = KeyConverter.regex

urlpatterns = [
    path("", views.home, name="home"),
    path("topics/", views.topics, name="topics"),
    path("search/", search_views.search_page, name="search"),
    path("search/opened/<key:token>/", search_views.search_opened, name="search-opened"),
    path("api/v1/search", search_views.api_search, name="api-search"),
    path("api/v1/suggest", search_views.api_suggest, name="api-suggest"),
    path("kb/<key:guide>/", views.guide, name="guide"),
    # AWS-style links (`article.html`) keep working; must precede the article pattern.
    re_path(rf"^kb/(?P<guide>{KEY})/(?P<article>{KEY})\.html$", views.article_html, name="article-html"),
    path("kb/<key:guide>/<key:article>/", views.article, name="article"),
]
