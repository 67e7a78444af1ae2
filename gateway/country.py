"""A country on one machine: the national axis, provincial axes bridged to it, and under each
axis its installations (hosting their sub-units), as deployed, with one development PKI.

`create` writes everything but the bridges' addresses (an axis's port is known once it
listens); `start_axes` starts the national axis first, gives each provincial axis its
[upstream] (the URL, and the secret of the system the national axis keeps for it), starts
it and waits until it has registered its agencies upstream. The demo builds its country here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway import workspace
from gateway.pki import create_ca
from gateway.processes import Service

# A provincial axis's [upstream] timings in a demo: the national axis answers within seconds.
QUICK_UPSTREAM = "poll_interval = 0.5\nretry_initial_seconds = 0.5\nretry_max_seconds = 5.0\ndirectory_seconds = 60.0\n"


@dataclass(frozen=True)
class AxisPlan:
    """One axis: its folder's ``name``, its own ``code`` (written in the TraceHeaders it appends),
    its installations (code: name, one gateway and one system each), what they host, and the
    ``upstream`` axis it is bridged to (None: the national axis)."""

    name: str
    code: str
    installations: Mapping[str, str]
    hosted: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    upstream: str | None = None

    @property
    def relay_system(self) -> str:
        """The system id the upstream axis keeps for this one."""
        return f"sys-{self.name}-axis"


@dataclass
class CountryLayout:
    root: Path
    plans: dict[str, AxisPlan]
    axes: dict[str, workspace.Layout]

    @property
    def agencies(self) -> dict[str, workspace.AgencyFolder]:
        """Every installation, under whichever axis."""
        return {code: folder for layout in self.axes.values() for code, folder in layout.agencies.items()}

    @property
    def hosted(self) -> dict[str, workspace.AgencyFolder]:
        return {code: folder for layout in self.axes.values() for code, folder in layout.hosted.items()}

    def axis_of(self, installation: str) -> str:
        return next(name for name, layout in self.axes.items() if installation in layout.agencies)


def create(root: Path, plans: list[AxisPlan], *, crl_url: str | None = None) -> CountryLayout:
    """The axes' and installations' files under ``root``, one PKI for all (``crl_url``: three
    levels, every certificate naming its CRL there, as `edxml-gateway pki` makes them)."""
    (root / "pki").mkdir(parents=True)
    ca = None
    if crl_url is None:
        ca = create_ca("edxml-gateway demo CA")
        (root / "pki" / "ca.pem").write_bytes(ca.cert_pem)
    axes = {}
    for plan in plans:
        relays = tuple(child.relay_system for child in plans if child.upstream == plan.name)
        axes[plan.name] = workspace.create(
            root,
            plan.installations,
            hosted=plan.hosted,
            ca=ca,
            axis_name=plan.name,
            axis_code=plan.code,
            relays=relays,
            crl_url=crl_url,
        )
    return CountryLayout(root, {plan.name: plan for plan in plans}, axes)


def start_axes(layout: CountryLayout, *, upstream_timing: str = QUICK_UPSTREAM) -> dict[str, tuple[Service, str]]:
    """Every axis, those above first; each provincial one once it has registered its agencies upstream."""
    started: dict[str, tuple[Service, str]] = {}
    pending = list(layout.plans.values())
    while pending:
        ready = [plan for plan in pending if plan.upstream is None or plan.upstream in started]
        for plan in ready:
            axis = layout.axes[plan.name]
            if plan.upstream is not None:
                _bridge(axis, layout.axes[plan.upstream], started[plan.upstream][1], plan, upstream_timing)
            service, url = workspace.start_axis(axis)
            if plan.upstream is not None:
                service.wait_for(lambda e: e.get("event") == "registered_upstream", f"{plan.name} to register")
            started[plan.name] = (service, url)
            pending.remove(plan)
        if not ready:
            raise ValueError(f"no upstream for {', '.join(plan.name for plan in pending)}")
    _directories_agree(layout, started)
    return started


def _directories_agree(layout: CountryLayout, started: dict[str, tuple[Service, str]], timeout: float = 60.0) -> None:
    """Until every axis's getAgenciesList names every installation of the country: an axis read
    the national directory before the next province registered its agencies there, and reads
    it again within seconds when asked."""
    import asyncio
    import time

    from gateway.axis_client import AxisClient

    everyone = set(layout.agencies)

    async def listed(name: str) -> set[str]:
        axis = layout.axes[name]
        code = next(iter(axis.agencies))
        secret = (axis.axis_folder / f"{code}.secret").read_text(encoding="utf-8").strip()
        async with AxisClient(started[name][1], f"sys-{code}", secret, timeout=10) as client:
            return {str(a.get("code")) for a in await client.agencies()}

    deadline = time.monotonic() + timeout
    for name in layout.plans:
        while not everyone <= asyncio.run(listed(name)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {name} axis does not list every installation after {timeout:.0f} s")
            time.sleep(0.5)


def _bridge(axis: workspace.Layout, above: workspace.Layout, url: str, plan: AxisPlan, timing: str) -> None:
    """The provincial axis's [upstream]: written once, so that a kept country starts again as it was."""
    text = axis.axis_config.read_text(encoding="utf-8")
    if "[upstream]" in text:
        return
    secret = (above.axis_folder / f"{plan.relay_system}.secret").read_text(encoding="utf-8")
    (axis.axis_folder / "upstream.secret").write_text(secret)
    (axis.axis_folder / "upstream.secret").chmod(0o600)
    section = f'\n[upstream]\nurl = "{url}"\nsystem_id = "{plan.relay_system}"\nsecret_file = "upstream.secret"\n'
    axis.axis_config.write_text(text + section + timing, encoding="utf-8")
