"""The mail store: domains, accounts, aliases, folders and messages, and the services that write them."""
