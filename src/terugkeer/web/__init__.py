"""The web application: JSON API under /api/v1 (and, in later issues, the pages)."""
