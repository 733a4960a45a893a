from mailsite.commands import ListenerCommand


class Command(ListenerCommand):
    help = (
        "Run the smtpd listeners in the foreground. With MAILSITE_SMTP_PROCESSES > 1 (or --processes) that many "
        "listener processes share each port (SO_REUSEPORT), so the kernel spreads connections over several cores; "
        "they share one count of each client's connections."
    )
    protocols = ("smtpd",)
