"""Sieve mail filtering (RFC 5228 and extensions): parser, validator, interpreter, storage, ManageSieve."""
