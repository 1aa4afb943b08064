"""Telling people and other tools about cases: outgoing mail and webhooks, queued in the
same transaction as the change they announce and delivered after it commits."""
