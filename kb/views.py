"""Reading pages: home, guide contents, articles and the topics list.

Each view fetches what its template prints (templates do not query) and renders it.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from .models import Article, Guide, Section


def home(request: HttpRequest) -> HttpResponse:
    guides = Guide.objects.with_article_counts()
    articles = Article.objects.troubleshooting().with_topics()
    return render(request, "kb/home.html", {"guides": guides, "troubleshooting": articles})


def guide(request: HttpRequest, guide: str) -> HttpResponse:
    guide_obj = get_object_or_404(Guide, slug=guide)
    # A guide without index.md has no tree; the template lists its articles instead.
    articles = guide_obj.articles.only("slug", "title", "guide_id")
    return render(request, "kb/guide.html", {"guide": guide_obj, "toc": guide_obj.toc, "articles": articles})


def article(request: HttpRequest, guide: str, article: str) -> HttpResponse:
    article_obj = get_object_or_404(Article.objects.select_related("guide"), guide__slug=guide, slug=article)
    sections = list(article_obj.sections.all())
    context = {
        "article": article_obj,
        "guide": article_obj.guide,
        "sections": sections,
        "on_this_page": [s for s in sections if s.level > 1],
        "breadcrumbs": article_obj.ancestors(),
        "previous": article_obj.previous_in_guide(),
        "next": article_obj.next_in_guide(),
    }
    return render(request, "kb/article.html", context)


def article_html(request: HttpRequest, guide: str, article: str) -> HttpResponse:
    article_obj = get_object_or_404(Article.objects.select_related("guide"), guide__slug=guide, slug=article)
    return redirect(article_obj, permanent=True)


def topics(request: HttpRequest) -> HttpResponse:
    sections = Section.objects.topics().select_related("article__guide").order_by(
        "article__guide__title", "article__position", "article__slug", "position"
    ).only("anchor", "title", "level", "article__slug", "article__title", "article__guide__slug", "article__guide__title")
    return render(request, "kb/topics.html", {"sections": sections})
