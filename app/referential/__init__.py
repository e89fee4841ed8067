"""Reference data of the programme: regions, départements, FINESS numbers and the FINESS file."""
