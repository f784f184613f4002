"""``python -m client.dls_client offline-request ...``: the reference client's command line.

``offline-request`` writes a registration request (SPEC section 12): the fields of an authorize
body without ``license_key`` and ``session_password``, plus ``requested_at``, as JSON on standard
output or to ``--out``. The device carries it to whoever registers it; the registration response
(the local license JWS) comes back the same way."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

FIELDS = ("edition", "addon", "origin", "platform", "device_name", "sdk_version", "app_id", "process_name")


def offline_request(args: argparse.Namespace, now: datetime | None = None) -> dict:
    body: dict = {"device_uuid": args.device_uuid, "product": args.product, "client_type": args.client_type}
    for name in FIELDS:
        value = getattr(args, name)
        if value:
            body[name] = value
    body["requested_at"] = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return body


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="dls-client", description="The DLS Admin reference SDK client.")
    commands = main.add_subparsers(dest="command", required=True)
    req = commands.add_parser("offline-request", help="write a registration request for an offline device")
    req.add_argument("--device-uuid", required=True)
    req.add_argument("--product", required=True, choices=["dbr", "dwt", "dlr"])
    req.add_argument("--client-type", required=True, choices=["web", "mobile", "desktop", "embedded", "server"])
    for name in FIELDS:
        req.add_argument("--" + name.replace("_", "-"), dest=name)
    req.add_argument("--out", help="write here instead of standard output")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.client_type == "web" and not args.origin:
        print("error: --origin is required for --client-type web", file=sys.stderr)
        return 2
    text = json.dumps(offline_request(args), indent=2) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
