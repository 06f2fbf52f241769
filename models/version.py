"""The installed version of Intervene (the API's, the metrics', the webhooks' User-Agent)."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("intervene")
except PackageNotFoundError:  # running from a source tree that was not installed
    VERSION = "0.0.0"
