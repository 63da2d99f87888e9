"""The document pipeline: ingest, extract, validate, archive."""
