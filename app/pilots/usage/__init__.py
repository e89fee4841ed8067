"""The pilots' monthly Mon espace santé usage: rows pushed by vendors and ARS, revisions kept."""
