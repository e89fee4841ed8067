"""The append-only audit trail of every write."""
