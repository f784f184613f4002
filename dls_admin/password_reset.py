"""The password-reset form (``/accounts/password-reset/``): rate limited, and the same answer, the
same work and the same time for an address that has an account and one that has none.

Django's own view looks the address up and sends the email inside the request, so a known
address answers later than an unknown one (an SMTP round trip), which tells anyone which
addresses have accounts. Here the request does the same steps whatever the address: validate the
form, count the request against the client address (``PASSWORD_RESET_RATE_LIMIT_ADDRESS``) and
the email (``PASSWORD_RESET_RATE_LIMIT_EMAIL``), hand the address to a background thread, and
redirect to the "check your email" page. The thread looks the users up and sends the email
(nothing for an unknown address). Over a limit, the form answers 429 with an error saying when to
try again, again the same for known and unknown addresses. The limits count in the Django cache
(the API's fixed windows); with Redis down they fall back to per-process counts.

``PASSWORD_RESET_IN_BACKGROUND`` off (the test suite's default) sends inside the request."""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.views import PasswordResetView
from django.contrib.sites.shortcuts import get_current_site
from django.db import connection
from django.http import HttpResponseRedirect

from api.ratelimit import hit, parse_rate
from dls_admin.security import client_address

logger = logging.getLogger("dls_admin.password_reset")

TEMPLATES = {
    "email_template_name": "registration/password_reset_email.txt",
    "html_email_template_name": "registration/password_reset_email.html",
    "subject_template_name": "registration/password_reset_subject.txt",
}

# Two threads per web process: an SMTP send takes well under a second, and a queue longer than
# that is itself a sign of abuse the rate limits are there for.
executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="password-reset")


def send_reset_email(email: str, *, domain: str, use_https: bool) -> None:
    """Email a reset link to every active user with this address (Django's own rules: a usable
    password, the address compared case-insensitively). Runs outside the request."""
    try:
        form = PasswordResetForm({"email": email})
        if form.is_valid():
            form.save(
                domain_override=domain,
                use_https=use_https,
                from_email=settings.DEFAULT_FROM_EMAIL,
                email_template_name=TEMPLATES["email_template_name"],
                html_email_template_name=TEMPLATES["html_email_template_name"],
                subject_template_name=TEMPLATES["subject_template_name"],
            )
    except Exception:
        logger.exception("password reset: sending the email failed")
    finally:
        if getattr(settings, "PASSWORD_RESET_IN_BACKGROUND", True):
            connection.close()  # this thread's own connection


def over_limit(*, address: str | None, email: str, now: float) -> int | None:
    """None while the request is within both limits, else the seconds to wait."""
    waits: list[int] = []
    for scope, identity, setting in (
        ("pwreset-addr", address or "", "PASSWORD_RESET_RATE_LIMIT_ADDRESS"),
        ("pwreset-email", email.strip().lower(), "PASSWORD_RESET_RATE_LIMIT_EMAIL"),
    ):
        rate = parse_rate(getattr(settings, setting, "0"), setting=setting)
        if rate is not None:
            wait = hit(scope, identity, rate, now)
            if wait is not None:
                waits.append(wait)
    return max(waits) if waits else None


class ThrottledPasswordResetView(PasswordResetView):
    def form_valid(self, form):
        email = form.cleaned_data["email"]
        wait = over_limit(address=client_address(self.request), email=email, now=time.time())
        if wait is not None:
            minutes = max(1, math.ceil(wait / 60))
            form.add_error(
                None,
                "Too many reset requests for this email or from your address. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}; a link already sent stays valid.",
            )
            logger.warning("password reset refused: rate limited", extra={"wait_s": wait})
            return self.render_to_response(self.get_context_data(form=form), status=429)
        site = get_current_site(self.request)
        domain, use_https = site.domain, self.request.is_secure()
        if getattr(settings, "PASSWORD_RESET_IN_BACKGROUND", True):
            executor.submit(send_reset_email, email, domain=domain, use_https=use_https)
        else:
            send_reset_email(email, domain=domain, use_https=use_https)
        return HttpResponseRedirect(self.get_success_url())


view = ThrottledPasswordResetView.as_view(**TEMPLATES)
