from mailsite import runtime
from mailsite.commands import ListenerCommand


class Command(ListenerCommand):
    help = (
        "Run every mail listener (SMTP, POP3, IMAP, ManageSieve) in the foreground in one process, which holds "
        "one copy of the interpreter, Django and the store for all of them. With MAILSITE_SMTP_PROCESSES > 1 (or "
        "--processes) that many such processes share each port, as `manage.py smtpd` does."
    )
    protocols = tuple(runtime.PROTOCOL_MODULES)
