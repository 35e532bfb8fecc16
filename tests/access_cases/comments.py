"""Access cases for comments: only people who can see the evidence reach its conversation.

Posting is for the learner, their assessor and their IQA (an empty comment is refused with 422,
so the matrix adds nothing); the centre's admin reads but may not post (403); everyone else gets
the 404 of evidence that does not exist. The EQA reads the conversation of the pack's evidence,
read-only, on a page inside the pack.
"""

from __future__ import annotations

EMPTY = {"comment-body": "", "comment-nonce": "matrix-nonce"}


def cases(m) -> list:
    return [
        m.Case("comments.add", "POST", lambda w, t: f"/evidence/{w.evidence.id}/comments",
               m.seen_by(m.VIEWERS) | {"learner": m.INVALID, "assessor": m.INVALID,
                                       "iqa": m.INVALID, "admin": m.FORBIDDEN}, data=EMPTY),
        m.Case("comments.add", "POST", lambda w, t: f"/evidence/{w.other_evidence_id}/comments",
               m.seen_by({"other_learner", "trainee", "admin"})
               | {"other_learner": m.INVALID, "trainee": m.INVALID, "admin": m.FORBIDDEN},
               data=EMPTY, label="other learner"),
        m.Case("comments.add", "POST", lambda w, t: "/evidence/999999/comments",
               m.everyone(m.MISSING), data=EMPTY, label="unknown id"),
        m.Case("comments.eqa_thread", "GET",
               lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/evidence/{w.evidence.id}/comments",
               m.only_eqa(m.OK)),
        m.Case("comments.eqa_thread", "GET",
               lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/evidence/{w.other_evidence_id}"
                            "/comments",
               m.only_eqa(m.MISSING), label="not in the pack"),
    ]
