"""`manage.py build_query_model`: build the copy of the embedding model that pastes are
embedded by (kb/search/semantic.py), once per machine. `import_kb` runs it, and so does
gunicorn's start (gunicorn.conf.py), on every node; seconds the first time, nothing after."""

from django.core.management.base import BaseCommand

from kb.search import semantic


class Command(BaseCommand):
    help = "Build the query copy of the embedding model unless it is built (import_kb and gunicorn run it)."

    def handle(self, *args, **options) -> None:
        if not semantic.available():
            return
        try:
            path = semantic.build_query_model()
        except Exception as error:  # the copy only speeds queries up: a failure must not stop an import or a start
            self.stderr.write(self.style.WARNING(
                f"warning: the query model cannot be built ({error}): pastes are embedded by the package's model"))
        else:
            self.stdout.write(f"query model: {path}")
