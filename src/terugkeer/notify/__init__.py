"""Notifications that cannot go missing: rules, obligations, delivery, acknowledgement and an
independent reconciliation. Reads detention data; detention knows nothing of it."""
