"""The ingest service: the upload API (``ingest-api``) and the import worker (``ingest-worker``), one package."""
