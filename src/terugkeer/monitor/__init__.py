"""The monitor (issue 15): the five basic conditions and recidivism by cohort, with their
uncertainty and with privacy protection (docs/monitor.md)."""
