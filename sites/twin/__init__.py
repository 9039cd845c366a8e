"""carpool sites.twin package."""
