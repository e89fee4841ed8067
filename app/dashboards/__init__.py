"""Read-only dashboards for ARS and GRADeS, and the exports (CSV, XLSX)."""
