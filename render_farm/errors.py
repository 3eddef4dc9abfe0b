"""Re-export of the shared error hierarchy (it lives in storage so every layer can raise it)."""
from storage.errors import (  # noqa: F401
    Conflict,
    FoleyError,
    IntegrityError,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    TransientError,
)
