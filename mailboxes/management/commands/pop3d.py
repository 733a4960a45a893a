from mailsite.commands import ListenerCommand


class Command(ListenerCommand):
    help = "Run the pop3d listeners in the foreground (one process; start several to use more cores)."
    protocols = ("pop3d",)
