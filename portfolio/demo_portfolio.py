"""A realistic, half-finished Unit 40 portfolio for the demo learner, written for this project.

It is built through the same services a learner and assessor use, with real files (an email, a
complaint log, a photo), so the coverage page shows covered criteria and each kind of gap.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.evidence.services import (
    EvidenceInput,
    MappingInput,
    add_evidence,
    set_mappings,
)
from portfolio.evidence.storage import UploadBatch
from portfolio.models import Criterion, Enrolment, Evidence, User

REFLECTIVE = """\
## A billing complaint that needed more than an apology

**Situation.** A customer rang the contact centre upset that her direct debit had been taken
twice in one month. She had already called once and been promised a call back that never came.

**What I did.** I let her explain the whole story without interrupting, then repeated the key
points back to check I had them right: two payments, one promised call back, and worry about
her bank balance. I said sorry that she had to call twice and told her I would own the problem
until it was fixed.

I looked at the account while she was on the line and found the cause: a meter reading had been
entered late, which created a second bill run. I explained this plainly, without blaming
colleagues.

**Negotiating a solution.** I offered two options within my authority: an immediate refund of
the duplicate payment, or a credit on the account with a goodwill payment. She chose the refund.
Because the goodwill amount she asked for was above my limit, I explained that I would refer it
to my team leader, who can authorise more, and told her when she would hear back.

**Keeping her calm.** When she raised her voice I kept my tone steady, acknowledged how stressful
it is to be short of money, and focused on what I could do now rather than on what went wrong.

**What I learned.** Checking understanding early saved time, and being honest about the limits
of my authority kept her trust even when I could not say yes to everything.
"""

OLD_ACCOUNT = """\
Looking back at my first months in the team: we kept track of complaints with feedback cards at
the front desk and a monthly survey. Cards were easy for customers, but few were returned; the
survey gave numbers we could compare month to month, but it missed customers who never wrote
back. Social media comments reached us fastest, but were hard to count fairly.
"""

DRAFT_ACCOUNT = """\
Notes so far: admitting we were at fault can mean paying compensation to one customer, but it
can also be used by others making the same claim, and a regulator such as Ofgem may look into a
pattern of complaints. Offering a replacement or a credit keeps many customers, but costs money
and does not always stop them switching supplier. (To finish: examples from our own policy.)
"""

OBSERVATION = """\
Observed Aisha handling a telephone complaint about a delayed engineer visit (about 14 minutes).

- Opened by confirming the customer's details and asked open questions to establish the nature
  of the complaint (missed appointment), the cause (job re-allocated without notice) and its
  implications (customer had taken a day off work). **2.1**
- Acknowledged the customer's frustration, used the customer's own words when summarising, and
  did not talk over them. **2.3**
- Told the customer what would happen next and when she would call back; the follow-up call was
  logged before the end of the call. **2.6**
- Offered a new appointment and the standard missed-appointment payment, both within her
  authority; the customer agreed. **2.7**

Oral questions after the call confirmed she knew when to pass a complaint to her team leader.
"""

WITNESS = """\
I am Aisha's team leader and sit with the team every day. Over the last three months I have seen
her take ownership of complaints from start to finish rather than passing them on, including the
duplicate-payment case in May. She follows our complaints procedure: every complaint is logged on
the day, the customer is given a reference, and anything over her authority is referred to me
with a clear summary. She checks identity before discussing accounts and never reads card details
aloud, in line with our data protection rules.
"""

SIMULATED = """\
Role-play in the training room with a colleague acting as a customer who wanted a refund outside
the returns period. Aisha explained the options and their limits to the 'customer'.
"""

LOG_ROWS = [
    ("Date", "Reference", "Channel", "Nature", "Cause", "Action taken", "Outcome", "Closed"),
    ("03/03", "C-20411", "Phone", "Double payment", "Late meter read", "Refund raised",
     "Refund paid", "05/03"),
    ("07/03", "C-20417", "Email", "Bill too high", "Estimated reading", "Reading corrected",
     "New bill sent", "08/03"),
    ("12/03", "C-20433", "Phone", "Missed engineer", "Job re-allocated", "New slot booked",
     "Payment of £30 made", "12/03"),
    ("18/03", "C-20452", "Web chat", "Rude adviser", "Staff conduct", "Referred to team leader",
     "Apology letter", "21/03"),
    ("25/03", "C-20470", "Phone", "Smart meter fault", "Device fault", "Engineer booked",
     "Meter replaced", "02/04"),
    ("02/04", "C-20488", "Email", "Tariff not applied", "System error", "Account re-rated",
     "Credit applied; customer called back", "04/04"),
]


def _eml(today: date, sender: User) -> bytes:
    message = EmailMessage()
    message["From"] = f"{sender.full_name} <{sender.email}>"
    message["To"] = "Customer C-20417 <customer-c20417@redacted.invalid>"
    message["Subject"] = "Re: Your bill - reference C-20417"
    message["Date"] = format_datetime(datetime.combine(today - timedelta(days=40),
                                                       datetime.min.time()).astimezone())
    message["Message-ID"] = "<c20417.reply@brightwater.example>"
    message.set_content(
        "Dear customer,\n\n"
        "Thank you for your email about your latest bill, and I am sorry it was higher than "
        "you expected. I have looked into it: the bill used an estimated meter reading because "
        "we could not read the meter in February.\n\n"
        "Using the reading you sent, I have corrected the bill. The new amount is lower, and a "
        "new bill is on its way. I will check on Friday that it has arrived and email you "
        "again.\n\n"
        "So this does not happen again, you can send readings through your online account at "
        "any time.\n\n"
        "Kind regards,\nAisha Khan\nCustomer Relations\n")
    return bytes(message)


def _csv() -> bytes:
    lines = [",".join(f'"{cell}"' for cell in row) for row in LOG_ROWS]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _photo(taken: date) -> bytes:
    image = Image.new("RGB", (960, 640), (236, 241, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 50, 900, 590), fill=(255, 255, 255), outline=(15, 92, 90), width=8)
    draw.text((100, 90), "OUR COMPLAINTS PROCEDURE", fill=(15, 92, 90))
    steps = ["1. Listen and log it the same day", "2. Give the customer a reference",
             "3. Find the cause", "4. Agree a solution within your authority",
             "5. Refer anything bigger to your team leader", "6. Follow up and close"]
    for n, step in enumerate(steps):
        draw.rectangle((100, 150 + n * 70, 860, 200 + n * 70), fill=(227, 240, 239))
        draw.text((120, 168 + n * 70), step, fill=(29, 36, 36))
    exif = Image.Exif()
    # DateTimeOriginal (0x9003) lives in the Exif sub-IFD (0x8769).
    exif.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d 10:42:00")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def _criteria(session: Session, unit_id: int) -> dict[str, int]:
    return dict(session.execute(select(Criterion.number, Criterion.id)
                                .where(Criterion.unit_id == unit_id)).all())


def seed_portfolio(session: Session, batch: UploadBatch, enrolment: Enrolment, learner: User,
                   assessor: User, today: date, password: str) -> bool:
    """Give the learner a half-finished portfolio unless they already have evidence."""
    if session.scalar(select(Evidence.id).where(Evidence.enrolment_id == enrolment.id)):
        return False
    ids = _criteria(session, enrolment.unit_id)
    big = 50 * 1024 * 1024

    def add(actor: User, kind: str, title: str, days_ago: int, body: str = "", *,
            place: str = "Customer contact centre, Leeds", details: dict | None = None,
            files: tuple[tuple[bytes, str], ...] = (), maps: dict[str, tuple[str, str]] | None
            = None, submit: bool = True, simulated: bool = False) -> Evidence:
        staged = [batch.add(io.BytesIO(data), name, big) for data, name in files]
        evidence = add_evidence(session, actor=actor, enrolment=enrolment, kind=kind,
                                data=EvidenceInput(
                                    title=title, activity_on=today - timedelta(days=days_ago),
                                    activity_place=place, body_md=body, details=details or {},
                                    is_simulated=simulated, personal_data_confirmed=True),
                                files=staged, today=today)
        wanted = [MappingInput(ids[n], why, where) for n, (why, where) in (maps or {}).items()]
        set_mappings(session, evidence, actor=actor, wanted=wanted)
        if submit:
            _submit(session, evidence, actor, password)
        return evidence

    add(learner, "reflective_account", "Duplicate payment complaint: my account", 35, REFLECTIVE,
        maps={"1.3": ("I explain the two options I negotiated", "paragraph 4"),
              "1.4": ("Staying calm with an upset customer", "paragraph 5"),
              "1.6": ("Why I referred the goodwill amount", "paragraph 4"),
              "2.3": ("How I showed I understood her worry", "paragraph 2")})
    add(learner, "email", "Email reply about an estimated bill", 40,
        "My reply to a customer who complained about an estimated bill.",
        files=((_eml(today, learner), "Re_ Your bill C-20417.eml"),),
        maps={"2.1": ("Nature and cause explained", "paragraphs 1-2"),
              "2.6": ("I promise to check and email again", "paragraph 3"),
              "2.8": ("Outcome recorded for the customer", "whole email")})
    add(learner, "log", "Team complaint log, March", 30,
        "The complaints I logged in March; my entries are the ones with my initials in the "
        "system export.",
        files=((_csv(), "complaint-log-march.csv"),),
        maps={"2.8": ("Each complaint and its outcome is recorded", "rows 1-6")})
    add(learner, "photo", "Complaints procedure on the team board", 20,
        "The procedure we follow, on our team notice board.",
        files=((_photo(today - timedelta(days=20)), "team-board.jpg"),),
        maps={"1.5": ("Our organisation's procedure", "")})
    add(learner, "witness_testimony", "Team leader's testimony", 15, WITNESS,
        details={"witness_name": "Rachel Osei", "witness_role": "Team leader, customer contact",
                 "relationship": "Line manager", "witness_contact": "Work phone via switchboard",
                 "is_expert": False},
        maps={"2.2": ("Takes ownership from start to finish", "paragraph 1"),
              "2.9": ("Follows procedure and data protection rules", "paragraph 1")})
    add(assessor, "observation", "Observed telephone complaint: missed engineer visit", 10,
        OBSERVATION, details={"observer": assessor.full_name},
        maps={"2.1": ("Questions establish nature, cause, implications", "bullet 1"),
              "2.3": ("Acknowledged frustration, summarised", "bullet 2"),
              "2.6": ("Next steps and call back agreed", "bullet 3"),
              "2.7": ("Solution within own authority", "bullet 4")})
    add(learner, "reflective_account", "How we monitor complaints (first months)", 1100,
        OLD_ACCOUNT, maps={"1.1": ("Compares feedback cards, surveys and social media", "")})
    add(learner, "reflective_account", "Liability and compensation (draft)", 3, DRAFT_ACCOUNT,
        maps={"1.7": ("Cost and regulatory implications", ""),
              "1.8": ("Advantages and limits of compensation", "")}, submit=False)
    add(assessor, "observation", "Refund role-play in training", 60, SIMULATED,
        place="Training room", details={"observer": assessor.full_name}, simulated=True,
        maps={"2.4": ("Options explained to the customer", "")})
    return True


PD_RECORD = """\
Professional discussion at the Hull store (about 35 minutes), recorded with Sofia's agreement.

- **Monitoring (1.1, 1.2):** Sofia compared till-receipt surveys, the online review site and
  comment cards, and explained why a cluster of complaints about the same product line made
  the store manager review how it was displayed and described.
- **Negotiating and conflict (1.3, 1.4):** she described listening first, summarising, and
  offering an exchange or a store credit; with an angry customer she moved the conversation
  away from the queue and kept her voice low and steady.
- **Procedures and escalation (1.5, 1.6):** she walked through the store's complaint form and
  when she calls the duty manager: refunds above her limit, safety issues, threats.
- **Liability and compensation (1.7, 1.8):** admitting fault for a faulty product is handled by
  the manager because of the cost and the Consumer Rights Act; replacements keep customers but
  cost the store and do not always fix the relationship.
- **Response options (2.4, 2.5):** for a damaged sofa she explained repair, replacement and
  refund to the customer, and the cost and stock impact of each to the business.
"""

PD_OBSERVATION = """\
Observed Sofia at the customer service desk dealing with a customer whose new lamp stopped
working after a week.

- Asked what happened, when it was bought and how it was used, to confirm the nature and
  cause of the complaint (2.1); took ownership rather than sending the customer to another
  till (2.2).
- Acknowledged the inconvenience and repeated the customer's concern back to her (2.3).
- Explained that a replacement was in stock and would take ten minutes to fetch, and went back
  to the customer twice to update her (2.6).
- Offered a replacement, within her authority, which the customer accepted (2.7).
"""


def _decide_all(session: Session, enrolment: Enrolment, assessor: User, password: str,
                numbers: list[str], by_number: dict[str, list[Evidence]]) -> None:
    from portfolio.assessment.services import (
        SignerConfirmation,
        decide_criterion,
        decision_evidence_state,
    )

    confirm = SignerConfirmation(password=password, typed_name=assessor.full_name)
    criteria = {c.number: c for c in session.scalars(
        select(Criterion).where(Criterion.unit_id == enrolment.unit_id))}
    for number in numbers:
        ids = [e.id for e in by_number[number]]
        decide_criterion(session, enrolment, criteria[number], actor=assessor, evidence_ids=ids,
                         note_md="", confirmation=confirm,
                         expected_state=decision_evidence_state(session, enrolment, ids),
                         max_failures=1000, lockout_minutes=1)


def _accept(session: Session, evidence: Evidence, assessor: User) -> None:
    from portfolio.assessment.services import review_evidence

    review_evidence(session, evidence, actor=assessor, outcome="accepted",
                    feedback_md="Clear and relevant: accepted.",
                    varcs={k: True for k in ("valid", "authentic", "reliable", "current",
                                             "sufficient")},
                    expected_version=evidence.current_version)


def _submit(session: Session, evidence: Evidence, actor: User, password: str) -> None:
    from portfolio.assessment.services import SignerConfirmation, submit_with_declaration

    submit_with_declaration(session, evidence, actor=actor,
                            confirmation=SignerConfirmation(password, actor.full_name),
                            max_failures=1000, lockout_minutes=1)


def seed_signed_off(session: Session, batch: UploadBatch, enrolment: Enrolment, learner: User,
                    assessor: User, password: str, today: date) -> bool:
    """A complete portfolio: every criterion met, declared, signed off and co-signed."""
    from portfolio.assessment.services import (
        SignerConfirmation,
        cosign_unit,
        sign_off_unit,
        sign_unit_declaration,
    )

    if session.scalar(select(Evidence.id).where(Evidence.enrolment_id == enrolment.id)):
        return False
    ids = _criteria(session, enrolment.unit_id)
    lo1 = [f"1.{n}" for n in range(1, 9)]

    def add(actor: User, kind: str, title: str, days_ago: int, body: str, maps: list[str],
            details: dict | None = None, files: tuple[tuple[bytes, str], ...] = ()) -> Evidence:
        staged = [batch.add(io.BytesIO(data), name, 50 * 1024 * 1024) for data, name in files]
        evidence = add_evidence(session, actor=actor, enrolment=enrolment, kind=kind,
                                data=EvidenceInput(
                                    title=title, activity_on=today - timedelta(days=days_ago),
                                    activity_place="Customer service desk, Hull store",
                                    body_md=body, details=details or {},
                                    personal_data_confirmed=True),
                                files=staged, today=today)
        set_mappings(session, evidence, actor=actor,
                     wanted=[MappingInput(ids[n]) for n in maps])
        _submit(session, evidence, actor, password)
        _accept(session, evidence, assessor)
        return evidence

    pd = add(assessor, "professional_discussion", "Professional discussion: complaints", 45,
             PD_RECORD, [*lo1, "2.4", "2.5"])
    obs = add(assessor, "observation", "Observation: faulty lamp at the service desk", 40,
              PD_OBSERVATION, ["2.1", "2.2", "2.3", "2.6", "2.7"],
              details={"observer": assessor.full_name})
    log = add(learner, "log", "Store complaint log, October", 30,
              "The complaints I handled in October.", ["2.8"],
              files=((_csv(), "complaint-log-october.csv"),))
    witness = add(learner, "witness_testimony", "Store manager's testimony", 25,
                  "I manage the Hull store and have watched Sofia handle complaints for a year. "
                  "She follows our returns and complaints policy every time, records each one, "
                  "and protects customers' details.",
                  ["2.9"], details={"witness_name": "Martin Hale",
                                    "witness_role": "Store manager",
                                    "relationship": "Line manager",
                                    "witness_contact": "Store phone via head office",
                                    "is_expert": False})
    by_number = {n: [pd] for n in [*lo1, "2.4", "2.5"]}
    by_number.update({n: [obs] for n in ("2.1", "2.2", "2.3", "2.6", "2.7")})
    by_number.update({"2.8": [log], "2.9": [witness]})
    _decide_all(session, enrolment, assessor, password, sorted(by_number), by_number)
    limits = {"max_failures": 1000, "lockout_minutes": 1}
    sign_unit_declaration(session, enrolment, actor=learner,
                          confirmation=SignerConfirmation(password, learner.full_name), **limits)
    sign_off_unit(session, enrolment, actor=assessor,
                  confirmation=SignerConfirmation(password, assessor.full_name), **limits)
    cosign_unit(session, enrolment, actor=learner,
                confirmation=SignerConfirmation(password, learner.full_name), **limits)
    return True


def seed_awaiting_countersignature(session: Session, enrolment: Enrolment, learner: User,
                                   trainee: User, password: str, today: date) -> bool:
    """A trainee assessor's decisions that wait for a qualified countersignature."""
    if session.scalar(select(Evidence.id).where(Evidence.enrolment_id == enrolment.id)):
        return False
    ids = _criteria(session, enrolment.unit_id)
    evidence = add_evidence(session, actor=learner, enrolment=enrolment,
                            kind="reflective_account",
                            data=EvidenceInput(
                                title="When I escalate a complaint",
                                activity_on=today - timedelta(days=12),
                                activity_place="Complaints resolution team, Leeds",
                                body_md="I pass a complaint to my team leader when the remedy "
                                        "is above my authority, when the customer asks for a "
                                        "manager after I have tried to resolve it, or when it "
                                        "involves safety. I explain to the customer what will "
                                        "happen and when they will hear back.",
                                personal_data_confirmed=True),
                            files=[], today=today)
    set_mappings(session, evidence, actor=learner,
                 wanted=[MappingInput(ids["1.5"]), MappingInput(ids["1.6"])])
    _submit(session, evidence, learner, password)
    _accept(session, evidence, trainee)
    _decide_all(session, enrolment, trainee, password, ["1.5", "1.6"],
                {"1.5": [evidence], "1.6": [evidence]})
    return True
