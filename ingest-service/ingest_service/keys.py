from aiohttp import web

from ingest_service.settings import IngestSettings

SETTINGS = web.AppKey("settings", IngestSettings)
