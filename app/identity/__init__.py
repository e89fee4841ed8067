"""People who sign in with their organisation's OpenID Connect provider, and their grants."""
