"""What a test reads straight from a stack's store."""

from pymongo.database import Database


def leftovers(db: Database) -> dict[str, int]:
    """What uploads leave in the store: jobs, and GridFS files and chunks."""
    return {name: db[name].count_documents({}) for name in ("import_jobs", "uploads.files", "uploads.chunks")}
