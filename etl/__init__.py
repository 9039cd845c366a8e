"""carpool etl package."""
