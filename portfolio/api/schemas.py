"""The API's request and response shapes as pydantic models: the one place they are written.

`portfolio.api.openapi` turns them into the OpenAPI 3.1 document, and request bodies are read
through them (`portfolio.api.openapi.operation`). Responses are built as plain dicts by the
handlers, for speed; the suite checks every real response against these schemas."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from portfolio.evidence.kinds import KINDS
from portfolio.ids import MAX_ID
from portfolio.models.assessment import SIGNATURE_PURPOSES, DecisionStatus
from portfolio.models.enrolments import EnrolmentStatus
from portfolio.models.evidence import EvidenceStatus
from portfolio.models.users import Role


def _one_of(values: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError("one of " + ", ".join(values))
        return value
    return AfterValidator(check)


# The value sets come from the code that owns them, so the document cannot fall behind.
Kind: TypeAlias = Annotated[str, _one_of(tuple(KINDS)), WithJsonSchema(
    {"type": "string", "enum": list(KINDS)})]
Purpose: TypeAlias = Annotated[str, _one_of(SIGNATURE_PURPOSES), WithJsonSchema(
    {"type": "string", "enum": list(SIGNATURE_PURPOSES)})]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Next = Annotated[str | None, Field(description="The address of the next page, or null on the "
                                               "last page (also sent as a Link header)")]


def _not_a_flag(value: Any) -> Any:
    """true and false are not numbers here, though Python counts them as 1 and 0."""
    if isinstance(value, bool):
        raise ValueError("a whole number, not true or false")
    return value


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


# An id sent in a JSON body: a JSON integer, never true/false or text.
JsonId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
# A number or id sent in a JSON body or a form: digits are accepted too.
Version = Annotated[int, BeforeValidator(_not_a_flag), Field(ge=0, le=MAX_ID)]
FormId = Annotated[int, BeforeValidator(_not_a_flag), Field(ge=1, le=MAX_ID)]


class Out(BaseModel):
    """A response object: every field is always present, and nothing else is."""

    model_config = ConfigDict(extra="forbid")


def _required_in_document(schema: dict[str, Any], model: type[In]) -> None:
    if model.checked_by_service:
        schema["required"] = sorted({*schema.get("required", ()), *model.checked_by_service})


class In(BaseModel):
    """A request body. Unknown fields are ignored. `messages` gives the 422 text for a field
    that is missing or wrong (else pydantic's own words).

    `checked_by_service` names required fields that the model lets through empty, because
    the service refuses them only after checking the caller may act at all (a 403 must not
    turn into a 422 because the body is incomplete); the document lists them as required."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_required_in_document)
    messages: ClassVar[dict[str, str]] = {}
    checked_by_service: ClassVar[tuple[str, ...]] = ()


class Problem(BaseModel):
    """RFC 9457 problem details"""

    type: str
    title: str
    status: int
    detail: str


# --- people, enrolments, units -------------------------------------------------------------

class PersonRef(Out):
    id: int
    full_name: str


class CentreRef(Out):
    id: int
    name: str


class Me(Out):
    id: int
    email: Annotated[str, Field(json_schema_extra={"format": "email"})]
    full_name: str
    roles: list[Role]
    assessor_status: Literal["trainee", "qualified"] | None
    centre: CentreRef


class UnitRef(Out):
    id: int
    reference: str
    title: str


class Enrolment(Out):
    id: int
    learner: PersonRef
    assessor: PersonRef
    iqa: PersonRef | None
    unit: UnitRef
    start_on: date
    planned_end_on: date
    employer: str
    workplace: str
    status: EnrolmentStatus


class EnrolmentList(Out):
    items: list[Enrolment]
    next: Next


class UnitSummary(Out):
    id: int
    reference: str
    number: str
    title: str
    level: int
    credits: int
    guided_learning_hours: int
    version: int


class UnitList(Out):
    items: list[UnitSummary]
    next: Next


class Guidance(Out):
    kind: Literal["tip", "mistake", "assessor_looks_for"]
    text: str


class Method(Out):
    method: str
    label: str
    preferred: bool


class Criterion(Out):
    id: int
    number: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+$")]
    text: str
    amplification_md: str
    required_occurrences: Annotated[int, Field(ge=1)]
    version: Annotated[int, Field(ge=1)]
    methods: list[Method]
    guidance: list[Guidance]


class LearningOutcome(Out):
    number: int
    title: str
    kind: Literal["knowledge", "performance"]
    criteria: list[Criterion]


class AssessmentRules(Out):
    workplace_only: bool
    simulation_allowed: bool
    rpl_allowed: bool
    currency_months: int | None


class Unit(UnitSummary):
    unit_type: str
    summary: str
    assessment: AssessmentRules
    learning_outcomes: list[LearningOutcome]
    guidance: list[Guidance]


# --- evidence --------------------------------------------------------------------------------

class EvidenceSummary(Out):
    id: int
    kind: Kind
    status: EvidenceStatus
    title: str
    activity_on: date | None
    current_version: int
    file_count: int
    criteria: list[str]


class EvidenceList(Out):
    items: list[EvidenceSummary]
    next: Next


class EvidenceFile(Out):
    id: int
    filename: str
    media_type: str
    category: Literal["document", "image", "audio", "video", "email", "spreadsheet"]
    size: int
    sha256: Sha256
    url: str
    preview: Annotated[dict[str, Any], Field(description=(
        "Preview built at upload: kind (html, table, email, image, page, text, media, none), "
        "content and a note when no preview could be made; `page` is a PDF whose first page "
        "is shown as a picture on the evidence page (`pages` is its page count), and a "
        "HEIC/HEIF photo is an `image` shown from a JPEG copy"))]


class EvidenceVersion(Out):
    version: int
    title: str
    activity_on: date | None
    activity_place: str
    body_md: str
    details: dict[str, Any]
    is_simulated: bool
    personal_data_confirmed: bool
    change_note: str
    created_at: str
    files: list[EvidenceFile]


class VersionRef(Out):
    version: int
    title: str
    created_at: str


class Mapping(Out):
    criterion_id: int
    number: str
    rationale: str
    location: str


class PersonalDataWarning(Out):
    kind: str
    excerpt: str


class Evidence(Out):
    id: int
    enrolment_id: int
    kind: Kind
    kind_label: str
    status: EvidenceStatus
    current_version: int
    created_at: str
    updated_at: str
    submitted_at: str | None
    version: EvidenceVersion
    versions: list[VersionRef]
    mappings: list[Mapping]
    personal_data_warnings: list[PersonalDataWarning]


class _EvidenceFields(In):
    title: Annotated[str, Field(max_length=200)] = ""
    activity_on: Annotated[date | None, BeforeValidator(_blank_is_none)] = None
    activity_place: Annotated[str, Field(max_length=200)] = ""
    body_md: Annotated[str, Field(description="Markdown")] = ""
    is_simulated: bool = False
    personal_data_confirmed: Annotated[bool, Field(
        description="Must be true: customers' personal data removed, or there was none")] = False
    change_note: Annotated[str, Field(max_length=300)] = ""
    files: Annotated[list[bytes], Field(
        description="The files (multipart only)",
        json_schema_extra={"items": {"type": "string", "format": "binary"}})] = []
    messages: ClassVar[dict[str, str]] = {
        "activity_on": "Dates are YYYY-MM-DD.",
        "details": "details must be an object.",
        "is_simulated": "is_simulated is true or false.",
        "personal_data_confirmed": "personal_data_confirmed is true or false.",
    }


class EvidenceCreate(_EvidenceFields):
    """A JSON object, or a multipart form with the files (details as JSON text)"""

    kind: Kind
    details: Annotated[dict[str, Any], Field(description=(
        "The kind's own fields, e.g. witness_name, relationship, held_where (in a multipart "
        "form, as JSON text)"))] = {}
    messages: ClassVar[dict[str, str]] = {
        **_EvidenceFields.messages, "kind": "Choose what kind of evidence this is."}


class EvidenceUpdate(_EvidenceFields):
    """A JSON object, or a multipart form with new files (details as JSON text)"""

    expected_version: Annotated[Version, Field(description=(
        "The version being changed; a newer one makes the request fail with 409"))]
    details: Annotated[dict[str, Any], Field(description=(
        "The kind's own fields (in a multipart form, as JSON text)"))] = {}
    keep_file_ids: Annotated[list[FormId] | None, Field(
        description="Files of the current version to keep (default: all)")] = None
    messages: ClassVar[dict[str, str]] = {
        **_EvidenceFields.messages,
        "expected_version": "Send expected_version: the version you are changing.",
        "keep_file_ids": "keep_file_ids is a list of file ids."}


class WithdrawRequest(In):
    reason: str = ""
    messages: ClassVar[dict[str, str]] = {"reason": "reason is text."}


class MappingCreate(In):
    model_config = ConfigDict(extra="forbid")
    criterion_id: JsonId
    rationale: Annotated[str, Field(max_length=500)] = ""
    location: Annotated[str, Field(max_length=120)] = ""
    messages: ClassVar[dict[str, str]] = {
        "criterion_id": "Send JSON with criterion_id (and optional rationale, location).",
        "rationale": "rationale is text of at most 500 characters.",
        "location": "location is text of at most 120 characters."}


class CoverageOutcome(Out):
    number: int
    title: str
    total: int
    evidenced: int


class CoverageReason(Out):
    code: Literal["no_evidence", "method_not_accepted", "simulated", "out_of_date", "too_few",
                  "not_submitted", "referred", "awaiting_assessor", "met",
                  "awaiting_countersignature", "decision_invalidated", "reopened"]
    message: str


class CoverageItem(Out):
    evidence_id: int
    title: str
    kind: str
    method: str
    status: str
    counts: bool
    problems: list[str]
    rationale: str
    location: str


class CoverageCriterion(Out):
    criterion_id: int
    number: str
    text: str
    status: Literal["met", "evidenced", "gap", "no_evidence"]
    required: int
    counted: int
    reasons: list[CoverageReason]
    evidence: list[CoverageItem]


class Coverage(Out):
    enrolment_id: int
    as_of: date
    total: int
    evidenced: int
    met: int
    outcomes: list[CoverageOutcome]
    criteria: list[CoverageCriterion]


# --- assessment and signatures ---------------------------------------------------------------

_SIGN_MESSAGES = {"typed_name": "Type your full name as it appears on your account.",
                  "password": "Re-enter your password to sign."}


class SignRequest(In):
    """The signer's name and password. Both are required, but a missing one is refused by the
    signing service, after it has checked that the caller may sign at all: someone who may not
    sign gets 403 whatever they send, and a wrong or missing password counts as a failed
    attempt."""

    checked_by_service: ClassVar[tuple[str, ...]] = ("typed_name", "password")
    typed_name: Annotated[str, Field(
        description="The signer's full name, as on the account")] = ""
    password: Annotated[str, Field(
        description="The signer's password, re-entered for every signature",
        json_schema_extra={"format": "password"})] = ""
    messages: ClassVar[dict[str, str]] = _SIGN_MESSAGES


class Varcs(In):
    """The five tests of evidence quality, each ticked or not"""

    valid: bool = False
    authentic: bool = False
    reliable: bool = False
    current: bool = False
    sufficient: bool = False


class ReviewRequest(In):
    outcome: Literal["accepted", "referred"]
    feedback_md: Annotated[str, Field(description="Required when referring back")] = ""
    expected_version: Version
    varcs: Varcs = Varcs()
    messages: ClassVar[dict[str, str]] = {
        "outcome": "Choose accepted or referred.",
        "feedback_md": "feedback_md is text.",
        "expected_version": "Send expected_version: the version you reviewed.",
        "varcs": "varcs is an object of true/false values."}


class DecisionRequest(SignRequest):
    criterion_id: JsonId
    evidence_ids: list[JsonId]
    note_md: str = ""
    expected_state: Annotated[str, Field(description=(
        "From GET /enrolments/{id}/decision-state: refuses the decision if the evidence "
        "changed"))] = ""
    checked_by_service: ClassVar[tuple[str, ...]] = (
        *SignRequest.checked_by_service, "expected_state")
    messages: ClassVar[dict[str, str]] = {
        **_SIGN_MESSAGES,
        "criterion_id": "Send the criterion_id of a criterion of this unit.",
        "evidence_ids": "evidence_ids is a list of evidence ids.",
        "note_md": "note_md is text.",
        "expected_state": "Send expected_state from GET /enrolments/{id}/decision-state."}


class DecisionEvidence(Out):
    evidence_id: int
    version: int


class Decision(Out):
    id: int
    criterion_id: int
    number: str
    status: DecisionStatus
    evidence: list[DecisionEvidence]
    note_md: str
    decided_by: int
    decided_at: str
    signature_id: int
    countersigned_by: int | None
    ended_reason: str | None


class DecisionList(Out):
    items: list[Decision]
    next: Next


class DecisionState(Out):
    expected_state: str


class Signer(Out):
    id: int
    role: str
    typed_name: str


class Verification(Out):
    state: Literal["valid", "invalidated", "broken"]
    reason: str


class Signature(Out):
    id: int
    purpose: Purpose
    subject_type: str
    subject_id: int
    signer: Signer
    statement: str
    signed_at: str
    content_hash: Sha256
    verification: Verification


class SignatureSummary(Out):
    valid: int
    invalidated: int
    broken: int


class SignatureList(Out):
    items: list[Signature]
    next: Next
    summary: SignatureSummary
