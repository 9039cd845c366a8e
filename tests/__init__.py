"""carpool test suite: tests/unit (fast, pure), tests/functional (end-to-end on the demo).

A regular package, so `tests.<module>` is this folder even where an installed distribution
(vantage6) ships a top-level `tests` package of its own."""
