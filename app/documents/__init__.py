"""Printable documents (PDF) rendered from pure document models: burn-in reports, later shipping manifests and
certificates. `pdf` holds the shared page template; one module per document type renders its model."""
