"""Import markdown guides into the database as a guide-by-guide sync.

Everything is read and rendered before anything is written, so a bad file aborts the
run with the database untouched; the writes then happen in one transaction. Rows are
matched by (guide, article slug, anchor), so unchanged rows keep their ids.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import django
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from kb.models import Article, Guide, Section, SectionEntity, toc_order
from kb.search import sync_index
from kb.search.entities import section_entities, section_kind

from .render import UNTITLED_HEADING, LinkContext, RenderedArticle, Renderer, RenderError, page_ids
from .sources import INDEX, ArticleSource, GuideSource, SourceError, find_guide_folders, load_guide

Progress = Callable[[int, int], None]

MAX_GUIDE_TITLE = 300  # kb.models.Guide.title

# Rendering is CPU-bound (about 10 ms a file), and a spawned worker takes about 0.5 s of
# CPU to start: below this many files a worker pool costs more than it saves.
PARALLEL_THRESHOLD = 100


class ImportFailed(Exception):
    """The run was aborted and nothing was written; `errors` name each bad file."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ImportReport:
    guides: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        verb = "would be " if self.dry_run else ""
        return (
            f"{len(self.guides)} guide(s): {len(self.added)} {verb}added, {len(self.updated)} {verb}updated, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} {verb}removed, {len(self.warnings)} warning(s)"
        )


@dataclass
class _GuidePlan:
    source: GuideSource
    context: LinkContext
    existing: dict[str, Article]
    guide: Guide | None
    to_render: list[ArticleSource]
    to_lint: list[ArticleSource]  # unchanged, but with warnings to report again
    rendered: dict[str, RenderedArticle] = field(default_factory=dict)
    linted: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    title: str = ""
    toc: list[dict] = field(default_factory=list)


def import_content(
    paths: list[str | Path] | None = None, *, dry_run: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Sync the guides found under `paths` (default: settings.KB_CONTENT_DIR) into the database.

    With `dry_run`, every file is rendered and checked but nothing is written.
    Raises ImportFailed, with nothing written, when any file cannot be read or rendered;
    its errors name every such file.
    """
    roots = [Path(p) for p in paths] if paths else [Path(settings.KB_CONTENT_DIR)]
    try:
        sources = [load_guide(folder) for folder in find_guide_folders(roots)]
    except SourceError as exc:
        raise ImportFailed([str(exc)]) from None
    errors = [error for source in sources for error in source.errors]
    plans = [_plan(source, full=dry_run) for source in sources]
    _render_all(plans, progress, errors)
    if errors:
        raise ImportFailed(errors)
    report = ImportReport(dry_run=dry_run)
    for plan in plans:
        report.guides.append(plan.source.slug)
        report.warnings.extend(_check_links(plan))
    if dry_run:
        for plan in plans:
            _classify(plan, report)
        return report
    with transaction.atomic():
        for plan in plans:
            _write_guide(plan, report)
        # In the same transaction, so search never sees sections the index lacks (or the reverse).
        sync_index()
    return report


def _article_url_template() -> str:
    return reverse("kb:article", args=["GUIDE", "ARTICLE"]).replace("GUIDE", "{guide}").replace("ARTICLE", "{article}")


def _plan(source: GuideSource, *, full: bool) -> _GuidePlan:
    context = LinkContext(
        guide=source.slug,
        base_url=source.base_url,
        articles=frozenset(a.slug for a in source.articles),
        article_url=_article_url_template(),
    )
    guide = Guide.objects.filter(slug=source.slug).first()
    existing = {a.slug: a for a in Article.objects.filter(guide=guide)} if guide else {}
    # Links in every article depend on which articles the guide has and where it is
    # published, so a change to either re-renders the whole guide.
    context_changed = guide is None or guide.link_context != _link_context_key(context)
    hashes = {a.slug: a.content_hash for a in source.articles}
    unchanged = {
        slug for slug, article in existing.items()
        if not (full or context_changed) and article.content_hash == hashes.get(slug)
    }
    # Warnings are not stored. The renderer's come from repeated anchors, which the stored
    # anchors show, and from headings without text, which a regex finds in the source: those
    # unchanged articles are linted again.
    def warned(article: ArticleSource) -> bool:
        anchors = existing[article.slug].anchors
        return len(set(anchors)) < len(anchors) or bool(UNTITLED_HEADING.search(article.text))

    return _GuidePlan(
        source, context, existing, guide,
        to_render=[a for a in source.articles if a.slug not in unchanged],
        to_lint=[a for a in source.articles if a.slug in unchanged and warned(a)],
    )


def _link_context_key(context: LinkContext) -> str:
    return "\n".join([context.base_url, *sorted(context.articles)])


_worker_renderer: Renderer | None = None


def _render_one(job: tuple[str, str, LinkContext]) -> tuple[str, RenderedArticle | None, str | None]:
    global _worker_renderer
    path, text, context = job
    if _worker_renderer is None:
        _worker_renderer = Renderer()
    try:
        return path, _worker_renderer.render(text, context), None
    except RenderError as exc:
        where = f"{path}:{exc.line}" if exc.line else path
        return path, None, f"{where}: {exc}"
    except Exception as exc:  # a renderer crash must still name the file
        return path, None, f"{path}: cannot render ({type(exc).__name__}: {exc})"


def _render_all(plans: list[_GuidePlan], progress: Progress | None, errors: list[str]) -> None:
    owners: dict[str, tuple[_GuidePlan, str]] = {}
    jobs = []
    for plan in plans:
        for article in plan.to_render:
            owners[str(article.path)] = (plan, article.slug)
            jobs.append((str(article.path), article.text, plan.context))
    processes = min(os.cpu_count() or 1, 4)
    if len(jobs) >= PARALLEL_THRESHOLD and processes > 1:
        # Spawned, never forked: a fork copies the importing process as it is, its threads'
        # held locks and its database connection included (a server, a test runner or a
        # command that loaded the embedding model holds threads). After a killed import,
        # each worker ends at its next read or write of the pool's queues.
        with multiprocessing.get_context("spawn").Pool(processes, initializer=django.setup) as pool:
            _collect(pool.imap_unordered(_render_one, jobs, chunksize=8), owners, len(jobs), progress, errors)
    else:
        _collect(map(_render_one, jobs), owners, len(jobs), progress, errors)
    renderer = Renderer()
    for plan in plans:
        plan.linted = {article.slug: renderer.anchor_warnings(article.text) for article in plan.to_lint}
        if plan.source.index_text is not None:
            index = plan.source.path / INDEX
            try:
                plan.title, plan.toc = renderer.render_toc(plan.source.index_text, plan.context)
            except RenderError as exc:
                errors.append(f"{index}:{exc.line}: {exc}" if exc.line else f"{index}: {exc}")
        plan.title = plan.source.title or plan.title or plan.source.slug
        if len(plan.title) > MAX_GUIDE_TITLE:
            where = plan.source.path / ("guide.toml" if plan.source.title else INDEX)
            errors.append(f"{where}: the guide's title is longer than {MAX_GUIDE_TITLE} characters")


def _collect(results, owners, total: int, progress: Progress | None, errors: list[str]) -> None:
    for done, (path, rendered, error) in enumerate(results, 1):
        plan, slug = owners[path]
        if error:
            errors.append(error)
        else:
            plan.rendered[slug] = rendered
        if progress:
            progress(done, total)


def _check_links(plan: _GuidePlan) -> list[str]:
    """Warnings, as `file:line: message`, for internal links to a missing article or anchor,
    and the renderer's own warnings."""
    anchors = {slug: set(page_ids(a.anchors)) for slug, a in plan.existing.items()}
    links = {slug: a.links for slug, a in plan.existing.items()}
    for slug, rendered in plan.rendered.items():
        anchors[slug] = set(page_ids(rendered.anchors))
        links[slug] = _stored_links(rendered)
    warnings = []
    for article in plan.source.articles:
        for target, anchor, line in links[article.slug]:
            where = f"{article.path}:{line}" if line else str(article.path)
            if target and target not in plan.context.articles:
                warnings.append(f"{where}: broken link to {target}.md: no such article in the guide")
            elif anchor and anchor not in anchors[target or article.slug]:
                what = f"{target}.md#{anchor}" if target else f"#{anchor}"
                warnings.append(f"{where}: broken link to {what}: no such anchor")
        rendered = plan.rendered.get(article.slug)
        own = rendered.warnings if rendered else plan.linted.get(article.slug, [])
        warnings.extend(f"{article.path}:{line}: {message}" for line, message in own)
    return warnings


def _stored_links(rendered: RenderedArticle) -> list[list]:
    return [[link.article, link.anchor, link.line] for link in rendered.links]


def _classify(plan: _GuidePlan, report: ImportReport) -> bool:
    """Record what the sync does to each article of the guide; True when any article changes."""
    before = len(report.added) + len(report.updated) + len(report.removed)
    for article in plan.source.articles:
        key = f"{plan.source.slug}/{article.slug}"
        old = plan.existing.get(article.slug)
        if old is None:
            report.added.append(key)
        elif old.content_hash != article.content_hash:
            report.updated.append(key)
        else:
            report.unchanged.append(key)
    present = {a.slug for a in plan.source.articles}
    report.removed.extend(f"{plan.source.slug}/{slug}" for slug in plan.existing if slug not in present)
    return len(report.added) + len(report.updated) + len(report.removed) > before


def _write_guide(plan: _GuidePlan, report: ImportReport) -> None:
    """Write one guide's changes; rows that did not change are not touched."""
    now = timezone.now()
    guide = plan.guide or Guide(slug=plan.source.slug)
    values = {
        "title": plan.title,
        "base_url": plan.source.base_url,
        "toc": plan.toc,
        "link_context": _link_context_key(plan.context),
        "activities": [activity.to_json() for activity in plan.source.activities],
    }
    articles_changed = _classify(plan, report)
    if guide.pk is None or articles_changed or any(getattr(guide, k) != v for k, v in values.items()):
        for name, value in values.items():
            setattr(guide, name, value)
        guide.imported_at = now
        guide.save()
    present = [a.slug for a in plan.source.articles]
    if removed := plan.existing.keys() - set(present):
        Article.objects.filter(guide=guide, slug__in=removed).delete()

    order = toc_order(plan.toc)
    sequence = [*order, *sorted(set(present) - order.keys())]
    positions = {slug: index for index, slug in enumerate(sequence)}
    articles = {
        source.slug: _write_article(plan, guide, source, positions[source.slug], now)
        for source in plan.source.articles
    }
    for slug, article in articles.items():
        parent_slug = order.get(slug, (0, None))[1]
        parent_id = articles[parent_slug].pk if parent_slug in articles else None
        if article.parent_id != parent_id:
            Article.objects.filter(pk=article.pk).update(parent_id=parent_id)


def _write_article(plan: _GuidePlan, guide: Guide, source: ArticleSource, position: int, now: datetime) -> Article:
    """Create or update one article and its sections; an unchanged one is only moved if its place changed."""
    article = plan.existing.get(source.slug) or Article(guide=guide, slug=source.slug)
    rendered = plan.rendered.get(source.slug)
    created = article.pk is None
    save = rendered is not None or article.position != position
    if rendered is not None:
        if article.content_hash != source.content_hash:
            article.imported_at = now
        article.title = rendered.title
        article.anchor = rendered.anchor
        article.anchors = rendered.anchors
        article.links = _stored_links(rendered)
        article.source_path = source.path.name
        article.content_hash = source.content_hash
    article.position = position
    if save:
        article.save()
    if rendered is not None:
        _sync_sections(article, rendered, created=created)
    return article


def _sync_sections(article: Article, rendered: RenderedArticle, *, created: bool) -> None:
    """Match sections by anchor: an edited one is updated in place, keeping its id."""
    existing = {} if created else {s.anchor: s for s in Section.objects.filter(article=article)}
    fields = ("title", "level", "position", "html", "text", "kind")
    create, update = [], []
    for new in rendered.sections:
        section = existing.pop(new.anchor, None)
        values = {name: getattr(new, name) for name in fields if name != "kind"}
        values["kind"] = section_kind(new.title, new.html, article.slug, article.title, new.level)
        if section is None:
            create.append(Section(article=article, anchor=new.anchor, **values))
        elif any(getattr(section, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(section, name, value)
            update.append(section)
    if existing:
        Section.objects.filter(pk__in=[s.pk for s in existing.values()]).delete()
    Section.objects.bulk_create(create, batch_size=500)
    Section.objects.bulk_update(update, fields, batch_size=500)
    _write_entities(article, rendered)


def _write_entities(article: Article, rendered: RenderedArticle) -> None:
    """What each section of a re-rendered article names, replacing what was recorded before."""
    ids = dict(Section.objects.filter(article=article).values_list("anchor", "id"))
    SectionEntity.objects.filter(section_id__in=ids.values()).delete()
    SectionEntity.objects.bulk_create([
        SectionEntity(section_id=ids[new.anchor], value=value[:200], zone=zone)
        for new in rendered.sections
        for value, zone in section_entities(new.title, new.text).items()
    ], batch_size=1000)
