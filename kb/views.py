"""Reading pages: home, guide contents, articles and the topics list.

Each view fetches what its template prints (templates do not query) and renders it. The
pages are the same for every visitor (but the CSRF token of their forms), so they are cached
under their content version and answer repeat visits with a 304 (kb/pagecache.py).
"""

from functools import partial

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect

from .models import Article, Guide, Section
from .pagecache import article_version, cached_page, corpus_version, guide_version, render_shared

# Per-guide fields a page never prints: the table of contents alone is a large JSON document.
GUIDE_BULK = ("toc", "link_context")


@cached_page(partial(corpus_version, "home"))
def home(request: HttpRequest) -> HttpResponse:
    guides = Guide.objects.with_article_counts().defer(*GUIDE_BULK)
    articles = Article.objects.troubleshooting().with_topics().defer(*(f"guide__{f}" for f in GUIDE_BULK))
    return render_shared(request, "kb/home.html", {"guides": guides, "troubleshooting": articles})


@cached_page(guide_version)
def guide(request: HttpRequest, guide: str) -> HttpResponse:
    guide_obj = get_object_or_404(Guide.objects.defer("link_context"), slug=guide)
    # Listed after the table of contents, so that every article can be reached from its guide.
    others = guide_obj.articles_outside_toc().only("slug", "title", "guide_id")
    return render_shared(request, "kb/guide.html", {"guide": guide_obj, "toc": guide_obj.toc, "others": others})


@cached_page(article_version)
def article(request: HttpRequest, guide: str, article: str) -> HttpResponse:
    articles = Article.objects.select_related("guide").defer(
        "anchors", "links", *(f"guide__{f}" for f in GUIDE_BULK)
    )
    article_obj = get_object_or_404(articles, guide__slug=guide, slug=article)
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
    return render_shared(request, "kb/article.html", context)


def article_html(request: HttpRequest, guide: str, article: str) -> HttpResponse:
    articles = Article.objects.select_related("guide").only("slug", "guide__slug")
    article_obj = get_object_or_404(articles, guide__slug=guide, slug=article)
    return redirect(article_obj, permanent=True)


@cached_page(partial(corpus_version, "topics"))
def topics(request: HttpRequest) -> HttpResponse:
    sections = Section.objects.topics().select_related("article__guide").order_by(
        "article__guide__title", "article__position", "article__slug", "position"
    ).only("anchor", "title", "level", "article__slug", "article__title", "article__guide__slug", "article__guide__title")
    return render_shared(request, "kb/topics.html", {"sections": sections})
