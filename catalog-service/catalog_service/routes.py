from aiohttp import web

from catalog_service import handlers


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/get_content", handlers.get_content)
    # Row keys come from CSV cells and may contain '/'.
    app.router.add_get("/contents/{id:.+}", handlers.get_content_item)
