"""Settings → Import mail: bring an account over from another IMAP server, in the background, with progress.

The form starts a job (`transfer.jobs.start`); a Celery worker runs it, and the page shows its progress live
(`importing.js` asks `status` each second while it runs) and, at the end, the report: what each folder got,
what was found imported before, and what was skipped and why. Running it again goes on where it stopped.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from transfer import jobs
from transfer.models import ImportJob
from webmail.views.common import account, account_required

SECURITY = [
    ("tls", "TLS (port 993)"),
    ("starttls", "STARTTLS (port 143)"),
    ("plain", "None: the password travels in the clear"),
]
DEFAULT_PORTS = {"tls": 993, "starttls": 143, "plain": 143}


class ImportForm(forms.Form):
    host = forms.CharField(label="Server", max_length=253, help_text="For example imap.example.com")
    port = forms.IntegerField(
        label="Port", min_value=1, max_value=65535, required=False, help_text="Empty: the usual one"
    )
    security = forms.ChoiceField(label="Security", choices=SECURITY, initial="tls")
    user = forms.CharField(label="User name", max_length=320, help_text="Often your whole address there")
    password = forms.CharField(
        label="Password",
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Used for this import only, and forgotten when it ends",
    )

    def clean_host(self) -> str:
        host = self.cleaned_data["host"].strip().rstrip(".").lower()
        if not host or any(c.isspace() or c in "/@:[]" for c in host):
            raise forms.ValidationError("Enter a server name such as imap.example.com.")
        return host


def status_of(job: ImportJob | None) -> dict:
    if job is None:
        return {"state": None}
    return {
        "state": job.state,
        "active": job.state in jobs.ACTIVE,
        "server": f"{job.user} at {job.host}:{job.port}",
        "folders_total": job.folders_total,
        "folders_done": job.folders_done,
        "folder": job.folder,
        "messages_total": job.messages_total,
        "messages_done": min(job.messages_done, job.messages_total) if job.messages_total else job.messages_done,
        "imported": job.imported,
        "already": job.already,
        "skipped": job.skipped,
        "counts": job.counts,
        "error": job.error,
    }


@account_required
@require_http_methods(["GET", "POST"])
def import_mail(request: HttpRequest) -> HttpResponse:
    me = account(request)
    form = ImportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        port = data["port"] or DEFAULT_PORTS[data["security"]]
        try:
            jobs.start(me, data["host"], port, data["security"], data["user"], data["password"])
        except jobs.JobError as exc:
            form.add_error(None, str(exc))
        else:
            notices.success(request, f"The import from {data['host']} has started.")
            return redirect("webmail:import_mail")
    job = jobs.latest(me)
    if job is not None and request.method == "GET":
        form = ImportForm(initial={"host": job.host, "port": job.port, "security": job.mode, "user": job.user})
    return render(request, "webmail/import.html", {"form": form, "job": job, "status": status_of(job)})


@account_required
@require_GET
def import_status(request: HttpRequest) -> JsonResponse:
    return JsonResponse(status_of(jobs.latest(account(request))))
