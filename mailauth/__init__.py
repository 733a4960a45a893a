"""Inbound trust at the MX: SPF, DKIM, DMARC and ARC verification and the Authentication-Results they give."""
