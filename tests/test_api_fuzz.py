"""Property-based fuzzing of the JSON API from its own OpenAPI document (Schemathesis), with a
learner's and an assessor's token: whatever is sent, no operation answers a server error.

Each operation gets valid data with random ids, valid data with the ids of real records (so
the handlers' own checks are reached, not only the 404), and invalid data with real ids. The
signing operations also get the signer's real name and password, so that signatures are
really made and the answers after them are checked too. Examples are bounded and
derandomised, so a run is quick and repeatable."""

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

from portfolio.assessment.services import decision_evidence_state
from portfolio.auth.services import create_api_token
from tests.factories import PASSWORD, accept, criterion, make_evidence, make_world

EXAMPLES = 12
# No server error, and every answer as the document describes it: a status it lists, its
# media type, a body matching its schema, and a 405 naming the allowed methods.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, allow_header_conformance]


def test_no_operation_answers_a_server_error(app, session):
    # Thousands of random passwords must not lock the two signers out before the real ones
    # are tried (the lockout has its own tests).
    app.config["LOGIN_MAX_FAILURES"] = 1_000_000
    world = make_world(session, app.config["STORAGE_DIR"])
    people = [getattr(world, role) for role in ("learner", "assessor")]
    tokens = {create_api_token(session, person, "fuzz")[1]: person.full_name
              for person in people}
    session.commit()
    real = {"enrolment_id": world.enrolment.id, "evidence_id": world.evidence.id,
            "file_id": world.file_id, "unit_id": world.enrolment.unit_id,
            "criterion_id": criterion(session, "1.1").id, "decision_id": world.trainee_decision_id}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    succeeded: set[str] = set()
    reached = signing = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        reached += 1
        names = [p.name for p in operation.path_parameters]
        ids = {n: real[n] for n in names if n in real}
        for mode, path in ((GenerationMode.POSITIVE, None), (GenerationMode.POSITIVE, ids),
                           (GenerationMode.NEGATIVE, ids)):
            _fuzz(operation, mode, path, tokens, failures, succeeded, sign=False)
        if _signs(operation):
            signing += 1
            path_ids, body = _ready_to_sign(session, world, operation.label, ids)
            _fuzz(operation, GenerationMode.POSITIVE, path_ids, tokens, failures, succeeded,
                  sign=True, body=body)
    print(f"API fuzzing reached {reached} operations ({signing} signing ones also with real "
          f"credentials), {EXAMPLES} examples each mode, two tokens; {len(succeeded)} "
          f"operations answered 2xx at least once: {sorted(succeeded)}")
    assert reached >= 25 and signing >= 6
    assert not failures, "\n".join(sorted(set(failures)))
    # Real credentials make real signatures: the learner's evidence and unit declarations,
    # the assessor's criterion decision and countersignature go through, and their answers
    # were checked against the document.
    assert {"POST /evidence/{evidence_id}/declaration", "POST /enrolments/{enrolment_id}/decisions",
            "POST /enrolments/{enrolment_id}/declaration",
            "POST /decisions/{decision_id}/countersign"} <= succeeded, sorted(succeeded)


def _signs(operation) -> bool:  # noqa: ANN001
    body = operation.definition.raw.get("requestBody", {}).get("content", {})
    schema = body.get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").rsplit("/", 1)[-1] in {"SignRequest", "DecisionRequest"}


def _ready_to_sign(session, world, label, ids):  # noqa: ANN001, ANN202
    """What a signing operation needs to succeed once: a draft to declare, or accepted
    evidence and the expected_state token to decide a criterion on."""
    if label == "POST /evidence/{evidence_id}/declaration":
        draft = make_evidence(session, world.enrolment, world.learner, maps=("1.3",))
        session.commit()
        return {**ids, "evidence_id": draft.id}, {}
    if label == "POST /enrolments/{enrolment_id}/decisions":
        item = make_evidence(session, world.enrolment, world.learner, maps=("1.4",),
                             submit=True)
        accept(session, item, world.assessor)
        session.commit()
        return ids, {"criterion_id": criterion(session, "1.4").id, "evidence_ids": [item.id],
                     "expected_state": decision_evidence_state(session, world.enrolment,
                                                               [item.id])}
    return ids, {}


def _fuzz(operation, mode, path, tokens, failures, succeeded, *, sign,  # noqa: ANN001
          body=None) -> None:  # noqa: ANN001
    @given(case=operation.as_strategy(mode, path_parameters=path or None))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        for token, name in tokens.items():
            if sign and isinstance(case.body, dict):
                case.body = {**case.body, **(body or {}), "typed_name": name,
                             "password": PASSWORD}
            try:
                response = case.call_and_validate(
                    headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
            except Exception as exc:  # noqa: BLE001 - collect every failure, then report
                failures.append(f"{operation.label}: {str(exc).splitlines()[0][:200]}")
                return
            if 200 <= response.status_code < 300:
                succeeded.add(operation.label)

    run()
