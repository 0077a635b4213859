"""One emulator (HTTPS on 127.0.0.1) for the whole session, restored after every test.

`emu` is the fixture tests use: the running emulator, whose tenant, identity state, clock,
settings, faults, counters, throttling and mail store are put back after each test.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta

import pytest

from m365emu.identity.store import IdentitySettings
from m365emu.state import Throttling, utc_now
from m365emu.testing import RunningEmulator, start_emulator


@pytest.fixture(scope="session")
def emulator_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with start_emulator(workdir=tmp_path_factory.mktemp("m365emu")) as running:
        yield running


@pytest.fixture
def emu(emulator_session: RunningEmulator) -> Iterator[RunningEmulator]:
    state = emulator_session.state
    pristine = copy.deepcopy(state.tenant)
    yield emulator_session
    with state.lock:
        state.tenant = copy.deepcopy(pristine)
        state.clock = utc_now
        state.clock_offset = timedelta(0)
        state.identity.clear()
        state.identity.settings = IdentitySettings()
        state.faults.clear()
        state.counters.reset()
        state.throttling = Throttling()
        state.mail = None  # the Graph half rebuilds its store from the tenant on first use
