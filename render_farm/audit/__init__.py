"""Auditing the render history: verify the event chain and every stored blob (verify.py), and
show jobs and their lineage as text, JSON or CSV (history.py). The queries live in
storage.repos.history."""
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
