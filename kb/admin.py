from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from .api import tokens
from .models import (
    ApiToken, Article, Case, Diagnosis, Feedback, Guide, OutgoingEmail, SearchLog, Section, SectionEmbedding,
    SectionEntity, Webhook, WebhookDelivery,
)


class ImportedAdmin(admin.ModelAdmin):
    """Content the importer writes from the markdown: shown, never added, edited or deleted here.

    Pages and search are derived at import, so an edit here would reach neither; the
    page says where content changes instead.
    """

    change_list_template = "admin/kb/imported/change_list.html"
    change_form_template = "admin/kb/imported/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Guide)
class GuideAdmin(ImportedAdmin):
    list_display = ["title", "slug", "base_url", "imported_at"]
    search_fields = ["title", "slug"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # Django 6's default, now


@admin.register(Article)
class ArticleAdmin(ImportedAdmin):
    list_display = ["title", "guide", "slug", "position", "imported_at"]
    list_filter = ["guide"]
    search_fields = ["title", "slug"]


@admin.register(Section)
class SectionAdmin(ImportedAdmin):
    list_display = ["title", "article", "anchor", "level"]
    search_fields = ["title", "anchor"]


@admin.register(SectionEntity)
class SectionEntityAdmin(ImportedAdmin):
    list_display = ["value", "zone", "section"]
    list_filter = ["zone"]
    search_fields = ["value"]
    list_select_related = ["section"]


@admin.register(SectionEmbedding)
class SectionEmbeddingAdmin(ImportedAdmin):
    list_display = ["section", "digest", "updated_at"]
    fields = ["section", "digest", "updated_at"]  # the vectors are bytes, unreadable on a page
    list_select_related = ["section"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the public flow: staff read and may delete them, never add or edit them.

    Read-only fields are printed escaped by the admin, which is what pasted text needs.
    """

    readonly_fields = ["created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(SearchLog)
class SearchLogAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "channel", "guide", "result_count", "opened_url", "created_at"]
    list_filter = ["channel", "created_at"]
    search_fields = ["query"]
    date_hierarchy = "created_at"


@admin.register(Diagnosis)
class DiagnosisAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "outcome", "signature", "created_at"]
    list_filter = ["outcome", "created_at"]
    search_fields = ["error_text", "signature"]
    date_hierarchy = "created_at"
    exclude = ["token"]  # the person's private link: staff have the desk, not their link


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "vote", "guide_slug", "article_slug", "anchor", "created_at"]
    list_filter = ["vote", "created_at"]
    search_fields = ["guide_slug", "article_slug", "anchor", "signature"]


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    """Cases change on the help desk page, where update_case keeps status and resolution consistent."""

    list_display = ["reference", "name", "status", "assignee", "content_missing", "created_at", "desk_page"]
    list_select_related = ["assignee"]  # the nullable link Django's own join skips: a query per row otherwise
    list_filter = ["status", "content_missing", "created_at"]
    search_fields = ["reference", "name", "email"]
    fields = [
        "reference", "desk_page", "diagnosis", "name", "email", "details", "status", "assignee", "content_missing",
        "section", "guide_slug", "article_slug", "anchor", "created_at", "updated_at",
    ]
    readonly_fields = ["desk_page", "created_at", "updated_at"]

    @admin.display(description="Help desk")
    def desk_page(self, case: Case) -> str:
        return format_html('<a href="{}">Open in the help desk</a>', reverse("desk:case", args=[case.reference]))


# Outgoing mail and webhooks -------------------------------------------------------------------


class DeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: what was sent, what failed and when it is tried again (`manage.py deliver`)."""

    list_filter = ["state", "created_at"]
    readonly_fields = ["state", "attempts", "last_error", "next_attempt_at", "sent_at", "created_at"]
    date_hierarchy = "created_at"


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(DeliveryAdmin):
    list_display = ["subject", "to", "kind", "state", "attempts", "next_attempt_at", "created_at"]
    search_fields = ["to", "subject", "case__reference"]
    # The bodies hold the person's private link: staff have the desk, not their link.
    fields = ["case", "kind", "to", "subject", *DeliveryAdmin.readonly_fields]


class WebhookForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", validators=[URLValidator(schemes=["http", "https"])],
                         help_text=Webhook._meta.get_field("url").help_text)
    events = forms.MultipleChoiceField(
        choices=Webhook.Event.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )

    class Meta:
        model = Webhook
        fields = ["url", "active", "events", "secret"]


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["url", "active", "events", "created_at"]
    list_filter = ["active"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(DeliveryAdmin):
    list_display = ["event", "webhook", "case", "state", "status_code", "attempts", "next_attempt_at", "created_at"]
    list_filter = ["state", "event", "webhook", "created_at"]
    list_select_related = ["webhook", "case"]  # the admin's own select_related() skips the nullable case
    search_fields = ["case__reference", "last_error"]
    fields = ["webhook", "case", "event", "body", "status_code", *DeliveryAdmin.readonly_fields]
    readonly_fields = ["body", "status_code", *DeliveryAdmin.readonly_fields]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff issue tokens here. The token is shown once, on the page that answers the add
    form, and never again: only its digest is stored. Revoke by ticking "revoked" (or the
    list action), or delete the row."""

    list_display = ["name", "prefix", "scope", "user", "created_at", "last_used_at", "revoked"]
    list_filter = ["scope", "revoked"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        if obj is None:
            return ["name", "user", "scope"]
        return ["name", "prefix", "user", "scope", "revoked", "created_at", "last_used_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        # A token's owner and scope are what it was issued for: issue another rather than widen one.
        return self.readonly_fields + (["user", "scope"] if obj else [])

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return {"user": request.user.pk}

    def formfield_for_foreignkey(self, db_field: models.ForeignKey, request: HttpRequest, **kwargs) -> forms.Field:
        if db_field.name == "user":
            # A token acts as its user (replies are signed with their name): staff issue
            # tokens for themselves, and only a superuser for another account.
            owners = User.objects.filter(is_staff=True, is_active=True)
            kwargs["queryset"] = owners if request.user.is_superuser else owners.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.issued_token = tokens.fill_new(obj)  # only in memory, for response_add
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "token": obj,
                   "secret": obj.issued_token, "title": "API token created"}
        response = TemplateResponse(request, "admin/kb/apitoken/created.html", context)
        add_never_cache_headers(response)  # the one page that holds the token
        return response

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = queryset.update(revoked=True)
        self.message_user(request, f"{count} token{'s' if count != 1 else ''} revoked.")
