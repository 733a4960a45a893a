"""Account credentials beyond the main password: app passwords, TOTP second factor, recovery codes, sign-ins."""
