"""Typed application keys of the catalog service."""

from aiohttp import web

from catalog_service.answers import SharedAnswers
from catalog_service.cursors import CursorCodec
from catalog_service.index import CatalogIndex
from catalog_service.projector import Projector
from catalog_service.read_model import ReadModel
from catalog_service.settings import CatalogSettings

SETTINGS = web.AppKey("settings", CatalogSettings)
CURSORS = web.AppKey("cursors", CursorCodec)
INDEX = web.AppKey("index", CatalogIndex)
READ_MODEL = web.AppKey("read_model", ReadModel)
PROJECTOR = web.AppKey("projector", Projector)
ANSWERS = web.AppKey("answers", SharedAnswers)
