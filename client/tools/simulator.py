"""The fleet simulator behind ``manage.py simulate_fleet``: many ``client.dls_client.sdk.Device``s against
a running server, in compressed time.

Timeline: the run covers ``slots`` 3-minute slots ending with the current one, so every simulated
``slot_start`` is in the past (within 30 days) and never in the future; with ``speed`` S one
simulated slot takes 180/S real seconds (0: as fast as the server answers). Each device joins
early in the run, authorizes, scans barcodes (or counts pages) every slot, goes offline for a
stretch if chosen (``offline_fraction``), keeping its reports and sending them in order when it
is back, and releases its seat at the end with ``release``. Injected network errors
(``error_rate``) make the client retry with the same report_id. At the end, the totals the
devices sent are compared with the sum of ``counted`` in the answers, and with the server's
database when it is this process's database too."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from client.dls_client.sdk import SLOT, ApiClient, Device, DeviceProfile, Report, Sighting, rfc3339, slot_start_of

MAX_SLOTS = 29 * 480  # 29 days: every slot stays within the API's 30-day window during the run

# A device profile for each option when only option names are given (like the demo licenses).
DEFAULT_PROFILES = {
    "per_client_device": DeviceProfile(
        "dbr", "web", option="per_client_device", edition="javascript", origin="https://app.example.com"
    ),
    "per_barcode_scan": DeviceProfile("dbr", "mobile", option="per_barcode_scan", edition="mobile"),
    "per_page": DeviceProfile("dwt", "desktop", option="per_page", modules=("core",)),
    "per_concurrent_device": DeviceProfile("dlr", "desktop", option="per_concurrent_device", edition="desktop"),
    "per_server": DeviceProfile("dbr", "server", option="per_server", edition="server"),
    "per_domain": DeviceProfile("dwt", "web", option="per_domain", origin="https://app.example.com"),
}

BARCODES = [("QR_CODE", "ITEM-0001"), ("QR_CODE", "ITEM-0002"), ("CODE_128", "4006381333931"),
            ("EAN_13", "9780201379624"), ("DATAMATRIX", "LOT-77/A"), ("PDF417", "ID:448812")]  # fmt: skip


def parse_profile(spec: str) -> DeviceProfile:
    """``product=dbr,client_type=web,edition=javascript,origin=https://a.example.com,option=...,
    modules=core+ocr`` -> DeviceProfile."""
    fields: dict = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if name not in ("product", "client_type", "option", "edition", "addon", "origin", "modules"):
            raise ValueError(f"unknown profile field {name!r}")
        fields[name] = tuple(m for m in value.split("+") if m) if name == "modules" else value
    if "product" not in fields or "client_type" not in fields:
        raise ValueError(f"profile {spec!r} needs product= and client_type=")
    return DeviceProfile(**fields)


def profiles_from_items(items) -> list[DeviceProfile]:
    """One profile per item of a project (when the simulator runs beside the server's database)."""
    profiles = []
    for item in items:
        client = {"per_server": "server", "per_domain": "web"}.get(item.option)
        if client is None:
            client = {"javascript": "web", "mobile": "mobile", "desktop": "desktop", "embedded": "embedded"}.get(
                item.edition, "web" if item.product == "dwt" else "desktop"
            )
        origin = None
        if client == "web":
            domain = (item.domain or "example.com").removeprefix("*.")
            origin = f"https://app.{domain}"
        modules = tuple(sorted(item.quantities)) if item.option == "per_page" and item.quantities else ("core",)
        profiles.append(
            DeviceProfile(
                item.product,
                client,
                option=item.option,
                edition=item.edition or None,
                addon=item.addon or None,
                origin=origin,
                modules=modules,
            )  # fmt: skip
        )
    return profiles


@dataclass
class FleetConfig:
    base_url: str
    license_key: str
    profiles: list[DeviceProfile]
    devices: int = 10
    slots: int = 20
    speed: float = 60.0
    offline_fraction: float = 0.2
    error_rate: float = 0.0
    raw_fraction: float = 0.5  # devices that send raw sightings (the server dedups) vs counts
    release: bool = False
    concurrency: int = 8
    seed: int | None = None
    run_id: str = ""
    progress_every_s: float = 10.0


@dataclass
class Totals:
    reports: int = 0
    barcode_scans: int = 0
    pages: Counter = field(default_factory=Counter)

    def add(self, scans: int, pages: dict[str, int]) -> None:
        self.reports += 1
        self.barcode_scans += scans
        self.pages.update({m: n for m, n in pages.items() if n})

    def as_dict(self) -> dict:
        return {"reports": self.reports, "barcode_scans": self.barcode_scans, "pages": dict(sorted(self.pages.items()))}


@dataclass
class SimDevice:
    device: Device
    rng: random.Random
    raw: bool
    join_slot: int
    offline: range
    frame: int = 0
    reauthorize_at: int = 0
    slot: int = 0  # the slot being simulated
    flushes: int = 0
    flushed_reports: int = 0


class Fleet:
    def __init__(self, config: FleetConfig, *, out: Callable[[str], None] = print, http: httpx.Client | None = None):
        if not 1 <= config.slots <= MAX_SLOTS:
            raise ValueError(f"slots must be 1 to {MAX_SLOTS} (29 days)")
        if config.speed != 0 and config.speed < 1:
            raise ValueError(
                "speed must be 0 (as fast as possible) or at least 1: slower than real time would age reports"
            )
        if not config.profiles:
            raise ValueError("no device profile")
        self.config = config
        self.out = out
        self.run_id = config.run_id or uuid.uuid4().hex[:8]
        self.prefix = f"sim-{self.run_id}-"
        self.http = http or httpx.Client(
            timeout=30.0,
            limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
        )
        self.lock = threading.Lock()
        self.sent = Totals()
        self.counted = Totals()
        self.refusals: Counter = Counter()  # (endpoint, code) -> n
        self.rejected: list[str] = []  # reports the server refused to record (4xx): never expected
        self.duplicates = 0
        self.authorizations = 0
        self.releases = 0
        seed_rng = random.Random(config.seed)
        self.devices: list[SimDevice] = []
        for i in range(config.devices):
            rng = random.Random(seed_rng.getrandbits(64))
            profile = config.profiles[i % len(config.profiles)]
            client = ApiClient(
                config.base_url, http=self.http, error_rate=config.error_rate, rng=random.Random(rng.getrandbits(64))
            )
            join = rng.randrange(max(1, config.slots // 5))
            offline = range(0)
            if rng.random() < config.offline_fraction:
                start = rng.randrange(join, config.slots)
                offline = range(start, start + rng.randint(1, max(1, config.slots // 4)))
            device = Device(
                client,
                config.license_key,
                f"{self.prefix}{i:05d}",
                profile,
                name=f"Simulated {profile.client_type} {i}",
            )
            self.devices.append(
                SimDevice(device, rng, raw=rng.random() < config.raw_fraction, join_slot=join, offline=offline)
            )

    # -- usage of one slot --------------------------------------------------------------------

    def make_report(self, sim: SimDevice, slot_start: datetime) -> Report | None:
        profile, rng, dedup = sim.device.profile, sim.rng, sim.device.dedup
        if dedup is None:
            return None  # never authorized: no local license, nothing to report with
        report = Report(report_id=f"{sim.device.device_uuid}@{rfc3339(slot_start)}", slot_start=slot_start)
        if profile.reports_pages:
            report.pages = {m: rng.choice((0, 0, 1, 2, 5, 12)) for m in profile.modules}
            report.pages = {m: n for m, n in report.pages.items() if n}
        else:
            sightings = self.sightings(sim, slot_start)
            counted = dedup.count(sightings) if sightings else 0
            report.expected_scans = counted
            if sim.raw:
                report.sightings = sightings
            else:
                report.barcode_scans = counted
        if not (report.barcode_scans or report.sightings or report.pages) and profile.client_type != "server":
            return None  # nothing to say; servers send a zero-count heartbeat instead
        return report

    def sightings(self, sim: SimDevice, slot_start: datetime) -> list[Sighting]:
        """A few barcodes held in front of the camera (10 frames a second), some shown again
        after a short gap, some twice in a frame: exercises every part of the 3-second rule."""
        rng = sim.rng
        base = int(slot_start.timestamp() * 1000)
        out: list[Sighting] = []
        for _ in range(rng.choice((0, 1, 1, 2, 3, 4))):
            fmt, text = rng.choice(BARCODES)
            start = base + rng.randrange(0, 170_000)
            hold = rng.choice((0, 100, 500, 1500, 2900, 3100, 4000))
            for _shown in range(rng.choice((1, 1, 2))):  # shown again after a gap of 1-6 s
                for ts in range(start, min(start + hold, base + 179_900) + 1, 100):
                    frame = ts // 100
                    out.append(Sighting(ts, frame, fmt, text))
                    if rng.random() < 0.05:
                        out.append(Sighting(ts, frame, fmt, text))  # twice in one frame
                start = min(start + hold + rng.choice((1000, 2999, 3001, 6000)), base + 179_900)
        return out

    # -- one device, one slot ---------------------------------------------------------------------

    def step(self, sim: SimDevice, k: int, slot_start: datetime) -> None:
        if k < sim.join_slot:
            return
        online = k not in sim.offline
        device = sim.device
        sim.slot = k
        if online and (not device.authorized or device.stopped) and k >= sim.reauthorize_at:
            self.authorize(sim, k)
        if device.dedup is not None and not device.stopped:  # has worked before: a local license
            report = self.make_report(sim, slot_start)
            if report is not None:
                device.buffer.append(report)
        if online and device.buffer:
            self.flush(sim)

    def authorize(self, sim: SimDevice, k: int) -> None:
        try:
            answer = sim.device.authorize()
        except httpx.TransportError:
            return
        with self.lock:
            self.authorizations += 1
            if answer.status_code != 200:
                self.refusals[("authorize", answer.error_code)] += 1
        if answer.status_code != 200:
            sim.reauthorize_at = k + 5

    def flush(self, sim: SimDevice) -> None:
        device = sim.device
        if len(device.buffer) > 1:
            sim.flushes += 1
            sim.flushed_reports += len(device.buffer)
        while device.buffer:
            report = device.buffer[0]
            try:
                answer = device.send(report)
            except httpx.TransportError:
                return  # still unreachable: keep the buffer, try again next slot
            device.buffer.pop(0)
            body = answer.body
            with self.lock:
                if answer.status_code != 200:
                    self.rejected.append(f"{report.report_id}: {answer.status_code} {body}")
                    continue
                self.sent.add(report.expected_scans, report.pages)
                counted = body.get("counted") or {}
                self.counted.add(int(counted.get("barcode_scans") or 0), counted.get("pages") or {})
                if body.get("status") == "duplicate":
                    self.duplicates += 1
                if body.get("allowed") is False:
                    self.refusals[("usage", answer.error_code)] += 1
            if body.get("allowed") is False:
                if answer.error_code == 4:
                    device.authorized = False  # lost its seat: authorize again
                else:
                    device.stopped = True  # quota, concurrency or term: stop, try again in 5 slots
                    sim.reauthorize_at = sim.slot + 5

    def finish(self, sim: SimDevice) -> None:
        """End of the run: every device comes back online and sends what it kept, then
        uninstalls (release) when asked."""
        for _ in range(3):
            if sim.device.buffer:
                self.flush(sim)
        if self.config.release and sim.device.dedup is not None:
            try:
                answer = sim.device.release()
            except httpx.TransportError:
                return
            with self.lock:
                self.releases += answer.status_code == 200
                if answer.status_code != 200:
                    self.refusals[("release", answer.error_code)] += 1

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.config
        now = datetime.now(UTC)
        last = slot_start_of(now)
        first = last - (cfg.slots - 1) * SLOT
        self.out(
            f"simulate_fleet: {cfg.devices} devices, {cfg.slots} slots ({rfc3339(first)} .. {rfc3339(last)}), "
            f"speed {cfg.speed:g}x, offline {cfg.offline_fraction:.0%}, errors {cfg.error_rate:.0%}, run {self.run_id}"
        )
        started = time.monotonic()
        next_progress = started + cfg.progress_every_s
        with ThreadPoolExecutor(max_workers=cfg.concurrency) as pool:
            for k in range(cfg.slots):
                if cfg.speed > 0:
                    due = started + k * SLOT.total_seconds() / cfg.speed
                    if (wait := due - time.monotonic()) > 0:
                        time.sleep(wait)
                slot_start = first + k * SLOT
                list(pool.map(self.step, self.devices, [k] * len(self.devices), [slot_start] * len(self.devices)))
                if time.monotonic() >= next_progress:
                    next_progress = time.monotonic() + cfg.progress_every_s
                    self.out(self.progress_line(k + 1, slot_start, started))
            list(pool.map(self.finish, self.devices))
        elapsed = time.monotonic() - started
        return self.summary(elapsed, first, last)

    def progress_line(self, done: int, slot_start: datetime, started: float) -> str:
        k = done - 1
        online = sum(1 for s in self.devices if k >= s.join_slot and k not in s.offline)
        buffered = sum(len(s.device.buffer) for s in self.devices)
        with self.lock:
            return (
                f"[{time.monotonic() - started:7.1f}s] slot {done}/{self.config.slots} {rfc3339(slot_start)} "
                f"online {online}/{len(self.devices)} reports {self.counted.reports} buffered {buffered} "
                f"scans {self.counted.barcode_scans} pages {sum(self.counted.pages.values())} "
                f"retries {sum(s.device.client.stats['retries'] for s in self.devices)}"
            )

    def summary(self, elapsed: float, first: datetime, last: datetime) -> dict:
        stats: Counter = Counter()
        for s in self.devices:
            stats.update(s.device.client.stats)
        return {
            "run_id": self.run_id,
            "device_prefix": self.prefix,
            "devices": len(self.devices),
            "slots": self.config.slots,
            "first_slot": rfc3339(first),
            "last_slot": rfc3339(last),
            "elapsed_s": round(elapsed, 2),
            "sent": self.sent.as_dict(),
            "counted": self.counted.as_dict(),
            "duplicates_answered": self.duplicates,
            "authorizations": self.authorizations,
            "releases": self.releases,
            "offline_flushes": sum(s.flushes for s in self.devices),
            "offline_flushed_reports": sum(s.flushed_reports for s in self.devices),
            "unsent_reports": sum(len(s.device.buffer) for s in self.devices),
            "rejected": self.rejected[:20],
            "refusals": {f"{endpoint} {code}": n for (endpoint, code), n in sorted(self.refusals.items(), key=str)},
            "client": dict(stats),
        }


def server_view(*, license_key: str, prefix: str) -> dict | None:
    """What the server's database holds for these devices, when it is this process's database;
    None when the license key is not there (a remote server)."""
    from django.db.models import Sum

    from devices.models import Device as DeviceRow
    from licenses.models import Project
    from usage.models import UsageCount, UsageReport

    project = Project.objects.filter(license_key=license_key).first()
    if project is None:
        return None
    devices = DeviceRow.objects.filter(project=project, device_uuid__startswith=prefix)
    counts = dict(UsageCount.objects.filter(report__device__in=devices).values_list("metric").annotate(n=Sum("count")))
    return {
        "reports": UsageReport.objects.filter(device__in=devices).count(),
        "barcode_scans": counts.pop("barcode_scans", 0),
        "pages": {m.removeprefix("pages_"): n for m, n in sorted(counts.items()) if n},
        "devices": devices.count(),
        "released": devices.filter(state=DeviceRow.RELEASED).count(),
    }
