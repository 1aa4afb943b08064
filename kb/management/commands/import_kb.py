"""`manage.py import_kb [PATH ...] [--check]`: parse arguments, call import_content, then
sync_embeddings once the import has committed, and print."""

import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kb.importer import ImportFailed, import_content
from kb.search import semantic


class Command(BaseCommand):
    help = "Import (sync) markdown guides into the knowledge base. PATH is a guide folder or a folder of guides."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help="Guide folders or folders of guides (default: KB_CONTENT_DIR).")
        parser.add_argument(
            "--check", action="store_true", help="Parse and report everything without writing (a content lint)."
        )
        parser.add_argument(
            "--no-embed", action="store_true", help="Leave sections' semantic embeddings as they are (run again to embed)."
        )

    def handle(self, *args, paths: list[str], check: bool, no_embed: bool, **options) -> None:
        progress = self._progress("rendering") if sys.stderr.isatty() else None
        try:
            report = import_content(paths or None, dry_run=check, progress=progress)
        except ImportFailed as exc:
            for error in exc.errors:
                self.stderr.write(f"error: {error}")
            raise CommandError(f"import aborted, nothing was written: {len(exc.errors)} bad file(s)") from None
        finally:
            if progress:
                sys.stderr.write("\r\033[K")
        for warning in report.warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
        self.stdout.write(("check: " if check else "") + report.summary())
        if check or no_embed:
            return
        if not semantic.available():
            self.stdout.write("semantic search is off (KB_SEMANTIC=0, or its packages are missing): sections were not embedded")
            return
        # The text import has committed: pages and full-text search serve it while this runs.
        progress = self._progress("embedding") if sys.stderr.isatty() else None
        try:
            result = semantic.sync_embeddings(progress=progress)
        finally:
            if progress:
                sys.stderr.write("\r\033[K")
        self.stdout.write(f"{result.embedded} of {result.total} section(s) embedded")
        try:
            call_command("build_query_model", stdout=self.stdout)
        except CommandError as error:  # the copy only speeds pastes up: the import itself succeeded
            self.stderr.write(self.style.WARNING(f"warning: {error}"))

    @staticmethod
    def _progress(what: str):
        def show(done: int, total: int) -> None:
            width = 30
            filled = width * done // max(total, 1)
            sys.stderr.write(f"\r{what} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            sys.stderr.flush()
        return show
