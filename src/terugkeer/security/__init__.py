"""Who may see what: encryption at rest (and, in later changes, accounts, roles and audit)."""
