"""The store: tables, engine, migrations."""
