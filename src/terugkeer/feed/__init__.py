"""The detention feed, version 1: parsing, validation, ingest and quarantine."""
