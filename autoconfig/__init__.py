"""Mail client auto-configuration: Thunderbird autoconfig, Outlook autodiscover (POX), an Apple configuration
profile, the MTA-STS policy (RFC 8461), and the DNS records that point clients and senders at them."""
