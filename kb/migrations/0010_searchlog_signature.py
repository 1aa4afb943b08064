"""Search logs get the error signature diagnoses have, so the desk can group searches by
error; rows logged before are backfilled from their stored (redacted) text, which is what
log_search computes it from."""

from django.db import migrations, models

BATCH = 2000


def backfill(apps, schema_editor):
    from kb.search.insights import error_signature

    SearchLog = apps.get_model("kb", "SearchLog")
    batch = []
    for log in SearchLog.objects.only("pk", "query").iterator(chunk_size=BATCH):
        log.signature = error_signature(log.query)
        if log.signature:
            batch.append(log)
        if len(batch) >= BATCH:
            SearchLog.objects.bulk_update(batch, ["signature"])
            batch = []
    SearchLog.objects.bulk_update(batch, ["signature"])


class Migration(migrations.Migration):

    dependencies = [
        ("kb", "0009_api_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="searchlog",
            name="signature",
            field=models.CharField(
                blank=True, default="", max_length=64,
                help_text="The error's signature, as a diagnosis's; blank when the text names no error.",
            ),
            preserve_default=False,
        ),
        migrations.AddIndex(
            model_name="searchlog",
            index=models.Index(fields=["created_at", "signature"], name="kb_searchlog_created_signature"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
