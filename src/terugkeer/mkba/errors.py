"""The one error of the cost-benefit analysis: bad input (a file, a parameter, a scenario).

It is a ``ValueError``, so the command line reports it as one plain line and exit code 2 and
the API as a 400/422 problem."""

from __future__ import annotations


class MkbaError(ValueError):
    """Input the analysis cannot use, worded for the analyst (one line)."""
