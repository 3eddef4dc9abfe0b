"""foley_model package."""
