"""Mutation testing of the pure cores (``make mutation``): the runner script, the report
generator and the reviewed list of surviving mutants."""
