"""Validate: quarantine of failing rows with rule ids, the per-site validation report, and pseudonymization."""
