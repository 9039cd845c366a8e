"""carpool sites package."""
