"""The composition root: turns ``Settings`` into engines, adapters and services.

Entry points (web, worker, CLI) call ``build``; tests call it with their own settings
and clock. Nothing here runs at import time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine

from replygate.clock import SystemClock
from replygate.config import Settings
from replygate.db import keys, migrate
from replygate.db.engine import make_engine
from replygate.db.uow import SqlAlchemyUnitOfWork, session_factory
from replygate.errors import ConfigurationError
from replygate.secretbox import SecretBox, load_or_create
from replygate.services.ports import Clock


@dataclass
class Container:
    settings: Settings
    engine: Engine
    secrets: SecretBox
    clock: Clock = field(default_factory=SystemClock)
    # Set by a Graph change notification: the worker in this process reads the folder now.
    read_now: threading.Event = field(default_factory=threading.Event)

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(session_factory(self.engine), self.clock)

    def check_schema(self) -> None:
        """Refuse to run on a database whose schema is not at this version's head."""
        current, head = migrate.current_revision(self.engine), migrate.head_revision(self.engine)
        if current != head:
            raise ConfigurationError(
                f"the database schema is at {current or 'nothing'}, this replygate needs {head}",
                fix="run `replygate db upgrade`",
            )

    def verify_secret_key(self) -> None:
        with self.uow() as uow:
            keys.verify_or_record(uow.session, self.secrets)
            uow.commit()


def build(settings: Settings, *, clock: Clock | None = None) -> Container:
    engine = make_engine(settings.effective_database_url)
    env_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    box = load_or_create(env_key, settings.secret_key_file)
    return Container(settings=settings, engine=engine, secrets=box, clock=clock or SystemClock())
