"""The help desk's side: case queue and detail, resolutions, and content-gap insights."""
