"""ESMS Numérique usage monitoring service."""
