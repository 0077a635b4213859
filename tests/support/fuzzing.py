"""How long the fuzz tests run: bounded in `make test`, as long as asked by `make fuzz`.

`REPLYGATE_FUZZ_EXAMPLES` sets the examples per MIME fuzz test and
`REPLYGATE_FUZZ_API_EXAMPLES` those per API operation; unset, the bounded counts of
`make test` apply and the API run is derandomized (the same cases on every run).
"""

from __future__ import annotations

import os


def _count(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


MIME_EXAMPLES = _count("REPLYGATE_FUZZ_EXAMPLES")
API_EXAMPLES = _count("REPLYGATE_FUZZ_API_EXAMPLES")
LONG_RUN = MIME_EXAMPLES is not None or API_EXAMPLES is not None
