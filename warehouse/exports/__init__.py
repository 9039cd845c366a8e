"""Exports of the warehouse in formats the field reads: CDISC ADaM and the OMOP CDM."""
