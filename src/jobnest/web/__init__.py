"""The web edge of the daemon: the REST API, its event stream and the OpenAPI document."""

from jobnest.web.app import create_app

__all__ = ["create_app"]
