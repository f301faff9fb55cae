from aiohttp import web

from ingest_service import handlers


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/upload_csv", handlers.upload_csv)
    app.router.add_get("/fetch_csv_status/{task_id}", handlers.fetch_csv_status)
    app.router.add_get("/uploads", handlers.list_uploads)
    app.router.add_delete("/uploads/{task_id}", handlers.cancel_upload)
    app.router.add_delete("/datasets/{name}", handlers.delete_dataset)
