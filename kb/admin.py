from django.contrib import admin

from .models import Article, Guide, Section


@admin.register(Guide)
class GuideAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "base_url", "imported_at"]
    search_fields = ["title", "slug"]
    readonly_fields = ["imported_at"]


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "guide", "slug", "position", "imported_at"]
    list_filter = ["guide"]
    search_fields = ["title", "slug"]
    raw_id_fields = ["parent"]


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    list_display = ["title", "article", "anchor", "level"]
    search_fields = ["title", "anchor"]
    raw_id_fields = ["article"]
