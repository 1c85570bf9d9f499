"""`releasekit check`: lint, build and test, logic tests, impact and diff of a branch."""
