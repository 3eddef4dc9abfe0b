"""The project's error hierarchy: small, shared by every package above storage.

The CLI turns any FoleyError into one line on stderr and a non-zero exit.
"""


class FoleyError(Exception):
    """Base of every error the product raises on purpose."""

    exit_code = 1


class InvalidInput(FoleyError):
    """The caller gave something unusable: a bad file, parameter, key or path."""

    exit_code = 2


class NotFound(FoleyError):
    """A job, window, blob or file that does not exist."""

    exit_code = 3


class Conflict(FoleyError):
    """The target exists and differs (a key written with other bytes, an output path present)."""

    exit_code = 4


class IntegrityError(FoleyError):
    """Stored bytes do not match their recorded SHA-256, or a hash chain is broken."""

    exit_code = 5


class TransientError(FoleyError):
    """Worth retrying: a service is unreachable, throttling, or answered 5xx."""

    exit_code = 6


class ServiceUnavailable(TransientError):
    """A database, broker or blob store cannot be reached."""
