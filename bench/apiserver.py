"""The API server of the API benchmark, in its own process so its memory can be measured.

    python -m bench.apiserver DATABASE_URL DATA_DIR PORT

Migrates the database, creates a requester with an API token (printed as the first line of
stdout), then serves the app over plain HTTP on 127.0.0.1 (TLS is not what is measured)
with the background loops off.
"""

from __future__ import annotations

import secrets
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn

from replygate.bootstrap import build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.services import accounts
from replygate.services.account_ports import SCOPES_BY_ROLE, Role
from replygate.web.app import create_app


def main(database_url: str, data_dir: str, port: int) -> None:
    settings = load_settings(data_dir=Path(data_dir), database_url=database_url, instance="bench")
    container = build(settings)
    migrate.upgrade(container.engine)
    user = accounts.create_user(
        container.uow(),
        username="pipeline",
        password=secrets.token_urlsafe(24),  # never used: the token is
        role=Role.REQUESTER,
        email="pipeline@contoso.test",
        actor="bench",
    )
    issued = accounts.create_api_token(
        container.uow(),
        container.clock,
        user_id=user.id,
        name="bench",
        scopes=SCOPES_BY_ROLE[Role.REQUESTER],
        expires_in=timedelta(days=1),
    )
    print(issued.secret, flush=True)
    app = create_app(container, workers=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
