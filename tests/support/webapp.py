"""The web app's test client: in-process over https://testserver (Starlette's TestClient).

The fixtures that build the app on each database live in tests/integration/conftest.py.
"""

from __future__ import annotations

import warnings

from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; plain httpx is what this project installs.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient as TestClient

BASE_URL = "https://testserver"
