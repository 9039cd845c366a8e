"""carpool analysis package."""
