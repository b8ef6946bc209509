"""The HTTP interface: FastAPI routes over the services (thin: check, call a service, shape the answer).

Today it serves MLflow's REST protocol (tracking, artifacts proxy, logged models, model registry);
smalt's own REST API grows here too. ``create_app`` builds the application for an open workspace.
"""

from smalt.server.app import create_app

__all__ = ["create_app"]
