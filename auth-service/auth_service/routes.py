from aiohttp import web

from auth_service import handlers


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/signup", handlers.signup)
    app.router.add_post("/login", handlers.login)
    app.router.add_post("/token/refresh", handlers.refresh)
    app.router.add_post("/logout", handlers.logout)
    app.router.add_get("/me", handlers.me)
    app.router.add_get("/.well-known/jwks.json", handlers.jwks)
    app.router.add_get("/users", handlers.list_users)
    app.router.add_patch("/users/{user_id}", handlers.update_user)
