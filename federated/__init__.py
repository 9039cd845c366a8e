"""carpool's federated algorithm: per-site partials and a central coordinator (vantage6 shape)."""
