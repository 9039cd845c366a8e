"""carpool warehouse package."""
