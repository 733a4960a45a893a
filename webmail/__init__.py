"""Webmail: read, search, organise and send mail in the browser."""
