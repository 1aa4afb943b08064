"""URL path converters: one path segment that names something the database looks up."""


class KeyConverter:
    """A slug, token or reference segment: no slash and no control character.

    A NUL that reached a lookup would be a 500 on PostgreSQL (text cannot hold it); no real
    key contains one, so such a path is simply not found.
    """

    regex = r"[^/\x00-\x1f\x7f]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
