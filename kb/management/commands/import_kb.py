"""`manage.py import_kb [PATH ...] [--check]`: parse arguments, call import_content, print."""

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kb.importer import ImportFailed, import_content


class Command(BaseCommand):
    help = "Import (sync) markdown guides into the knowledge base. PATH is a guide folder or a folder of guides."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help="Guide folders or folders of guides (default: KB_CONTENT_DIR).")
        parser.add_argument(
            "--check", action="store_true", help="Parse and report everything without writing (a content lint)."
        )

    def handle(self, *args, paths: list[str], check: bool, **options) -> None:
        progress = self._progress if sys.stderr.isatty() else None
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

    def _progress(self, done: int, total: int) -> None:
        sys.stderr.write(f"\rrendering {done}/{total}")
        sys.stderr.flush()
