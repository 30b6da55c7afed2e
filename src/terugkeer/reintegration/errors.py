"""Errors of the reintegration services; the API turns each into problem+json with its status."""

from __future__ import annotations


class ReintegrationError(Exception):
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ReintegrationError):
    status = 404


class Invalid(ReintegrationError):
    status = 422


class ConsentRequired(ReintegrationError):
    """The person has not given (or has withdrawn) consent for registration."""

    status = 409


class Conflict(ReintegrationError):
    status = 409
