"""Auditing the render history: verify the event chain and every stored blob (verify.py), and
show jobs, their provenance and lineage as text, JSON or CSV (history.py). The queries live in
storage.repos.history and storage.repos.lineage.

Imported where used (they pull in more): export.py (JSON lines and OpenLineage RunEvents),
reproduce.py (re-render a job or one window and compare bytes; loads the model), prune.py
(archive, delete and sign a checkpoint; verify an archive)."""
from render_farm.audit.history import FORMATS, Lineage, format_jobs, format_lineage, job_record, load_lineage
from render_farm.audit.verify import Finding, VerifyReport, verify

__all__ = [
    "FORMATS",
    "Finding",
    "Lineage",
    "VerifyReport",
    "format_jobs",
    "format_lineage",
    "job_record",
    "load_lineage",
    "verify",
]
