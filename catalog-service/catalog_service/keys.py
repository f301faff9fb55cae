"""Typed application keys of the catalog service."""

from aiohttp import web

from catalog_service.cursors import CursorCodec
from catalog_service.index import CatalogIndex
from catalog_service.settings import CatalogSettings

SETTINGS = web.AppKey("settings", CatalogSettings)
CURSORS = web.AppKey("cursors", CursorCodec)
INDEX = web.AppKey("index", CatalogIndex)
