from aiohttp import web

from catalog_service import handlers


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/get_content", handlers.get_content)
    # Row keys come from CSV cells and may contain '/'.
    app.router.add_get("/contents/{id:.+}", handlers.get_content_item)
    app.router.add_get("/datasets", handlers.list_datasets)
    app.router.add_get("/datasets/{name}", handlers.get_dataset)
    app.router.add_get("/datasets/{name}/contents", handlers.get_dataset_contents)
    app.router.add_get("/datasets/{name}/contents/{id:.+}", handlers.get_dataset_item)
    app.router.add_get("/datasets/{name}/facets", handlers.get_facets)
    app.router.add_get("/datasets/{name}/export", handlers.get_export)
