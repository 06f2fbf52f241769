"""The app the live-server tests run under uvicorn (tests/api/conftest.py): the real app with
the tests' recording launcher, as every in-process API test has it.

`api.main:create_app` would start flow runs through Prefect at PREFECT_API_URL, which no test
of these sets: an execute that passed validation was a 503, and only when a generated request
happened to get that far (the fuzzer's, depending on how its workers interleaved).
"""

from fastapi import FastAPI

from api.main import create_app as create_real_app
from tests.fakes import RecordingLauncher


def create_app() -> FastAPI:
    return create_real_app(launcher=RecordingLauncher())
