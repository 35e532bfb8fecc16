"""The kinds of evidence: their fields, files, who adds them and which assessment method each is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DetailField:
    name: str
    label: str
    hint: str = ""
    required: bool = False
    type: str = "text"  # text, textarea, checkbox, email


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    hint: str
    method: str
    body_label: str
    body_hint: str
    body_required: bool
    files: str  # "none", "optional", "required"
    file_hint: str
    added_by: tuple[str, ...]
    details: tuple[DetailField, ...] = ()
    date_label: str = "Date of the activity"

    def method_for(self, details: dict[str, Any], is_simulated: bool) -> str:
        """Return the assessment method this evidence counts as."""
        if is_simulated:
            return "simulation"
        if self.key == "witness_testimony" and details.get("is_expert"):
            return "expert_witness_testimony"
        return self.method


_WITNESS = (
    DetailField("witness_name", "Witness's full name", required=True),
    DetailField("witness_role", "Witness's job role", required=True),
    DetailField("relationship", "Relationship to the learner",
                "For example: line manager, team leader, colleague. Not a relative.",
                required=True),
    DetailField("witness_contact", "Witness's work email or phone",
                "So the assessor can check the testimony with them.", required=True),
    DetailField("is_expert", "The witness is an expert witness", type="checkbox",
                hint="Occupationally competent and named in the assessment plan."),
    DetailField("expert_competence", "What makes them an expert witness", type="textarea"),
)

KINDS: dict[str, Kind] = {k.key: k for k in (
    Kind("reflective_account", "Reflective account",
         "In your own words: what happened, what you did and why, what you learned.",
         "reflective_account", "Your account", "Write in Markdown, or upload a Word file below.",
         False, "optional", "A Word (.docx) file, if you wrote it elsewhere.",
         ("learner",)),
    Kind("witness_testimony", "Witness testimony",
         "A colleague or manager confirms what they saw you do. Recorded on paper or by your "
         "assessor; attach a scan or photo of the signed form.",
         "witness_testimony", "What the witness saw",
         "The activity, when and where, in the witness's words.", True, "optional",
         "A scan or photo of the signed testimony.", ("learner", "assessor"), _WITNESS,
         "Date the witness saw the activity"),
    Kind("observation", "Observation record",
         "Your assessor watched you work and recorded what they saw.",
         "direct_observation", "What was observed",
         "Describe the activity and what the learner did. Timestamps in recordings can be "
         "used as locations.", True, "optional", "Audio or video of the observation, if any.",
         ("assessor",), (DetailField("observer", "Observed by"),)),
    Kind("professional_discussion", "Professional discussion record",
         "A planned conversation with your assessor about your work.",
         "professional_discussion", "Summary of the discussion",
         "Key questions and answers; use timestamps if there is a recording.", True,
         "optional", "Audio or video of the discussion, if recorded.", ("assessor",)),
    Kind("work_product", "Work product",
         "Something you produced at work: a letter, a record, a report.",
         "product_evidence", "What it shows", "Say what the document is and what you did.",
         False, "required", "The document itself (redact customers' details first).",
         ("learner", "assessor")),
    Kind("log", "Complaint or activity log",
         "A log of complaints or activities you handled, as a spreadsheet.",
         "product_evidence", "What it shows", "Point out the entries that are yours.",
         False, "required", "A .csv or .xlsx file.", ("learner", "assessor")),
    Kind("email", "Email",
         "An email exchange with a customer or colleague.",
         "product_evidence", "What it shows", "Say what the exchange shows you doing.",
         False, "required", "The email saved as .eml or Outlook .msg.", ("learner", "assessor")),
    Kind("photo", "Photo",
         "A photo of your work, such as a display, a notice or a completed record.",
         "product_evidence", "What it shows", "", False, "required", "A photo (JPEG, PNG ...).",
         ("learner", "assessor")),
    Kind("questioning", "Questioning",
         "Questions your assessor asked and your answers.",
         "questioning", "Questions and answers",
         "Write each question and its answer, e.g. **Q:** ... **A:** ...", True, "optional",
         "", ("learner", "assessor")),
    Kind("rpl", "Recognition of prior learning (RPL)",
         "A certificate or record of learning you achieved before this unit.",
         "rpl", "How it matches the criteria", "", False, "required",
         "The certificate (scan, photo or PDF).", ("learner", "assessor"),
         (DetailField("certificate_title", "Certificate or award", required=True),
          DetailField("awarding_body", "Awarded by", required=True)),
         "Date achieved"),
    Kind("descriptor", "Evidence descriptor (original kept at work)",
         "For confidential originals that must stay at the workplace: describe what the "
         "original shows and where it is held, so the assessor can inspect it there.",
         "product_evidence", "What the original shows", "", True, "none", "",
         ("learner", "assessor"),
         (DetailField("held_where", "Where the original is held", required=True,
                      hint="For example: complaints database, case 2291, Leeds office."),
          DetailField("held_by", "Who can show it to the assessor", required=True))),
)}
