from aiohttp import web

from ingest_service import handlers
from ingest_service.settings import IngestSettings
from service_common.health import stack_readyz


def setup_routes(app: web.Application, settings: IngestSettings) -> None:
    app.router.add_post("/upload_csv", handlers.upload_csv)
    app.router.add_get("/fetch_csv_status/{task_id}", handlers.fetch_csv_status)
    app.router.add_get("/uploads", handlers.list_uploads)
    app.router.add_delete("/uploads/{task_id}", handlers.cancel_upload)
    app.router.add_post("/uploads/{task_id}/revert", handlers.revert_upload)
    app.router.add_delete("/datasets/{name}", handlers.delete_dataset)
    # The gateway's GET /readyz: the ingest API checks itself, auth and the catalog.
    peers = {"auth": f"http://{settings.auth_upstream}", "catalog": f"http://{settings.catalog_upstream}"}
    app.router.add_get("/stack/readyz", stack_readyz("ingest", peers), allow_head=True)
