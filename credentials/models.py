"""What an account signs in with besides its main password, and a record of its sign-ins."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

# Protocols an app password can be limited to. The webmail and admin never accept app passwords.
MAIL_PROTOCOLS = ("imap", "pop3", "smtp", "sieve")  # "sieve": ManageSieve (RFC 5804)


class AppPassword(models.Model):
    """A generated password for one mail client, limited to some protocols.

    Only a SHA-256 digest of the secret is stored: the secret is random with about 100 bits of entropy, so no
    slow hash is needed to resist guessing from a stolen table, and a login finds its row by index.
    """

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="app_passwords")
    name = models.CharField(max_length=100)
    protocols = models.CharField(max_length=32, help_text="comma-separated: imap, pop3, smtp")
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="app_password_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.protocols})"

    @property
    def protocol_list(self) -> list[str]:
        return [p for p in self.protocols.split(",") if p]


class SecurityOptions(models.Model):
    """Per-account sign-in policy; an account without a row has the defaults."""

    account = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="security_options"
    )
    require_app_passwords = models.BooleanField(
        default=False, help_text="Mail clients (IMAP, POP3, SMTP) must use an app password, not the main password"
    )

    def __str__(self) -> str:
        return f"security options of account {self.pk}"


class TotpDevice(models.Model):
    """An authenticator app's shared secret (RFC 6238). Confirmed once the user has entered a first code."""

    account = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="totp_device"
    )
    secret = models.CharField(max_length=64)  # base32, as the authenticator app receives it
    confirmed = models.DateTimeField(null=True, blank=True)
    # The last time step a code was accepted for: codes of that step or earlier are refused (RFC 6238 5.2).
    last_step = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"TOTP of account {self.pk}" + ("" if self.confirmed else " (not confirmed)")


class RecoveryCode(models.Model):
    """A single-use code that replaces a TOTP code; stored as a SHA-256 digest like app passwords."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.CharField(max_length=64)
    used = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "digest"], name="recovery_code_unique")]

    def __str__(self) -> str:
        return f"recovery code {self.pk}" + (" (used)" if self.used else "")


class SignIn(models.Model):
    """A successful sign-in, shown to the account owner (kept for SIGN_IN_DAYS)."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sign_ins")
    created = models.DateTimeField(default=timezone.now)
    protocol = models.CharField(max_length=8)  # imap, pop3, smtp, web
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    method = models.CharField(max_length=120)  # "password", "app password NAME", "password + TOTP", ...

    class Meta:
        indexes = [models.Index(fields=["account", "-created"], name="sign_in_account_recent")]

    def __str__(self) -> str:
        return f"{self.protocol} sign-in from {self.remote_ip} at {self.created:%Y-%m-%d %H:%M}"


class AcmeChallenge(models.Model):
    """An HTTP-01 challenge being answered (RFC 8555 8.3): every web process, on any host, can serve it."""

    token = models.CharField(max_length=255, primary_key=True)
    key_authorization = models.TextField()
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"ACME challenge {self.token}"


class WebSession(models.Model):
    """A signed-in webmail/admin session, listed for its owner, who can end it from another device. Pages name
    it by its id: the session key is a bearer secret and never leaves the server."""

    session_key = models.CharField(max_length=40, unique=True)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="web_sessions")
    created = models.DateTimeField(default=timezone.now)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"web session of account {self.account_id} from {self.remote_ip}"


class Passkey(models.Model):
    """A WebAuthn credential registered as a second factor for the webmail and admin."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkeys")
    name = models.CharField(max_length=100)
    credential_id = models.BinaryField(unique=True)
    public_key = models.BinaryField()  # COSE key, as the authenticator gave it
    sign_count = models.BigIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"passkey {self.name}"
