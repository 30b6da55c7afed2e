"""Shared vocabulary: identifiers, code lists and enums. Pure: no database, no I/O beyond package data."""
