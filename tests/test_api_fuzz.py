"""Property-based fuzzing of the JSON API from its own OpenAPI document (Schemathesis), with a
learner's and an assessor's token: whatever is sent, no operation answers a server error.

Each operation gets valid data with random ids, valid data with the ids of real records (so
the handlers' own checks are reached, not only the 404), and invalid data with real ids. Then
each operation is tried once more with valid input made for it just before (a draft to change,
declare or withdraw, submitted evidence to review, accepted evidence and its expected_state to
decide on, a unit with every criterion decided to sign off), the signing ones with the
signer's real name and password, so every operation really succeeds at least once and its
answer is checked too. Examples are bounded and derandomised, so a run is quick and
repeatable."""

from __future__ import annotations

from datetime import date

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
from sqlalchemy import delete

from portfolio.assessment.services import decision_evidence_state, unit_signoff
from portfolio.auth.services import create_api_token
from portfolio.models import AuthThrottle
from tests.factories import (
    PASSWORD,
    accept,
    criterion,
    make_enrolment,
    make_evidence,
    make_user,
    make_world,
)
from tests.sampling_setup import sign_off_whole_unit

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
    operations = [result.ok() for result in schema.get_all_operations()]
    # The co-signature completes the learner's unit, after which nothing can change it: last.
    operations.sort(key=lambda operation: operation.label.endswith("/cosign"))
    for operation in operations:
        reached += 1
        names = [p.name for p in operation.path_parameters]
        ids = {n: real[n] for n in names if n in real}
        for mode, path in ((GenerationMode.POSITIVE, None), (GenerationMode.POSITIVE, ids),
                           (GenerationMode.NEGATIVE, ids)):
            _fuzz(operation, mode, path, tokens, failures, succeeded, sign=False)
        signs = _signs(operation)
        prepared = _valid_input(session, world, operation.label, ids)
        if signs or prepared is not None:
            signing += signs
            path_ids, body = prepared or (ids, {})
            _fuzz(operation, GenerationMode.POSITIVE, path_ids, tokens, failures, succeeded,
                  sign=signs, body=body)
    print(f"API fuzzing reached {reached} operations ({signing} signing ones also with real "
          f"credentials), {EXAMPLES} examples each mode, two tokens; {len(succeeded)} "
          f"operations answered 2xx at least once; not: "
          f"{sorted(set(_labels(schema)) - succeeded)}")
    assert reached >= 25 and signing >= 6
    assert not failures, "\n".join(sorted(set(failures)))
    # Every operation is reached with valid input and answers 2xx at least once.
    assert set(_labels(schema)) == succeeded, sorted(set(_labels(schema)) - succeeded)


def _signs(operation) -> bool:  # noqa: ANN001
    body = operation.definition.raw.get("requestBody", {}).get("content", {})
    schema = body.get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").rsplit("/", 1)[-1] in {"SignRequest", "DecisionRequest"}


def _labels(schema) -> list[str]:  # noqa: ANN001
    return [result.ok().label for result in schema.get_all_operations()]


def _valid_input(session, world, label, ids):  # noqa: ANN001, ANN202, C901, PLR0911
    """What an operation needs to succeed once, made just before it is tried: a draft to
    change, declare or withdraw, submitted evidence to review, accepted evidence and the
    expected_state token to decide on. Returns (path ids, body fields) or None."""
    # The factories sign with the usual limits: forget the fuzzing's wrong passwords first.
    session.execute(delete(AuthThrottle))
    session.commit()
    today = date.today().isoformat()
    fields = {"title": "Handled a billing complaint", "activity_on": today,
              "body_md": "I listened and agreed a fix.", "personal_data_confirmed": "true"}

    def draft(*maps: str, submit: bool = False):  # noqa: ANN202
        item = make_evidence(session, world.enrolment, world.learner, maps=maps, submit=submit)
        session.commit()
        return item

    c14 = criterion(session, "1.4").id
    if label == "POST /enrolments/{enrolment_id}/evidence":
        return ids, {"kind": "reflective_account", **fields}
    if label == "PATCH /evidence/{evidence_id}":
        return {**ids, "evidence_id": draft().id}, {"expected_version": 1, **fields,
                                                      "keep_file_ids": []}
    if label in ("POST /evidence/{evidence_id}/withdraw",
                 "POST /evidence/{evidence_id}/declaration"):
        return {**ids, "evidence_id": draft("1.3").id}, {"reason": "Added twice."}
    if label == "POST /evidence/{evidence_id}/mappings":
        return {**ids, "evidence_id": draft().id}, {"criterion_id": c14, "rationale": "Shows it.",
                                                    "location": "Paragraph 2"}
    if label == "DELETE /evidence/{evidence_id}/mappings/{criterion_id}":
        return {**ids, "evidence_id": draft("1.4").id, "criterion_id": c14}, {}
    if label == "POST /evidence/{evidence_id}/review":
        return {**ids, "evidence_id": draft("1.4", submit=True).id}, {
            "outcome": "accepted", "expected_version": 1, "feedback_md": "Clear.",
            "varcs": dict.fromkeys(("valid", "authentic", "reliable", "current",
                                    "sufficient"), True)}
    if label == "POST /enrolments/{enrolment_id}/decisions":
        item = draft("1.4", submit=True)
        accept(session, item, world.assessor)
        session.commit()
        return ids, {"criterion_id": c14, "evidence_ids": [item.id],
                     "expected_state": decision_evidence_state(session, world.enrolment,
                                                               [item.id])}
    if label == "POST /enrolments/{enrolment_id}/sign-off":
        # Another learner of the same assessor, whose unit is decided and declared.
        learner = make_user(session, world.learner.centre, "learner",
                            email="ready@example.org", name="Rea Ready")
        enrolment = make_enrolment(session, learner, world.assessor, world.iqa, world.unit)
        sign_off_whole_unit(session, enrolment, learner, world.assessor, sign_off=False)
        return {**ids, "enrolment_id": enrolment.id}, {}
    if label == "POST /enrolments/{enrolment_id}/cosign":
        if unit_signoff(session, world.enrolment) is None:
            sign_off_whole_unit(session, world.enrolment, world.learner, world.assessor,
                                cosign=False)
        return ids, {}
    return None


def _fuzz(operation, mode, path, tokens, failures, succeeded, *, sign,  # noqa: ANN001
          body=None) -> None:  # noqa: ANN001
    @given(case=operation.as_strategy(mode, path_parameters=path or None))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        for token, name in tokens.items():
            if body is not None and isinstance(case.body, dict):
                case.body = {**case.body, **body}
                if sign:
                    case.body.update(typed_name=name, password=PASSWORD)
            try:
                response = case.call_and_validate(
                    headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
            except Exception as exc:  # noqa: BLE001 - collect every failure, then report
                failures.append(f"{operation.label}: {str(exc).splitlines()[0][:200]}")
                return
            if 200 <= response.status_code < 300:
                succeeded.add(operation.label)

    run()
