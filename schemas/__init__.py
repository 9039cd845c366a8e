"""carpool schemas package."""
