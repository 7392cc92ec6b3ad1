"""Reference values for the pacbound tests, each with its provenance."""
