"""Compile: parse a site's mapping.yml into a typed model and turn it into harmonized common-schema tables."""
