"""Pure-Python mail helpers shared by every protocol: MIME structure, addresses, envelopes. No Django."""
