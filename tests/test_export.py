"""The signed PDF portfolio: contents, attachments, two signature verifiers, safe rendering."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
import weasyprint
from pypdf import PdfReader

from portfolio.cli import cli
from portfolio.evidence.storage import FileStore
from portfolio.export.fetcher import make_fetcher
from portfolio.export.services import export_portfolio, read_manifest, verify_export
from portfolio.export.signing import check_pdf_signature, init_centre_key, pdfsig_check
from tests.factories import TINY_PDF, accept, make_evidence, make_world, stage_bytes

STATIC = Path(__file__).resolve().parent.parent / "static"


@pytest.fixture
def keys(app):
    instance = Path(app.instance_path)
    with contextlib.suppress(FileExistsError):
        init_centre_key(instance, "Test Centre")
    return (instance / "signing" / "centre-cert.pem").read_bytes()


@pytest.fixture
def exported(app, session, keys, tmp_path):
    world = make_world(session, app.config["STORAGE_DIR"])
    letter = world.evidence
    out = tmp_path / "portfolio.pdf"
    with app.test_request_context():
        export = export_portfolio(session, world.enrolment, actor=world.assessor,
                                  config=app.config, instance_path=Path(app.instance_path),
                                  static_dir=STATIC,
                                  store=FileStore(Path(app.config["STORAGE_DIR"])),
                                  verify_base="https://portfolio.example/verify", out=out)
    session.commit()
    return world, export, out, letter


def test_pdf_has_every_part_and_the_originals_attached(exported):
    world, export, out, letter = exported
    pdf = out.read_bytes()
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for part in ("PORTFOLIO OF EVIDENCE", "Summary of achievement", "Declarations and signatures",
                 "Evidence location sheet", "Coverage matrix", "Witness status list",
                 "Audit trail", "Signature certificate", world.learner.full_name):
        assert part in text, part
    assert export.pages == len(reader.pages) > 5
    attachments = reader.attachments
    original = next(name for name in attachments if name.endswith("complaint-letter.pdf"))
    assert attachments[original][0] == TINY_PDF  # byte for byte
    manifest = read_manifest(pdf)
    assert manifest["public_id"] == export.public_id
    assert letter.versions[0].files[0].sha256 in str(manifest["evidence"])
    assert "p. " in text  # the location sheet points at pages of this PDF


def test_two_independent_verifiers_accept_it_and_reject_one_changed_byte(exported, keys,
                                                                          tmp_path):
    _world, _export, out, _letter = exported
    pdf = out.read_bytes()
    check = check_pdf_signature(pdf, trust_cert_pem=keys)
    assert check.intact and check.valid and check.covers_whole_file
    ok, report = pdfsig_check(out)
    assert ok, report
    changed = bytearray(pdf)
    position = len(changed) // 3
    changed[position] = (changed[position] + 1) % 256
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(changed))
    assert not check_pdf_signature(bytes(changed), trust_cert_pem=keys).intact
    assert not pdfsig_check(tampered)[0]


def test_verify_says_intact_changed_or_altered(app, session, exported, keys):
    world, _export, out, _letter = exported
    pdf = out.read_bytes()
    assert verify_export(session, pdf, trust_cert_pem=keys).state == "intact and current"
    item = make_evidence(session, world.enrolment, world.learner, title="A later account",
                         maps=("1.4",), submit=True)
    accept(session, item, world.assessor)
    session.commit()
    later = verify_export(session, pdf, trust_cert_pem=keys)
    assert later.state == "intact but changed" and later.changes
    assert verify_export(session, pdf + b"%extra", trust_cert_pem=keys).state == "altered"
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["verify", str(out)])
    assert result.exit_code == 3, result.output
    assert "CHANGED SINCE THE EXPORT" in result.output and "A later account" not in result.output
    # Who signed: the shared instance's key may have been made by another test, under its name.
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    signer = x509.load_pem_x509_certificate(keys).subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)[0].value
    assert f"Signed by: {signer}" in result.output
    broken = out.with_name("broken.pdf")
    data = bytearray(pdf)
    data[len(data) // 2] ^= 0x01
    broken.write_bytes(bytes(data))
    result = runner.invoke(cli, ["verify", str(broken)])
    assert result.exit_code == 4 and "ALTERED" in result.output, result.output


def test_rendering_refuses_local_files_and_the_network(app, tmp_path):
    store = FileStore(Path(app.config["STORAGE_DIR"]))
    fetcher = make_fetcher(STATIC, store)
    html = ('<p>safe</p><img src="file:///etc/passwd">'
            '<link rel="stylesheet" href="http://127.0.0.1:9/steal.css">'
            '<img src="portfolio-static:/../portfolio/config.py">'
            '<iframe src="file:///etc/hostname"></iframe>')
    pdf = weasyprint.HTML(string=html, base_url="portfolio-static:/",
                          url_fetcher=fetcher).write_pdf()
    assert b"root:" not in pdf
    assert "file:///etc/passwd" in fetcher.refused
    assert "http://127.0.0.1:9/steal.css" in fetcher.refused
    assert any("config.py" in url for url in fetcher.refused)


def test_evidence_markdown_cannot_reach_out_either(app, session, keys, tmp_path):
    world = make_world(session, app.config["STORAGE_DIR"])
    make_evidence(session, world.enrolment, world.learner,
                  body='![x](file:///etc/passwd) <img src="http://127.0.0.1:9/x.png">')
    session.commit()
    with app.test_request_context():
        export_portfolio(session, world.enrolment, actor=None, config=app.config,
                         instance_path=Path(app.instance_path), static_dir=STATIC,
                         store=FileStore(Path(app.config["STORAGE_DIR"])),
                         verify_base="https://x/verify", out=tmp_path / "p.pdf")
    assert b"root:" not in (tmp_path / "p.pdf").read_bytes()


def test_a_crash_mid_write_leaves_no_partial_file(app, session, keys, tmp_path, monkeypatch):
    world = make_world(session, app.config["STORAGE_DIR"])
    stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "x.pdf")

    real_replace = os.replace
    target = tmp_path / "exports" / "p.pdf"

    def boom(source, destination):
        if Path(destination) == target:  # the render cache may still be written
            raise OSError("disk full")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", boom)
    with app.test_request_context(), pytest.raises(OSError):
        export_portfolio(session, world.enrolment, actor=None, config=app.config,
                         instance_path=Path(app.instance_path), static_dir=STATIC,
                         store=FileStore(Path(app.config["STORAGE_DIR"])),
                         verify_base="https://x/verify", out=target)
    assert list(target.parent.iterdir()) == []


def test_cli_export(app, session, keys, tmp_path):
    world = make_world(session, app.config["STORAGE_DIR"])
    out = tmp_path / "cli.pdf"
    result = app.test_cli_runner().invoke(cli, ["export", world.learner.email, "--unit",
                                                "R/506/2151", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")
    missing = app.test_cli_runner().invoke(cli, ["export", world.learner.email, "--unit",
                                                 "X/000/0000"])
    assert missing.exit_code == 1


def _wait_for(client, job_url: str, timeout: float = 60.0) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while True:
        status = client.get(job_url + ".json").get_json()
        if status["status"] in ("done", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "background thread"])
def test_export_button_progress_download_and_public_check(make_app, keys, inline):
    from tests.conftest import Browserless
    from tests.factories import PASSWORD

    app = make_app(EXPORT_RUN_INLINE=inline)
    s = app.extensions["portfolio.db"].sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    started = web.post(f"/enrolments/{world.enrolment.id}/exports")
    assert started.status_code == 302
    job_url = started.headers["Location"]
    assert "Exporting the portfolio" in web.client.get(job_url).get_data(True)
    status = _wait_for(web.client, job_url)
    assert status["status"] == "done", status
    pdf = web.client.get(status["download"])
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    listing = web.client.get(f"/enrolments/{world.enrolment.id}/exports").get_data(True)
    assert world.learner.full_name in listing

    public = app.test_client()  # no account needed to check a PDF
    page = public.get("/verify")
    token = page.get_data(True).split('name="csrf_token" value="')[1].split('"')[0]
    ok = public.post("/verify", data={"csrf_token": token,
                                      "pdf": (io.BytesIO(pdf.data), "portfolio.pdf")},
                     content_type="multipart/form-data")
    assert ok.status_code == 200, ok.get_data(True)
    assert "Genuine, and the portfolio is unchanged" in ok.get_data(True)
    altered = bytearray(pdf.data)
    altered[len(altered) // 3] ^= 0x01
    bad = public.post("/verify", data={"csrf_token": token,
                                       "pdf": (io.BytesIO(bytes(altered)), "portfolio.pdf")},
                      content_type="multipart/form-data")
    assert bad.status_code == 422 and "Altered" in bad.get_data(True)
    manifest = read_manifest(pdf.data)
    by_link = public.get(f"/verify/{manifest['public_id']}")
    assert by_link.status_code == 200 and "Genuine" in by_link.get_data(True)
    assert by_link.headers["Referrer-Policy"] == "no-referrer"
    s.close()


def test_names_in_any_script_print_with_fonts_that_have_them(app, session, keys, tmp_path):
    import subprocess

    from tests.factories import make_centre, make_enrolment, make_user

    centre = make_centre(session)
    learner = make_user(session, centre, "learner", name="Zoë Wójcik 王小明 محمد")
    enrolment = make_enrolment(session, learner, make_user(session, centre, "assessor"))
    session.commit()
    out = tmp_path / "names.pdf"
    with app.test_request_context():
        export_portfolio(session, enrolment, actor=None, config=app.config,
                         instance_path=Path(app.instance_path), static_dir=STATIC,
                         store=FileStore(Path(app.config["STORAGE_DIR"])),
                         verify_base="https://x/verify", out=out)
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True,
                           check=True).stdout
    assert "CJK" in fonts, fonts  # Han characters come from a CJK font, not empty boxes
    text = PdfReader(str(out)).pages[0].extract_text()
    assert "王小明" in text and "Wójcik" in text


def test_paper_testimonies_are_in_the_witness_status_list(app, session, keys, tmp_path):
    """Defect 11: the PDF's witness list named only testimonies signed through a link."""
    from portfolio.models import WitnessRequest

    world = make_world(session, app.config["STORAGE_DIR"])
    paper = make_evidence(session, world.enrolment, world.learner, "witness_testimony",
                          title="Signed form from the shop floor", maps=("2.9",), submit=True,
                          details={"witness_name": "Marguerite Okonkwo",
                                   "witness_role": "Store manager",
                                   "relationship": "Line manager",
                                   "witness_contact": "m.okonkwo@shop.example"})
    # A testimony signed through a link is evidence too, but it is listed once, as signed.
    linked = make_evidence(session, world.enrolment, world.learner, "witness_testimony",
                           title="Signed through the link", maps=("2.9",), submit=True,
                           details={"witness_name": "Linus Linked", "witness_role": "Supervisor",
                                    "relationship": "Colleague",
                                    "witness_contact": "linus@shop.example"})
    session.get(WitnessRequest, world.witness_request_id).evidence_id = linked.id
    session.commit()
    out = tmp_path / "portfolio.pdf"
    with app.test_request_context():
        export_portfolio(session, world.enrolment, actor=world.assessor, config=app.config,
                         instance_path=Path(app.instance_path), static_dir=STATIC,
                         store=FileStore(Path(app.config["STORAGE_DIR"])),
                         verify_base="https://portfolio.example/verify", out=out)
    reader = PdfReader(out)
    text = "\n".join(page.extract_text() for page in reader.pages)
    listed = text[text.index("Witness status list"):text.index("Internal quality assurance")]
    assert "Testimonies recorded on paper" in listed
    assert "Marguerite Okonkwo" in listed and "Store manager" in listed
    assert f"E{paper.id}" in listed and "Linus Linked" not in listed
