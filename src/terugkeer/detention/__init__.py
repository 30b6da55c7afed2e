"""Detention periods, derived from their feed events. Knows nothing of who is told."""
