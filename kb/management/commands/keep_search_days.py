"""`manage.py keep_search_days [--days N]`: count the settled days' searches for the desk's
insights (kb/desk/searchdays.py) ahead of the page's first view, which would otherwise do it.
Run it after `migrate` on a site with a long search log, or nightly; it is idempotent."""

from django.core.management.base import BaseCommand, CommandError

from kb.desk import searchdays
from kb.desk.period import MAX_DAYS, Period


class Command(BaseCommand):
    help = "Count and keep the searches of the last N settled days for the desk's insights."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=MAX_DAYS, help=f"days back from today (1 to {MAX_DAYS})")

    def handle(self, *args, days: int, **options) -> None:
        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_DAYS}.")
        kept = searchdays.keep(Period.last(days))
        self.stdout.write(f"{len(kept)} settled days kept, {sum(kept.values())} searches.")
