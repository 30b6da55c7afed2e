"""Reintegration registration at municipalities: cases, the five basic conditions, activities."""
