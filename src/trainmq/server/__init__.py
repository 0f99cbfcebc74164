"""The SQS-compatible HTTP endpoint (``trainmq serve``)."""

from .app import SQSApp
from .auth import Credentials, load_credentials
from .run import ServerConfig, serve

__all__ = ["Credentials", "SQSApp", "ServerConfig", "load_credentials", "serve"]
