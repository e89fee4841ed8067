"""Funded projects: funding and balance rules (annexes 3 and 5), storage, service and API."""
