from mailsite.commands import ListenerCommand


class Command(ListenerCommand):
    help = "Run the imapd listeners in the foreground (one process; start several to use more cores)."
    protocols = ("imapd",)
