"""Sign in and out, change password, manage personal API tokens."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from portfolio import db, notify
from portfolio.auth import resets, services, sessions, throttle
from portfolio.auth.forms import (
    ConfirmForm,
    ForgotForm,
    LoginForm,
    PasswordForm,
    ResetForm,
    TokenForm,
)
from portfolio.errors import NotFound, Throttled, ValidationFailed
from portfolio.models import ApiToken
from portfolio.security import SESSION_KEY, client_address, current_session_id

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Follow ?next= only to a path on this site."""
    if target:
        parts = urlsplit(target)
        local = not parts.scheme and not parts.netloc
        if local and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("dashboard.home")


def _locked_out(body: str, exc: Throttled) -> Any:
    """A 429 page that also tells scripts, in Retry-After, when to come back."""
    headers = {}
    if isinstance(exc, throttle.LockedOut):
        headers["Retry-After"] = str(exc.minutes * 60)
    return body, 429, headers


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        s = db.session()
        try:
            user = services.authenticate(
                s, form.email.data, form.password.data, client=client_address(),
                max_failures=current_app.config["LOGIN_MAX_FAILURES"],
                lockout_minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"],
            )
        except Throttled as exc:
            s.commit()
            form.form_errors.append(exc.message)
            return _locked_out(render_template("auth/login.html", form=form), exc)
        except ValidationFailed as exc:
            s.commit()  # the failed attempt is kept: it counts towards throttling
            form.form_errors.append(exc.message)
            status = 401
        else:
            raw = sessions.start_session(s, user, user_agent=request.headers.get("User-Agent"))
            s.commit()
            session.clear()
            session.permanent = True
            session[SESSION_KEY] = raw
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


SENT = ("If an account uses that address, we have emailed it a link to set a new password. "
        "The link works once, for {minutes} minutes. Nothing arrived? Check the address and "
        "your junk folder, or ask your centre admin.")


@bp.route("/forgot", methods=["GET", "POST"])
def forgot() -> Any:
    """Ask for a reset link. The answer is the same whether or not the account exists."""
    form = ForgotForm()
    minutes = int(current_app.config["RESET_LINK_MINUTES"])
    if form.validate_on_submit():
        s = db.session()
        try:
            asked = resets.request_reset(
                s, email=form.email.data, client=client_address(), minutes=minutes,
                per_address=int(current_app.config["RESET_MAX_PER_ACCOUNT"]),
                per_client=int(current_app.config["RESET_MAX_PER_CLIENT"]))
        except Throttled as exc:
            s.commit()
            form.form_errors.append(exc.message)
            return render_template("auth/forgot.html", form=form, sent=None), 429, {
                "Retry-After": "3600"}
        if asked is not None:
            link = url_for("auth.reset", token=asked.token, _external=True)
            notify.queue(notify.Message(
                (asked.user.email,), "Set a new password",
                f"Hello {asked.user.full_name},\n\nSomeone (we hope you) asked to set a new "
                f"password for your Evidence Builder account. Open this link to choose one; it "
                f"works once, for {minutes} minutes:\n\n{link}\n\nUsing it signs you out "
                "everywhere else. If you did not ask, ignore this email: your password stays "
                "as it is.\n"))
        s.commit()
        # The same page, word for word, whatever happened above.
        return render_template("auth/forgot.html", form=ForgotForm(formdata=None),
                               sent=SENT.format(minutes=minutes))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/forgot.html", form=form, sent=None), status


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> Any:
    """Choose a new password with a link from the email."""
    s = db.session()
    try:
        link = resets.check_link(s, token)
    except resets.LinkRefused as exc:
        return render_template("auth/reset.html", form=None, refused=exc.message), 410
    invited = link.purpose == "invite"
    form = ResetForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = resets.reset_password(
                s, token, form.new_password.data,
                min_length=int(current_app.config["PASSWORD_MIN_LENGTH"]))
        except resets.LinkRefused as exc:
            s.rollback()
            return render_template("auth/reset.html", form=None, refused=exc.message), 410
        except ValidationFailed as exc:
            s.rollback()
            form.new_password.errors = [*form.new_password.errors, exc.message]
            status = 422
        else:
            s.commit()
            logout_user()
            session.clear()
            first = user.full_name.split()[0]
            flash(f"Welcome, {first}: your password is set. Sign in with {user.email} and it."
                  if invited else f"Your password is set, {first}. Every other browser was "
                  "signed out. Sign in with the new password.", "success")
            return redirect(url_for("auth.login"))
    elif request.method == "POST":
        status = 422
    return render_template("auth/reset.html", form=form, refused=None, invited=invited,
                           person=link.user), status


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    s = db.session()
    sessions.sign_out(s, current_session_id())
    s.commit()
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


def _duration(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _account_page(password_form: PasswordForm | None = None, token_form: TokenForm | None = None,
                  new_token: str | None = None, status: int = 200) -> Any:
    return render_template(
        "auth/account.html",
        password_form=password_form or PasswordForm(prefix="pw"),
        token_form=token_form or TokenForm(prefix="tok"),
        revoke_form=ConfirmForm(),
        tokens=services.list_tokens(db.session(), current_user),
        new_token=new_token,
        sessions=sessions.list_active_sessions(
            db.session(), current_user,
            idle_minutes=int(current_app.config["SESSION_LIFETIME_MINUTES"])),
        current_session_id=current_session_id(),
        idle_phrase=_duration(int(current_app.config["SESSION_LIFETIME_MINUTES"])),
    ), status


@bp.route("/account")
@login_required
def account() -> Any:
    return _account_page()


def _password_refusal(minutes: int) -> str:
    return (f"Too many wrong passwords. Try again in {throttle.wait_phrase(minutes)}, "
            "or ask your centre admin to reset your password.")


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password() -> Any:
    form = PasswordForm(prefix="pw")
    if not form.validate_on_submit():
        return _account_page(password_form=form, status=422)
    s = db.session()
    try:
        ok = services.check_password(
            s, current_user, form.current_password.data, client=client_address(),
            max_failures=current_app.config["LOGIN_MAX_FAILURES"],
            lockout_minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"],
            refusal=_password_refusal, record_as="password:" + client_address())
    except Throttled as exc:
        form.current_password.errors.append(exc.message)
        return _locked_out(_account_page(password_form=form)[0], exc)
    if not ok:
        s.commit()  # the wrong password is recorded
        form.current_password.errors.append("That is not your current password.")
        return _account_page(password_form=form, status=422)
    try:
        services.set_password(s, current_user, form.new_password.data,
                              min_length=current_app.config["PASSWORD_MIN_LENGTH"],
                              keep_session_id=current_session_id())
    except ValidationFailed as exc:
        form.new_password.errors.append(exc.message)
        return _account_page(password_form=form, status=422)
    s.commit()
    # The login id rotated: re-issue this session so it survives while all others end.
    login_user(current_user._get_current_object())
    flash("Your password is changed. Other devices have been signed out.", "success")
    return redirect(url_for("auth.account"))


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token() -> Any:
    form = TokenForm(prefix="tok")
    if not form.validate_on_submit():
        return _account_page(token_form=form, status=422)
    s = db.session()
    _token, raw = services.create_api_token(s, current_user, form.name.data)
    s.commit()
    # Shown once, in this response only; never stored or redirected through the session.
    return _account_page(new_token=raw, status=201)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Any:
    s = db.session()
    token = s.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        raise NotFound("No such token.")
    services.revoke_api_token(s, token, actor=current_user)
    s.commit()
    flash(f"Token “{token.name}” is revoked.", "success")
    return redirect(url_for("auth.account"))



def _signed_out(message: str) -> Any:
    logout_user()
    session.clear()
    flash(message, "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/sessions/end-all", methods=["POST"])
@login_required
def end_all_sessions() -> Any:
    s = db.session()
    sessions.end_all_sessions(s, current_user)
    s.commit()
    return _signed_out("You are signed out everywhere, on this device too. "
                       "API tokens still work until you revoke them.")


@bp.route("/account/sessions/<int:session_id>/end", methods=["POST"])
@login_required
def end_session(session_id: int) -> Any:
    s = db.session()
    current = current_session_id()
    ended = sessions.end_session(s, current_user, session_id, current_id=current)
    s.commit()
    if session_id == current:
        return _signed_out("You are signed out.")
    flash(f"{ended.device} is signed out.", "success")
    return redirect(url_for("auth.account"))
