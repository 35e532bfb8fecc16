"""All ORM models, imported here so metadata is complete for Alembic and the app."""

from portfolio.models.assessment import (
    CriterionDecision,
    DecisionStatus,
    EvidenceReview,
    Signature,
)
from portfolio.models.audit import AuditEvent
from portfolio.models.comments import CommentRead, EvidenceComment
from portfolio.models.enrolments import Enrolment, EnrolmentStatus
from portfolio.models.eqa import EqaAccessLog, EqaPack, EqaPackEnrolment, EqaPackJob
from portfolio.models.evidence import (
    Evidence,
    EvidenceFile,
    EvidenceMapping,
    EvidenceStatus,
    EvidenceVersion,
    StoredFile,
    current_version,
)
from portfolio.models.exports import Export, ExportJob
from portfolio.models.imports import PeopleImport
from portfolio.models.notifications import Notification
from portfolio.models.qualifications import (
    Criterion,
    CriterionMethod,
    CriterionRevision,
    GuidanceNote,
    LearningOutcome,
    Qualification,
    Unit,
)
from portfolio.models.sampling import (
    ActionStatus,
    AssessorSamplingProfile,
    IqaAction,
    IqaSample,
    SampleStatus,
    SamplingPlan,
    SamplingPlanItem,
    SamplingStrategy,
)
from portfolio.models.search import SearchEntry
from portfolio.models.users import (
    ROLES,
    ApiToken,
    AuthThrottle,
    Centre,
    LoginAttempt,
    LoginSession,
    PasswordReset,
    Role,
    User,
    UserRole,
)
from portfolio.models.witness import WitnessRequest, WitnessStatus

__all__ = [
    "current_version",
    "ActionStatus",
    "ROLES",
    "ApiToken",
    "AssessorSamplingProfile",
    "AuditEvent",
    "AuthThrottle",
    "Centre",
    "CommentRead",
    "Criterion",
    "CriterionDecision",
    "CriterionMethod",
    "CriterionRevision",
    "DecisionStatus",
    "Enrolment",
    "EnrolmentStatus",
    "EqaAccessLog",
    "EqaPack",
    "EqaPackEnrolment",
    "EqaPackJob",
    "Evidence",
    "EvidenceComment",
    "EvidenceFile",
    "EvidenceMapping",
    "EvidenceStatus",
    "EvidenceReview",
    "EvidenceVersion",
    "Export",
    "ExportJob",
    "StoredFile",
    "GuidanceNote",
    "IqaAction",
    "IqaSample",
    "LearningOutcome",
    "LoginAttempt",
    "LoginSession",
    "PasswordReset",
    "PeopleImport",
    "Notification",
    "Qualification",
    "Role",
    "SampleStatus",
    "SamplingPlan",
    "SamplingPlanItem",
    "SamplingStrategy",
    "SearchEntry",
    "Signature",
    "Unit",
    "User",
    "UserRole",
    "WitnessRequest",
    "WitnessStatus",
]
