from mailsite.commands import ListenerCommand


class Command(ListenerCommand):
    help = "Run the ManageSieve listener in the foreground (one process; start several to use more cores)."
    protocols = ("managesieve",)
