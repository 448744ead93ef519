#!/usr/bin/python3
"""An SMTP server on loopback for the alert tests (Debian's python3-aiosmtpd).

    smtp_receiver.py PORT OUT CERT KEY   STARTTLS offered and required, with CERT and KEY
    smtp_receiver.py PORT OUT plain      no STARTTLS at all (a server dirsync must refuse)

Each message is appended to OUT as one JSON line (envelope, whether it came over TLS, content);
"ready" is printed once the server listens.
"""
import json
import ssl
import sys
import time

from aiosmtpd.controller import Controller

port, out = int(sys.argv[1]), sys.argv[2]


class Keep:
    async def handle_DATA(self, server, session, envelope):
        with open(out, "a", encoding="utf-8") as kept:
            kept.write(json.dumps({
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "tls": session.ssl is not None,
                "content": envelope.content.decode("utf-8", "replace"),
            }) + "\n")
        return "250 OK"


if sys.argv[3] == "plain":
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
else:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[3], sys.argv[4])
    controller = Controller(Keep(), hostname="127.0.0.1", port=port,
                            tls_context=context, require_starttls=True)
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
