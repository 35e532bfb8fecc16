"""Property-based fuzzing of the JSON API from its own OpenAPI document (Schemathesis), with a
learner's and an assessor's token: whatever is sent, no operation answers a server error.

Each operation gets valid data with random ids, valid data with the ids of real records (so
the handlers' own checks are reached, not only the 404), and invalid data with real ids.
Examples are bounded and derandomised, so a run is quick and repeatable."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portfolio.auth.services import create_api_token
from tests.factories import criterion, make_world

EXAMPLES = 12
# No server error, and every answer as the document describes it: a status it lists, its
# media type, a body matching its schema, and a 405 naming the allowed methods.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, allow_header_conformance]


def test_no_operation_answers_a_server_error(app, session):
    world = make_world(session, app.config["STORAGE_DIR"])
    tokens = [create_api_token(session, getattr(world, role), "fuzz")[1]
              for role in ("learner", "assessor")]
    session.commit()
    real = {"enrolment_id": world.enrolment.id, "evidence_id": world.evidence.id,
            "file_id": world.file_id, "unit_id": world.enrolment.unit_id,
            "criterion_id": criterion(session, "1.1").id, "decision_id": world.trainee_decision_id}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    reached = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        reached += 1
        names = [p.name for p in operation.path_parameters]
        ids = {n: real[n] for n in names if n in real}
        for mode, path in ((GenerationMode.POSITIVE, None), (GenerationMode.POSITIVE, ids),
                           (GenerationMode.NEGATIVE, ids)):
            _fuzz(operation, mode, path, tokens, failures)
    print(f"API fuzzing reached {reached} operations, {EXAMPLES} examples each in three "
          "modes, two tokens")
    assert reached >= 25
    assert not failures, "\n".join(sorted(set(failures)))


def _fuzz(operation, mode, path, tokens, failures) -> None:  # noqa: ANN001
    @given(case=operation.as_strategy(mode, path_parameters=path or None))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        for token in tokens:
            try:
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                       checks=CHECKS)
            except Exception as exc:  # noqa: BLE001 - collect every failure, then report
                failures.append(f"{operation.label}: {str(exc).splitlines()[0][:200]}")
                return

    run()
