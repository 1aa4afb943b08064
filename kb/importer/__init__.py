"""Importing markdown guides: `import_content()` is the entry point; see sync.py."""

from .sync import ImportFailed, ImportReport, import_content

__all__ = ["ImportFailed", "ImportReport", "import_content"]
