"""Bearer tokens, roles and scopes (SPEC §8)."""
