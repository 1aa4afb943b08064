"""`manage.py build_query_model`: build the copy of the embedding model that pastes are
embedded by (kb/search/semantic.py), once per machine: seconds the first time, a check
after. `import_kb` builds it too, and gunicorn's start runs this command (gunicorn.conf.py);
a deployment image can run it once at build time instead."""

from django.core.management.base import BaseCommand, CommandError

from kb.search import semantic


class Command(BaseCommand):
    help = "Build the query copy of the embedding model unless it is built (import_kb and gunicorn's start run it)."
    requires_system_checks = []  # gunicorn runs it at every start: only the build's own work

    def handle(self, *args, **options) -> None:
        if not semantic.available():
            self.stdout.write("semantic search is off (KB_SEMANTIC=0, or its packages are missing): nothing to build")
            return
        try:
            self.stdout.write(f"query model: {semantic.build_query_model()}")
        except Exception as error:
            raise CommandError(f"the query model cannot be built ({error}): pastes are embedded by the package's model") from error
