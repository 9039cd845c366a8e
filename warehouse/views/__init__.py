"""SQL views of the warehouse: one view per .sql file (see warehouse/build.py)."""
