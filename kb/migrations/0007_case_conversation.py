"""The conversation on a case (CaseEvent; staff notes move into it), the "waiting on
requester" status, and the outbox for mail and webhooks."""

import django.db.models.deletion
import django.utils.timezone
import secrets
from django.conf import settings
from django.db import migrations, models


def notes_to_events(apps, schema_editor):
    """Each case's appended staff notes become one internal note, dated at the case's last change."""
    Case, CaseEvent = apps.get_model("kb", "Case"), apps.get_model("kb", "CaseEvent")
    CaseEvent.objects.bulk_create(
        CaseEvent(case=case, kind="note", body=case.staff_notes, created_at=case.updated_at)
        for case in Case.objects.exclude(staff_notes="").only("pk", "staff_notes", "updated_at").iterator()
    )


def events_to_notes(apps, schema_editor):
    Case, CaseEvent = apps.get_model("kb", "Case"), apps.get_model("kb", "CaseEvent")
    for case in Case.objects.filter(events__kind="note").distinct():
        notes = CaseEvent.objects.filter(case=case, kind="note").order_by("created_at", "pk")
        case.staff_notes = "\n\n".join(note.body for note in notes)
        case.save(update_fields=["staff_notes"])


class Migration(migrations.Migration):

    dependencies = [
        ('kb', '0006_guide_activities'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Webhook',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('url', models.URLField(help_text='Receives a POST of JSON for each event.', max_length=500)),
                ('secret', models.CharField(default=secrets.token_urlsafe, help_text='Signs each body (HMAC-SHA256, header X-KB-Signature); give the same secret to the receiver.', max_length=100)),
                ('active', models.BooleanField(default=True)),
                ('events', models.JSONField(blank=True, default=list, help_text='Event names; empty means every event.')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['url'],
            },
        ),
        migrations.AlterField(
            model_name='case',
            name='status',
            field=models.CharField(choices=[('new', 'New'), ('in_progress', 'In progress'), ('waiting', 'Waiting on requester'), ('resolved', 'Resolved')], db_index=True, default='new', max_length=12),
        ),
        migrations.CreateModel(
            name='CaseEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('status', 'Status change'), ('reply', 'Reply to the person'), ('note', 'Internal note'), ('answer', 'Answer from the person')], max_length=8)),
                ('body', models.TextField(blank=True, help_text='The message; an answer is stored with secrets redacted.')),
                ('old_status', models.CharField(blank=True, choices=[('new', 'New'), ('in_progress', 'In progress'), ('waiting', 'Waiting on requester'), ('resolved', 'Resolved')], max_length=12)),
                ('new_status', models.CharField(blank=True, choices=[('new', 'New'), ('in_progress', 'In progress'), ('waiting', 'Waiting on requester'), ('resolved', 'Resolved')], max_length=12)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('author', models.ForeignKey(blank=True, help_text="The staff member; empty for the person's answers and changes the portal made.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('case', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='kb.case')),
            ],
            options={
                'ordering': ['created_at', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='OutgoingEmail',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(choices=[('pending', 'Waiting to be sent'), ('sent', 'Sent'), ('failed', 'Failed')], db_index=True, default='pending', max_length=8)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, db_index=True, default=django.utils.timezone.now, help_text='Empty once sent, or after the last attempt failed.', null=True)),
                ('last_error', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('kind', models.CharField(help_text='Which template: kb/mail/<kind>.txt and .html.', max_length=40)),
                ('to', models.EmailField(max_length=254)),
                ('subject', models.CharField(max_length=300)),
                ('text_body', models.TextField()),
                ('html_body', models.TextField()),
                ('case', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='kb.case')),
            ],
            options={
                'verbose_name': 'outgoing email',
                'ordering': ['-created_at', '-pk'],
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(choices=[('pending', 'Waiting to be sent'), ('sent', 'Sent'), ('failed', 'Failed')], db_index=True, default='pending', max_length=8)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, db_index=True, default=django.utils.timezone.now, help_text='Empty once sent, or after the last attempt failed.', null=True)),
                ('last_error', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('event', models.CharField(choices=[('case.opened', 'A case is opened'), ('case.replied', 'The desk replies'), ('case.answered', 'The person answers'), ('case.resolved', 'A case is resolved')], max_length=40)),
                ('body', models.TextField(help_text='The JSON posted, byte for byte what was signed.')),
                ('status_code', models.PositiveSmallIntegerField(blank=True, help_text="The last answer's HTTP status.", null=True)),
                ('case', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='kb.case')),
                ('webhook', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='kb.webhook')),
            ],
            options={
                'verbose_name_plural': 'webhook deliveries',
                'ordering': ['-created_at', '-pk'],
                'abstract': False,
            },
        ),
        migrations.RunPython(notes_to_events, events_to_notes),
        migrations.RemoveField(
            model_name='case',
            name='staff_notes',
        ),
    ]
