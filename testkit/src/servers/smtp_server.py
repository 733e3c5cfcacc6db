"""A real SMTP server (aiosmtpd) for clarion's tests and demo, on 127.0.0.1.

Run by clarion-testkit's `servers::Aio`, which writes this file out.

Prints `READY <port>` once it listens, then writes one JSON line per
message it receives to --out (before it answers the final `.`, so a client
that got its reply can read the record at once):

    {"peer": [host, port], "mail_from": ..., "rcpt_tos": [...],
     "data": "<raw message>", "auth_user": ..., "tls": bool, "accepted": bool}

Options: --starttls CERT KEY (offer STARTTLS), --implicit-tls CERT KEY (TLS
from the first byte), --auth USER:PASSWORD (require AUTH), --tempfail N
(answer the first N messages with 451 after DATA), --reject-rcpt ADDR
(answer RCPT TO for ADDR with 550; repeatable), --close-after-each (close
the connection after each message's reply). Each record also has the message
as Python's `email` package parses it: "content_type", "headers" ([name,
value] pairs, decoded) and "parts" ([{"type", "content"}] of the leaves).

Scripting (with --out): each line written to our stdin scripts the answer to
the final `.` of one later message, in order; `OK` is printed once it is in
effect. A line is either a reply (`451 4.3.0 try later`, recorded with
"accepted": false) or `hang` (recorded, then never answered). Messages
without a scripted line get --tempfail's or the normal answer. The server
exits when stdin is closed.
"""

import argparse
import asyncio
import collections
import email
import email.policy
import json
import logging
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, out, tempfail, reject, close_after_each):
        self.out = out
        self.tempfail = tempfail
        self.reject = set(a.lower() for a in reject)
        self.close_after_each = close_after_each
        # Scripted answers for the next messages (see the docstring).
        self.scripted = collections.deque()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.out is None:
            return "250 2.0.0 OK"
        scripted = self.scripted.popleft() if self.scripted else None
        if scripted is None:
            accepted = self.tempfail <= 0
            self.tempfail -= 1
        else:
            accepted = False
        auth = session.auth_data
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        parts = [
            {"type": part.get_content_type(), "content": part.get_content()}
            for part in parsed.walk()
            if not part.is_multipart()
        ]
        transport = server.transport
        record = {
            "peer": list(session.peer[:2]),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8", "replace"),
            "auth_user": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "tls": session.ssl is not None or transport.get_extra_info("ssl_object") is not None,
            "accepted": accepted,
            "content_type": parsed.get_content_type(),
            "headers": [[k, str(v)] for k, v in parsed.items()],
            "parts": parts,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        if scripted == "hang":
            await asyncio.Event().wait()
        if scripted is not None:
            return scripted
        if self.close_after_each:
            # Like a relay whose idle timeout closes the connection after the reply.
            asyncio.get_running_loop().call_soon(transport.close)
        if not accepted:
            return "451 4.3.0 Temporary failure, try again later"
        return "250 2.0.0 OK: queued as TEST%d" % session.peer[1]


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main():
    # Quiet: the tests read results from --out, not from the log.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    p = argparse.ArgumentParser()
    p.add_argument("--out", help="where to record messages; none: record nothing (benchmarks)")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth")
    p.add_argument("--tempfail", type=int, default=0)
    p.add_argument("--reject-rcpt", action="append", default=[])
    p.add_argument("--close-after-each", action="store_true")
    args = p.parse_args()

    handler = Handler(args.out, args.tempfail, args.reject_rcpt, args.close_after_each)
    kwargs = {"hostname": "clarion-test", "enable_SMTPUTF8": True}
    if args.starttls:
        kwargs["tls_context"] = tls_context(*args.starttls)
        kwargs["require_starttls"] = True
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        # Over STARTTLS, AUTH is only offered after the upgrade.
        kwargs["auth_require_tls"] = bool(args.starttls)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **kwargs),
        host="127.0.0.1",
        port=0,
        ssl=tls_context(*args.implicit_tls) if args.implicit_tls else None,
    )
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)

    async def script(line):
        handler.scripted.append(line)

    def control():
        # Exit when the test closes our stdin (or dies).
        for line in sys.stdin:
            line = line.strip()
            if line:
                asyncio.run_coroutine_threadsafe(script(line), loop).result()
                print("OK", flush=True)

    await loop.run_in_executor(None, control)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
