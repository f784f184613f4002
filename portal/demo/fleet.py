"""The demo's normal traffic over the month (``portal.demo.history``): what one customer's fleet
does, from its own few networks, so the insight pages have a month to show and the anomaly
flags (docs/insight.md) stay quiet on it.

Coarse on purpose, as each request costs a transaction: a phone or a scanner sends one report
per working day carrying the day's counts (the month's charts are per day) and one per 2-hour
bucket today (today's chart is per 2 hours); a browser contacts every few days; concurrency,
counted per 3-minute slot, gets one busy slot per working day."""

from __future__ import annotations

from datetime import timedelta

from licenses.models import Project
from portal.demo.history import DAYS, Client, History

# Client networks (documentation ranges, RFC 5737 and 3849): Acme's office and warehouse, Globex's
# office and its servers (IPv6).
ACME_OFFICE, ACME_WAREHOUSE, GLOBEX_OFFICE, GLOBEX_SERVERS = "203.0.113.", "198.51.100.", "192.0.2.", "2001:db8:10::"
BROWSERS = {
    "Chrome 131": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Edge 131": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Edg/131.0",
    "Firefox 133": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Safari 18": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
}


def web(h: History, project: Project) -> None:
    """acme-web: browsers on 30 seats + 3 grace (per_client_device). Six were last seen over a
    month ago (the bulk release has something to free), 27 more come one after another and
    contact every few days, the 34th is refused, and tries again today. A document viewer on
    the per_domain item from the company's own sites."""
    names = ["Front desk", "Reception", "Sales laptop", "Support", "Warehouse PC", "Lab"]
    for k in range(34):
        platform = list(BROWSERS)[k % 4]
        origin = "https://app.acme.example" if k % 3 else "https://portal.acme.example"
        fields = {"product": "dbr", "edition": "javascript", "client_type": "web", "origin": origin}
        fields |= {"platform": platform, "device_name": f"{names[k % len(names)]} {k + 1}"}
        client = Client(f"web-{k + 1:03d}", fields, f"{ACME_OFFICE}{20 + k}", BROWSERS[platform])
        if k < 6:  # idle since: seen 31 to 33 days ago
            h.authorize(project, client, h.day_slot(DAYS + 3 - k % 3, 9 + k))
            continue
        first = DAYS - (k - 6) * DAYS // 28
        if not h.authorize(project, client, h.day_slot(first, 8 + k % 9, (k * 7) % 60)):
            if k == 33:  # the refused one tries again this morning, from another browser
                h.authorize(project, client, h.now - timedelta(hours=1), device_name="New intern laptop")
            continue
        day = first - h.rng.randint(2, 6)
        while day >= 0:
            at = h.day_slot(day, 8 + k % 9, 3 * h.rng.randint(0, 19))
            if at <= h.now:
                h.authorize(project, client, at)
            day -= h.rng.randint(4, 8)
    for k in range(3):
        fields = {"product": "dwt", "client_type": "web", "origin": "https://docs.acme.example"}
        client = Client(
            f"viewer-{k + 1}", fields | {"device_name": f"Document viewer {k + 1}"}, f"{ACME_OFFICE}{80 + k}"
        )
        for day in range(DAYS - 2 * k, 0, -h.rng.randint(4, 8)):
            h.authorize(project, client, h.day_slot(day, 10 + k))


def _daily(h: History, project: Project, client: Client, counts, *, today_counts) -> None:
    """One report per working day carrying the day's counts, and one per 2-hour bucket today."""
    for day in range(DAYS - 1, 0, -1):
        values = counts(h.weekday(day))
        if values:
            h.report(project, client, h.day_slot(day, 16, 3 * h.rng.randint(0, 19)), **values)
    for hour in range(7, 19, 2):
        slot = h.day_slot(0, hour, 3 * h.rng.randint(0, 39))
        values = today_counts(h.weekday(0))
        if h.closed(slot) and values:
            h.report(project, client, slot, **values)


def warehouse(h: History, project: Project) -> None:
    """acme-warehouse: four phones scanning barcodes, a few hundred a working day each; a
    receiving desk on the add-on's scan quota every other day."""
    rng = h.rng
    for k in range(4):
        fields = {"product": "dbr", "edition": "mobile", "client_type": "mobile", "platform": "Android 14"}
        client = Client(
            f"scanner-{k + 1:02d}", fields | {"device_name": f"Handheld {k + 1}"}, f"{ACME_WAREHOUSE}{40 + k}"
        )
        if h.authorize(project, client, h.day_slot(DAYS, 7, 3 * k)):
            _daily(
                h, project, client,
                lambda busy: {"barcode_scans": rng.randint(300, 1000)} if busy else None,
                today_counts=lambda busy: {"barcode_scans": rng.randint(40, 160)} if busy else None,
            )  # fmt: skip
    fields = {"product": "dwt", "addon": "barcode_reader", "client_type": "desktop", "platform": "Windows 11"}
    desk = Client("receiving-desk", fields | {"device_name": "Receiving desk"}, f"{ACME_WAREHOUSE}10")
    if h.authorize(project, desk, h.day_slot(DAYS, 7, 30)):
        _daily(
            h, project, desk,
            lambda busy: {"barcode_scans": rng.randint(60, 300)} if busy and rng.random() < 0.5 else None,
            today_counts=lambda busy: {"barcode_scans": rng.randint(5, 30)} if busy and rng.random() < 0.5 else None,
        )  # fmt: skip


def documents(h: History, project: Project) -> None:
    """acme-documents: three scanning stations counting pages (core) and a little OCR, on
    working days."""
    rng = h.rng
    for k in range(3):
        fields = {"product": "dwt", "client_type": "desktop", "platform": "Windows 11"}
        client = Client(
            f"twain-pc-{k + 1}", fields | {"device_name": f"Scanning station {k + 1}"}, f"{ACME_OFFICE}{60 + k}"
        )
        if h.authorize(project, client, h.day_slot(DAYS, 8, 3 * k)):
            _daily(
                h, project, client,
                lambda busy: {"pages": {"core": rng.randint(200, 1100), "ocr": rng.randint(0, 40)}} if busy else None,
                today_counts=lambda busy: {"pages": {"core": rng.randint(20, 180), "ocr": rng.randint(0, 6)}} if busy else None,
            )  # fmt: skip


def labels(h: History, project: Project) -> None:
    """globex-labels: 12 desktops on 10 concurrent seats (10 % overuse: a ceiling of 11). Each
    past working day a few print labels at once, at some hour; on Monday mornings all 12 do, so
    one is counted on the overuse budget and the 12th is refused at the ceiling. Today (the
    concurrency page's default day), if a working day, a slot every working hour so far, along a
    day's curve. A desk authorizes, then reports the slot it printed in (SPEC 4: a device with a
    non-zero report counts in its slot)."""
    desks = []
    for k in range(12):
        fields = {"product": "dlr", "edition": "desktop", "client_type": "desktop", "platform": "Windows 11"}
        desks.append(Client(f"label-desk-{k + 1:02d}", fields | {"device_name": f"Label printer desk {k + 1}"}, f"{GLOBEX_OFFICE}{30 + k}"))  # fmt: skip
    sessions = []  # (slot, desks printing in it)
    for day in range(DAYS - 1, 0, -1):
        if h.weekday(day):
            monday = h.day(day).weekday() == 0
            hour, busy = (10, 12) if monday else (h.rng.randint(8, 16), h.rng.randint(2, 5))
            sessions.append((h.day_slot(day, hour, 3 * h.rng.randint(0, 19)), busy))
    if h.weekday(0):
        curve = {8: 2, 9: 4, 10: 7, 11: 8, 12: 4, 13: 5, 14: 7, 15: 6, 16: 4, 17: 2}
        if h.day(0).weekday() == 0:
            curve[10] = 12
        sessions += [(h.day_slot(0, hour, 3 * h.rng.randint(0, 19)), busy) for hour, busy in curve.items()]
    for slot, busy in sessions:
        if not h.closed(slot):
            continue
        for desk in h.rng.sample(desks, busy):
            if h.authorize(project, desk, slot + timedelta(seconds=5)):
                h.report(project, desk, slot, barcode_scans=h.rng.randint(1, 20))


def backend(h: History, project: Project) -> None:
    """globex-backend: two servers hold the two server seats; a third is refused whenever it
    starts (seven tries in the last minutes)."""
    start = h.now - timedelta(minutes=5)
    for k in range(2):
        fields = {"product": "dbr", "edition": "server", "client_type": "server", "platform": "Linux x86_64"}
        client = Client(
            f"api-server-{k + 1}", fields | {"device_name": f"api-server-{k + 1}"}, f"{GLOBEX_SERVERS}{k + 1}"
        )
        h.authorize(project, client, start + timedelta(seconds=k))
    fields = {"product": "dbr", "edition": "server", "client_type": "server", "device_name": "batch-server"}
    batch = Client("batch-server", fields, f"{GLOBEX_SERVERS}9")
    for k in range(7):
        h.authorize(project, batch, start + timedelta(seconds=20 * (k + 1)))
