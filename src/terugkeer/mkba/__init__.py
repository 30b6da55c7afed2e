"""The social cost-benefit analysis (MKBA) of reintegration (issue 16, docs/mkba.md)."""
