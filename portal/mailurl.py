"""EMAIL_URL -> Django's EMAIL_* settings.

A small parser rather than dj-email-url, whose last release is from 2022: we need two
schemes and three options, and a bad value must fail at start-up with the variable's name.

    smtp://user:password@host:587?tls=1     STARTTLS (smtps:// or ?ssl=1 for implicit TLS)
    smtp://host:25?timeout=10               seconds per connection (default 10)
    console://                              print each message to the log (nothing is sent)
"""

from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
}
FLAGS = {"1": True, "true": True, "0": False, "false": False}


def email_settings(url: str, name: str = "EMAIL_URL") -> dict:
    """The EMAIL_* settings `url` describes; ImproperlyConfigured naming `name` if it is not valid."""
    try:
        parts = urlsplit(url)
        port = parts.port
        options = {key: values[-1] for key, values in parse_qs(parts.query, strict_parsing=bool(parts.query)).items()}
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} is not a valid URL: {error}") from None
    if parts.scheme not in BACKENDS:
        raise ImproperlyConfigured(f"{name} must start smtp://, smtps:// or console://, got {parts.scheme!r}")
    unknown = set(options) - {"tls", "ssl", "timeout"}
    if unknown or any(options.get(flag, "0").lower() not in FLAGS for flag in ("tls", "ssl")):
        raise ImproperlyConfigured(f"{name} takes tls=1, ssl=1 and timeout=<seconds>, got {parts.query!r}")
    if not options.get("timeout", "10").isdigit():
        raise ImproperlyConfigured(f"{name}'s timeout must be whole seconds, got {options['timeout']!r}")
    ssl = parts.scheme == "smtps" or FLAGS[options.get("ssl", "0").lower()]
    tls = FLAGS[options.get("tls", "0").lower()]
    if ssl and tls:
        raise ImproperlyConfigured(f"{name}: choose tls (STARTTLS) or ssl (implicit TLS), not both")
    if parts.scheme != "console" and not parts.hostname:
        raise ImproperlyConfigured(f"{name} needs a host, e.g. smtp://mail.example.com:587?tls=1")
    return {
        "EMAIL_BACKEND": BACKENDS[parts.scheme],
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": port or (465 if ssl else 587 if tls else 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": tls,
        "EMAIL_USE_SSL": ssl,
        "EMAIL_TIMEOUT": int(options.get("timeout", "10")),
    }
