"""`manage.py deliver`: send the mail and webhook calls that are due (new ones a request
could not send, and failures whose backoff has passed). Run it every minute from cron or
a timer; it prints what it did and exits."""

from django.core.management.base import BaseCommand

from kb.notify.outbox import deliver_due


class Command(BaseCommand):
    help = "Send due mail and webhook calls, retrying failures with exponential backoff."

    def handle(self, *args, **options) -> None:
        for name, outcomes in deliver_due().items():
            self.stdout.write(f"{name}: {outcomes['sent']} sent, {outcomes['failed']} failed")
