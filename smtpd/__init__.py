"""SMTP ingress: the MX listener and the submission listeners (aiosmtpd)."""
