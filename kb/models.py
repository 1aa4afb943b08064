"""The knowledge base as imported from markdown: guides, their articles, and sections.

The section (an anchored heading and the content up to the next one) is the unit that
search, links, feedback and recommendations point at. Rows are keyed by stable slugs and
anchors so that re-imports update them in place and keep their ids.
"""

from django.db import models
from django.db.models import Count, Max, Prefetch, Q
from django.urls import reverse
from django.utils import timezone


class GuideQuerySet(models.QuerySet):
    def with_article_counts(self) -> "GuideQuerySet":
        # Meta.ordering does not apply to a GROUP BY query: ask for it.
        return self.annotate(article_count=Count("articles")).order_by(*self.model._meta.ordering)

    def content_version(self) -> tuple:
        """(latest import, number of guides): changes with any import that changes content,
        and when a guide is deleted. Caches of derived data key on it."""
        stats = self.aggregate(latest=Max("imported_at"), count=Count("id"))
        return stats["latest"], stats["count"]


class Guide(models.Model):
    slug = models.SlugField(max_length=200, unique=True)
    title = models.CharField(max_length=300)
    base_url = models.URLField(blank=True, help_text="Where articles that are not imported are published.")
    toc = models.JSONField(
        default=list,
        blank=True,
        help_text="The table of contents from index.md: nested [{title, slug, href, children}].",
    )
    link_context = models.TextField(
        blank=True, help_text="base_url and article slugs the stored links were rendered against."
    )
    activities = models.JSONField(
        default=list,
        blank=True,
        help_text="The guide's own \"What were you doing?\" choices from guide.toml: [{key, label, words}].",
    )
    imported_at = models.DateTimeField()

    objects = GuideQuerySet.as_manager()

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("kb:guide", args=[self.slug])

    def articles_outside_toc(self) -> "ArticleQuerySet":
        """Articles the table of contents does not link to (every one, without index.md), by title."""
        return self.articles.exclude(slug__in=toc_order(self.toc)).order_by("title", "slug")


def toc_order(toc: list[dict]) -> dict[str, tuple[int, str | None]]:
    """Article slug -> (position, parent slug), depth-first through a table of contents."""
    order: dict[str, tuple[int, str | None]] = {}

    def walk(nodes: list[dict], parent: str | None) -> None:
        for node in nodes:
            slug = node["slug"] or None
            if slug and slug not in order:
                order[slug] = (len(order), parent)
            walk(node["children"], slug or parent)

    walk(toc, None)
    return order


# Articles about fixing problems are named so by their authors ("Troubleshooting ...",
# troubleshoot_*.md); this word is the one definition, in SQL and in Python below.
TROUBLESHOOTING_WORD = "troubleshoot"


def is_troubleshooting(slug: str, title: str) -> bool:
    """Whether an article (by its slug and title) is a troubleshooting article."""
    return TROUBLESHOOTING_WORD in slug.lower() or TROUBLESHOOTING_WORD in title.lower()


class ArticleQuerySet(models.QuerySet):
    def troubleshooting(self) -> "ArticleQuerySet":
        """Troubleshooting articles (see is_troubleshooting), in guide order."""
        word = TROUBLESHOOTING_WORD
        return self.filter(Q(title__icontains=word) | Q(slug__icontains=word)).order_by(
            "guide__title", "position", "slug"
        )

    def with_topics(self) -> "ArticleQuerySet":
        return self.select_related("guide").prefetch_related(
            Prefetch("sections", queryset=Section.objects.topics().only("article_id", "anchor", "title", "level"),
                     to_attr="topics")
        )


class Article(models.Model):
    guide = models.ForeignKey(Guide, on_delete=models.CASCADE, related_name="articles")
    slug = models.CharField(max_length=200)
    title = models.CharField(max_length=500)
    anchor = models.CharField(max_length=200, blank=True, help_text="The anchor on the article's H1.")
    source_path = models.CharField(max_length=500, help_text="Path of the markdown file, relative to its guide.")
    content_hash = models.CharField(max_length=64)
    anchors = models.JSONField(default=list, help_text="Every anchor in the article, for link checks.")
    links = models.JSONField(default=list, help_text="Internal links as [article, anchor, line].")
    position = models.PositiveIntegerField(default=0, help_text="Order in the guide's table of contents.")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    imported_at = models.DateTimeField(help_text="When this article's content last changed in an import.")

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["guide", "position", "slug"]
        constraints = [models.UniqueConstraint(fields=["guide", "slug"], name="kb_article_unique_slug")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("kb:article", args=[self.guide.slug, self.slug])

    def ancestors(self) -> list["Article"]:
        """Parents in the guide's table of contents, outermost first (for breadcrumbs).

        One primary-key lookup per level: guides nest a few levels deep but hold hundreds
        of articles, so walking up beats loading the guide.
        """
        chain: list[Article] = []
        parent_id = self.parent_id
        seen = {self.pk}
        while parent_id and parent_id not in seen:
            parent = Article.objects.filter(pk=parent_id).only("slug", "title", "parent_id", "guide_id").first()
            if parent is None:
                break
            parent.guide = self.guide
            chain.insert(0, parent)
            seen.add(parent_id)
            parent_id = parent.parent_id
        return chain

    def previous_in_guide(self) -> "Article | None":
        return self._neighbour(before=True)

    def next_in_guide(self) -> "Article | None":
        return self._neighbour(before=False)

    def _neighbour(self, *, before: bool) -> "Article | None":
        siblings = Article.objects.filter(guide_id=self.guide_id).select_related("guide").only(
            "slug", "title", "guide__slug"
        )
        if before:
            siblings = siblings.filter(Q(position__lt=self.position) | Q(position=self.position, slug__lt=self.slug))
            return siblings.order_by("-position", "-slug").first()
        siblings = siblings.filter(Q(position__gt=self.position) | Q(position=self.position, slug__gt=self.slug))
        return siblings.order_by("position", "slug").first()


class SectionQuerySet(models.QuerySet):
    def with_article(self) -> "SectionQuerySet":
        """Sections with their article and guide, without the bulky fields a listing never shows."""
        return self.select_related("article__guide").defer(
            "html", "article__anchors", "article__links", "article__guide__toc", "article__guide__link_context"
        )

    def topics(self) -> "SectionQuerySet":
        """The troubleshooting topics: every section below an article's title."""
        return self.filter(level__gt=1).exclude(anchor="")


class Section(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="sections")
    anchor = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=500)
    level = models.PositiveSmallIntegerField()
    position = models.PositiveIntegerField()
    html = models.TextField(help_text="Sanitised HTML, rendered once at import.")
    text = models.TextField(help_text="Plain text of the section, for search.")
    kind = models.CharField(
        max_length=20, blank=True, help_text="troubleshooting, procedure, concept, example, reference or tutorial."
    )

    objects = SectionQuerySet.as_manager()

    class Meta:
        ordering = ["article", "position"]
        constraints = [
            models.UniqueConstraint(fields=["article", "anchor"], name="kb_section_unique_anchor")
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        url = reverse("kb:article", args=[self.article.guide.slug, self.article.slug])
        return f"{url}#{self.anchor}" if self.anchor else url


class SectionEntity(models.Model):
    """An AWS entity a section names (kb.search.entities), and where: what the section is about.

    Written by the importer with its section; ranking reads a candidate's rows and looks
    sections up by value (which sections are about this error code?).
    """

    class Zone(models.TextChoices):
        HEADING = "h", "Heading"
        LEAD = "l", "First words"
        BODY = "b", "Body"

    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="entities")
    value = models.CharField(max_length=200, db_index=True, help_text="Typed and normalised: code:accessdenied.")
    zone = models.CharField(max_length=1, choices=Zone.choices)

    def __str__(self) -> str:
        return f"{self.value} ({self.get_zone_display()})"


class SectionEmbedding(models.Model):
    """A section's sentence embedding (kb.search.semantic), and a digest of the text it was made from."""

    section = models.OneToOneField(Section, on_delete=models.CASCADE, primary_key=True, related_name="embedding")
    digest = models.CharField(max_length=40, help_text="Model and embedded text: unchanged means no need to embed again.")
    vector = models.BinaryField(help_text="float32 unit vector of the section's heading and first words.")
    heading = models.BinaryField(help_text="float32 unit vector of the heading alone (with its article's title).")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"embedding of section {self.section_id}"


class SearchLog(models.Model):
    """One search, kept for the help desk's insights. Text is redacted before it is stored."""

    class Channel(models.TextChoices):
        WEB = "web", "Search page"
        API = "api", "JSON API"

    query = models.TextField(help_text="The query as typed, secrets redacted.")
    understood = models.TextField(blank=True, help_text="What the analyser took from it.")
    guide = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    result_count = models.PositiveIntegerField()
    signature = models.CharField(
        max_length=64, blank=True, help_text="The error's signature, as a diagnosis's; blank when the text names no error."
    )
    opened_section = models.ForeignKey(Section, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    opened_url = models.CharField(max_length=700, blank=True, help_text="Kept if the section is later removed.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        # The desk's insights count a date range's searches by day and by signature from
        # this index alone (it covers both), never reading the table's rows.
        indexes = [models.Index(fields=["created_at", "signature"], name="kb_searchlog_created_signature")]

    def __str__(self) -> str:
        return self.query[:80]


class SectionKey(models.Model):
    """A stable reference to a section by (guide, article, anchor) that outlives re-imports.

    The foreign key is a convenience for joins; the slugs are what survives when an
    import removes or renames the section.
    """

    section = models.ForeignKey(Section, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    guide_slug = models.CharField(max_length=200, blank=True)
    article_slug = models.CharField(max_length=200, blank=True)
    anchor = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True

    def point_at(self, section: Section | None) -> None:
        """Name `section`, or no section at all (None clears the slugs too)."""
        self.section = section
        self.guide_slug = section.article.guide.slug if section else ""
        self.article_slug = section.article.slug if section else ""
        self.anchor = section.anchor if section else ""


class Diagnosis(models.Model):
    """One run of the guided form: what was pasted, what was understood and recommended, how it ended."""

    class Outcome(models.TextChoices):
        OPEN = "open", "Open"
        FIXED = "fixed", "Fixed without a case"
        ESCALATED = "escalated", "Escalated to the help desk"

    error_text = models.TextField(help_text="As pasted, secrets redacted.")
    context = models.JSONField(default=dict, blank=True, help_text="What the person was doing, service or tool.")
    signature = models.CharField(max_length=64, db_index=True, help_text="Groups errors of the same kind.")
    analysis = models.JSONField(default=dict, help_text="What the analyser understood, as shown.")
    recommendations = models.JSONField(default=list, help_text="The sections recommended, as shown.")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OPEN)
    token = models.CharField(max_length=64, unique=True, help_text="Secret in the person's private link.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "diagnoses"

    def __str__(self) -> str:
        return self.error_text[:80]


class FeedbackQuerySet(models.QuerySet):
    def one_per_voter(self) -> list["Feedback"]:
        """Each person's last vote per error signature and section: what learning counts.

        One client voting on many pastes of the same error is one person. Votes recorded
        before voters were (no `voter`) count once per diagnosis, as they did.
        """
        latest: dict[tuple, Feedback] = {}
        for vote in self.order_by("created_at", "pk"):
            person = vote.voter or f"diagnosis:{vote.diagnosis_id}"
            latest[(vote.signature, vote.guide_slug, vote.article_slug, vote.anchor, person)] = vote
        return list(latest.values())


class Feedback(SectionKey):
    """A vote on a section, from a recommendation or from an article page."""

    class Vote(models.TextChoices):
        HELPED = "helped", "This fixed it / helpful"
        NOT_THIS = "not_this", "Not this / not helpful"

    diagnosis = models.ForeignKey(Diagnosis, null=True, blank=True, on_delete=models.CASCADE, related_name="feedback")
    signature = models.CharField(max_length=64, blank=True, db_index=True)
    vote = models.CharField(max_length=10, choices=Vote.choices)
    voter = models.CharField(
        max_length=32, blank=True, help_text="Who voted, as a keyed hash of their address (never the address).",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = FeedbackQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "feedback"
        constraints = [
            # One vote per recommendation: a double click or a re-POST changes the vote, never adds one.
            models.UniqueConstraint(
                fields=["diagnosis", "guide_slug", "article_slug", "anchor"],
                condition=models.Q(diagnosis__isnull=False),
                name="kb_feedback_one_vote_per_recommendation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_vote_display()}: {self.guide_slug}/{self.article_slug}#{self.anchor}"


class Case(SectionKey):
    """A help-desk case raised when no recommendation helped. `section` is the one that resolved it."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        IN_PROGRESS = "in_progress", "In progress"
        WAITING = "waiting", "Waiting on requester"
        RESOLVED = "resolved", "Resolved"

    reference = models.CharField(max_length=20, unique=True)
    diagnosis = models.OneToOneField(Diagnosis, on_delete=models.PROTECT, related_name="case")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    details = models.TextField(blank=True, help_text="Anything else the person added, secrets redacted.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW, db_index=True)
    content_missing = models.BooleanField(default=False, help_text="No article covers this: a gap for the writers.")
    assignee = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="kb_cases"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.reference


# The conversation on a case -------------------------------------------------------------------


class CaseEventQuerySet(models.QuerySet):
    def for_requester(self) -> "CaseEventQuerySet":
        """What the person may read on their case page: everything but the desk's internal notes."""
        return self.exclude(kind=CaseEvent.Kind.NOTE)


class CaseEvent(models.Model):
    """One entry in a case's timeline, oldest first: replies, internal notes, the person's
    answers and status changes. Written by kb/desk/conversation.py only."""

    class Kind(models.TextChoices):
        STATUS = "status", "Status change"
        REPLY = "reply", "Reply to the person"
        NOTE = "note", "Internal note"
        ANSWER = "answer", "Answer from the person"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    author = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The staff member; empty for the person's answers and changes the portal made.",
    )
    body = models.TextField(blank=True, help_text="The message; an answer is stored with secrets redacted.")
    old_status = models.CharField(max_length=12, blank=True, choices=Case.Status.choices)
    new_status = models.CharField(max_length=12, blank=True, choices=Case.Status.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = CaseEventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"


# Rate limits ---------------------------------------------------------------------------


class RateLimitCounter(models.Model):
    """One client's requests in one group and window (kb/ratelimit.py); counted by
    kb/ratecounter.py with an atomic upsert, deleted some time after `expires`."""

    bucket = models.CharField(max_length=255, primary_key=True, help_text="group:window:client")
    hits = models.PositiveIntegerField(default=0)
    expires = models.BigIntegerField(db_index=True, help_text="Unix time after which the window is over.")

    def __str__(self) -> str:
        return f"{self.bucket}: {self.hits}"


# API tokens, the desk's kept search counts, outgoing mail and webhooks live with the code
# that uses them; imported here so Django registers them (in the kb app: kb.ApiToken, ...).
from kb.api.models import ApiToken  # noqa: E402,F401
from kb.desk.models import SearchDay, SearchDayGroup  # noqa: E402,F401
from kb.notify.models import OutgoingEmail, Webhook, WebhookDelivery  # noqa: E402,F401
