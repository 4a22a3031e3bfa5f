"""Filters: scorers that score records; the filter stage decides."""
