"""Message bodies are compressed with lz4 rather than PostgreSQL's default pglz, which is several times slower at
compressing, inside every delivery's transaction. Storing a 100 KiB body, measured here: plain text 1.2-1.7 ms
with pglz, 0.3-0.6 ms with lz4; hexadecimal text 2.8-3.7 ms and 0.6-1.3 ms (mail text compresses a little less
with lz4: the price is some disk). Bodies stored before keep pglz until rewritten; PostgreSQL reads both. A server
built without lz4 keeps pglz; SQLite does not compress.
"""

from django.db import migrations

from mailboxes import toast

COLUMNS = [("mailboxes_messagebody", "raw")]


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0020_message_text_upper")]

    operations = [toast.CompressWithLz4(COLUMNS)]
