"""One router per area of the API (each module's ``router``), included by ``serving.app.create_app`` in the
order routes are tried."""

from serving.api.routers import admin, health, models_admin, offer_decisions, offers, points, scores

__all__ = ["admin", "health", "models_admin", "offer_decisions", "offers", "points", "scores"]
