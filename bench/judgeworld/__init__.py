"""An independent generator and scorer of the toy foley world (see /work/shared/TOYWORLD.md)."""
