"""schemathesis against the real app (WSGI) on the demo shop: every operation, with a read, a write and an admin key.

Valid and invalid requests are generated from /openapi.json itself; each
answer must not be a 5xx, must have a status the document lists for that
operation, and must match the documented schema. A bounded number of examples
per operation and mode keeps the whole test well under a minute on 2 cores.
"""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings as hsettings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance  # noqa: E402

from recommender import store
from recommender.serving import keys  # noqa: E402

# Per operation, key and mode; RECOMMENDER_FUZZ_EXAMPLES=100 for a deeper run by hand.
EXAMPLES = int(os.environ.get("RECOMMENDER_FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(trained_template, tmp_path_factory):
    """A closed app (keys required) on a private copy of the trained demo shop, and a key per role."""
    import shutil

    from api import create_app
    from recommender.config import load_settings

    root = tmp_path_factory.mktemp("fuzz")
    shutil.copy(trained_template / "shop.db", root / "shop.db")
    shutil.copytree(trained_template / "models", root / "models")
    settings = load_settings(environ={}, overrides={"db": root / "shop.db", "model_dir": root / "models"})
    settings.privacy.decision_log = False
    settings.serve.model_check_seconds = 0.0
    db = store.connect(settings.db)
    tokens = {role: keys.create(db, role, f"fuzz-{role}")[1] for role in keys.ROLES}
    db.conn.close()
    return create_app(settings), tokens


def test_every_operation_with_every_key(fuzz_app):
    app, tokens = fuzz_app
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    sent: dict[str, int] = {}
    statuses: dict[int, int] = {}

    for role, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"}
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(generation_mode=mode)

                @hsettings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                           phases=[Phase.explicit, Phase.generate],
                           suppress_health_check=list(HealthCheck))
                @given(case=strategy)
                def run(case):
                    response = case.call(headers=headers)
                    case.validate_response(response, checks=CHECKS, headers=headers)
                    sent[role] = sent.get(role, 0) + 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

                try:
                    run()
                except Unsatisfiable:
                    # Nothing to make invalid (no parameters, no body): the positive run covered it.
                    assert mode is GenerationMode.NEGATIVE, operation.label
    total = sum(sent.values())
    print(f"\nschemathesis: {total} requests, {len(operations)} operations x {len(tokens)} keys, "
          f"statuses {dict(sorted(statuses.items()))}")
    assert set(sent) == {"read", "write", "admin", "marketer"}
    assert not [s for s in statuses if s >= 500]
