"""API tokens: the staff-issued credential integrations send as `Authorization: Bearer <token>`
(issued and checked in tokens.py). Registered through kb.models, in the kb app."""

from django.db import models


class ApiToken(models.Model):
    """A staff-issued credential for the JSON API, acting as the staff account that owns it.

    Only a SHA-256 digest of the token is stored (the token is 256 random bits, so a
    plain hash is as strong as a slow one); the prefix lets staff tell tokens apart.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read: search, recommend and read cases"
        WRITE = "write", "Write: also change cases and vote on sections"

    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the ticket system's name.")
    user = models.ForeignKey(
        "auth.User", on_delete=models.CASCADE, related_name="kb_api_tokens",
        help_text="The staff account the token acts as; it must stay active and staff.",
    )
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=12, editable=False, help_text="The token's first characters.")
    digest = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the token, in hex.")
    revoked = models.BooleanField(default=False, help_text="A revoked token is refused from its next request on.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.WRITE
