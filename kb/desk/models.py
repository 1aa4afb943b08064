"""The insights page's searches counted once per settled day (kb/desk/searchdays.py), so
the page sums days instead of grouping every logged search in its range."""

from django.db import models


class SearchDay(models.Model):
    """A day (site time zone) whose searches are counted in SearchDayGroup (kb/desk/searchdays.py),
    with what the log held for it then, so a late or deleted search shows the count is stale."""

    day = models.DateField(unique=True)
    searches = models.PositiveIntegerField()
    last_id = models.BigIntegerField(null=True, help_text="The day's highest search-log id when counted.")
    version = models.PositiveSmallIntegerField(help_text="Counted by this version of the grouping rules.")
    counted_at = models.DateTimeField(help_text="When; names the sums cached from these counts.")

    def __str__(self) -> str:
        return f"{self.day}: {self.searches} searches"


class SearchDayGroup(models.Model):
    """One day's searches of one group (an error signature, or a text naming no error), as
    counted for each of the insights page's search tables, with each table's latest search."""

    day = models.DateField()
    key = models.TextField(help_text="The signature, or the text lower-cased without outer spaces.")
    signature = models.CharField(max_length=64, blank=True)
    top = models.PositiveIntegerField()
    top_latest = models.BigIntegerField(null=True)
    unanswered = models.PositiveIntegerField()
    unanswered_latest = models.BigIntegerField(null=True)
    unopened = models.PositiveIntegerField()
    unopened_latest = models.BigIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["day", "signature"], name="kb_searchdaygroup_day_sig")]

    def __str__(self) -> str:
        return f"{self.day} {self.key[:60]}: {self.top}"
