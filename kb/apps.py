from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.urls import register_converter


class KbConfig(AppConfig):
    name = "kb"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .converters import KeyConverter
        from .search.ranking import shipped_ranker

        shipped_ranker()  # the ranker's weights: a broken weights file stops start-up, not a search
        register_converter(KeyConverter, "key")  # before any URLconf is imported

        # Saving or deleting a guide, or deleting an article, ends the content generation:
        # an import that changes a guide's content saves the guide, and so do the admin and a shell.
        guide, article = self.get_model("Guide"), self.get_model("Article")
        post_save.connect(_content_changed, sender=guide, dispatch_uid="kb-content-guide")
        post_delete.connect(_content_changed, sender=guide, dispatch_uid="kb-content-guide")
        post_delete.connect(_content_changed, sender=article, dispatch_uid="kb-content-article")


def _content_changed(sender, **kwargs) -> None:
    from .cache import content_changed

    content_changed()
