"""DUI vendors (éditeurs), identified by their SIREN."""
