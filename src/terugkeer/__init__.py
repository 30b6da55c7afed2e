"""terugkeer: the information system behind the return of (ex-)detainees into society."""

__version__ = "0.1.0"
