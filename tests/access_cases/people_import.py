"""Access cases for importing learners from a spreadsheet: only a centre admin; an import's
token opens it for the admin who uploaded it alone (another centre's admin gets the 404 of an
unknown token, as does a forged one)."""

from __future__ import annotations

ROWS = ("Name,Email,Employer,Workplace,Unit or qualification,Assessor email,IQA email,"
        "Start date,Planned end date\n"
        "Mia Matrix,mia.matrix@example.org,Acme,Leeds,R/506/2151,assessor@example.org,,"
        "2025-09-01,2026-08-31\n")
FORGED = "imp_" + "A" * 43


def setup(app, session, world) -> None:
    from portfolio.people_import import services as imports

    for name in ("to_confirm", "to_discard", "to_read"):
        upload, token = imports.stash_upload(session, filename=f"{name}.csv", text=ROWS,
                                             row_count=1, actor=world.admin)
        setattr(world, f"import_{name}", token)
    session.flush()
    checked = imports.check_file(session, ROWS, world.admin.centre, max_rows=10)
    world.import_checked = checked.fingerprint()


def cases(m) -> list:
    base = "/admin/people/import"
    return [
        m.Case("people_import.upload", "GET", lambda w, t: base, m.admins_only(m.OK)),
        m.Case("people_import.upload", "POST", lambda w, t: base, m.admins_only(m.INVALID)),
        m.Case("people_import.template", "GET", lambda w, t: f"{base}/template.csv",
               m.admins_only(m.OK)),
        m.Case("people_import.show", "GET", lambda w, t: f"{base}/{w.import_to_read}",
               m.admins_only(m.OK, other_admin=m.MISSING)),
        m.Case("people_import.show", "GET", lambda w, t: f"{base}/{FORGED}",
               m.admins_only(m.MISSING), label="forged token"),
        m.Case("people_import.progress", "GET",
               lambda w, t: f"{base}/{w.import_to_read}/progress",
               m.admins_only(m.OK, other_admin=m.MISSING)),
        m.Case("people_import.confirm", "POST",
               lambda w, t: f"{base}/{w.import_to_confirm}/confirm",
               m.admins_only(m.REDIRECT, other_admin=m.MISSING),
               data=lambda w: {"mode": "all", "checked": w.import_checked}),
        m.Case("people_import.confirm", "POST", lambda w, t: f"{base}/{FORGED}/confirm",
               m.admins_only(m.MISSING), data={"mode": "all"}, label="forged token"),
        m.Case("people_import.discard", "POST",
               lambda w, t: f"{base}/{w.import_to_discard}/discard",
               m.admins_only(m.REDIRECT, other_admin=m.MISSING)),
    ]
