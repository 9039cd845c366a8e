"""Onboarding: profile an unfamiliar export and scaffold a draft mapping for a data manager to review."""
