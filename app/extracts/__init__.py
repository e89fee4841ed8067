"""Ingestion of the vendors' monthly usage extracts (SPEC §3)."""
