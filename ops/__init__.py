"""Running Mailsite in production: health and readiness checks, Prometheus metrics, structured logs, and the
PROXY protocol spoken by TCP load balancers in front of the mail listeners."""
