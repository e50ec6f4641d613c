"""API fuzzing: schemathesis over the whole OpenAPI, as each demo login (`python -m tests.fuzz`)."""
