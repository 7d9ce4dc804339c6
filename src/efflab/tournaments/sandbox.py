"""The sandbox self-check: a probe container proves the seal before any entry runs.

Why a probe and not a reading of the configuration: what matters is what a process
inside can do. Before verifying, efflab starts one container exactly as an entry's
(the same `container_config` + `seal_config` + quota path of the docker runtime,
under the tournament's sealed settings) running a small probe that reports what it
could do; verification refuses to start (RunFailed, nothing recorded) unless:

- network: no interface but loopback, and a TCP connect to the bridge gateway fails;
- root filesystem: writing under /usr and / fails;
- capabilities: the effective and permitted sets are empty;
- uid: not 0, and the one `sealed.sandbox_user` chose;
- quota: writing past `disk_mb` into the writable folder fails with ENOSPC/EFBIG
  while the first MB succeeds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core.errors import RunFailed
from efflab.core.invocation import Invocation
from efflab.envs import images
from efflab.runtime import container_config, sealed
from efflab.runtime import docker as dockerrt

PROBE = r"""
import errno, json, os, socket, sys
out = {"uid": os.getuid(), "gid": os.getgid()}
st = open("/proc/self/status").read()
caps = {l.split(":")[0]: int(l.split()[1], 16) for l in st.splitlines() if l.startswith("Cap")}
out["cap_eff"], out["cap_prm"] = caps.get("CapEff"), caps.get("CapPrm")
out["interfaces"] = sorted(os.listdir("/sys/class/net"))
try:
    s = socket.create_connection((sys.argv[2], 53), timeout=2); s.close(); out["connect"] = "ok"
except OSError as e:
    out["connect"] = type(e).__name__
ro = []
for p in ("/usr/efflab-probe", "/efflab-probe"):
    try:
        open(p, "w").write("x"); ro.append(p + ": writable")
    except OSError as e:
        ro.append(p + ": " + errno.errorcode.get(e.errno, str(e.errno)))
out["root_writes"] = ro
path, mb, written = os.path.join(sys.argv[1], "fill"), int(sys.argv[3]), 0
try:
    with open(path, "wb") as fh:
        block = b"\0" * (1 << 20)
        for _ in range(mb + 8):
            fh.write(block); fh.flush(); written += 1
    out["quota"] = "not hit"
except OSError as e:
    out["quota"] = errno.errorcode.get(e.errno, str(e.errno))
try:
    os.unlink(path)
except OSError:
    pass
out["written_mb"] = written
print("PROBE " + json.dumps(out))
"""


@dataclass
class ProbeReport:
    facts: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _judge(f: dict[str, Any], uid: int, disk_mb: int | None) -> list[str]:
    bad = []
    if set(f.get("interfaces", [])) - {"lo"}:
        bad.append(f"network: interfaces {f['interfaces']} besides loopback")
    if f.get("connect") == "ok":
        bad.append("network: a TCP connection to the bridge gateway succeeded")
    if any(w.endswith("writable") for w in f.get("root_writes", [])):
        bad.append(f"root filesystem is writable ({f['root_writes']})")
    if f.get("cap_eff") or f.get("cap_prm"):
        bad.append(f"capabilities: CapEff={f.get('cap_eff'):#x} CapPrm={f.get('cap_prm'):#x}")
    if f.get("uid") in (0, None) or f.get("uid") != uid:
        bad.append(f"uid: ran as {f.get('uid')}, expected the unprivileged {uid}")
    if disk_mb:
        if f.get("quota") not in ("ENOSPC", "EFBIG", "EDQUOT"):
            bad.append(f"disk quota of {disk_mb} MB not enforced ({f.get('quota')}, {f.get('written_mb')} MB written)")  # fmt: skip
        elif f.get("written_mb", 0) < 1:
            bad.append("the writable folder takes no data at all")
    return bad


def probe(repo: Path, env: str, settings: dict[str, Any], gateway: str = "172.17.0.1") -> ProbeReport:  # fmt: skip
    """Run the probe in `env`'s image under `settings` (sealed); what it found."""
    t0 = time.monotonic()
    client = images.connect(timeout=60)
    tag = images.current_tag(repo, env, client)
    if tag is None:
        images.ensure_built(repo, env, client, lambda m: None)
        tag = images.current_tag(repo, env, client)
    scratch = Path(tempfile.mkdtemp(prefix="efflab-probe-"))
    os.chmod(scratch, 0o755)
    script, work = scratch / "script", scratch / "work"
    script.mkdir(mode=0o755)
    work.mkdir(mode=0o755)
    (script / "probe.py").write_text(PROBE)
    os.chmod(script / "probe.py", 0o644)
    inv = Invocation(key="probe", alias="sandbox-probe", script_dir=str(script), run="probe.py",
                     inputs={}, deps={}, env=env, env_digest=None, resources={})  # fmt: skip
    old = os.environ.get(sealed.ENV_VAR)
    os.environ[sealed.ENV_VAR] = sealed.encode(settings)
    try:
        uid, gid = sealed.sandbox_user(settings)
        cfg = container_config.container_config(repo, inv, work, client.images.get(tag).id)
        cfg = container_config.seal_config(cfg, repo, inv, work)
        limit = int(settings.get("disk_mb") or 0)
        cfg["command"] = ["python3", str(script / "probe.py"), str(work), gateway, str(limit or 1)]  # fmt: skip
        cfg["labels"] = {**cfg["labels"], dockerrt.LABEL_RUN: "sandbox-probe"}
        quota = sealed.QuotaFolder(work, limit, uid, gid) if limit else nullcontext(work)
        if not limit:
            sealed.chown_tree(work, uid, gid)
        with (
            quota as rw,
            dockerrt.Sandbox(client, container_config.writable_mount(cfg, work, rw)) as box,
        ):
            box.container.wait(timeout=120)
            logs = box.container.logs().decode(errors="replace")
    except Exception as exc:
        raise RunFailed(f"the sandbox self-check could not start its probe container ({type(exc).__name__}: {exc}); nothing was recorded") from None  # fmt: skip
    finally:
        if old is None:
            os.environ.pop(sealed.ENV_VAR, None)
        else:
            os.environ[sealed.ENV_VAR] = old
        shutil.rmtree(scratch, ignore_errors=True)
    line = next((x for x in logs.splitlines() if x.startswith("PROBE ")), None)
    if line is None:
        raise RunFailed(f"the sandbox probe reported nothing ({logs.strip()[-300:]}); nothing was recorded")  # fmt: skip
    facts = json.loads(line[6:])
    return ProbeReport(facts, _judge(facts, uid, limit or None), round(time.monotonic() - t0, 3))


def check(repo: Path, env: str, settings: dict[str, Any]) -> ProbeReport:
    """RunFailed unless the probe finds the seal intact."""
    rep = probe(repo, env, settings)
    if not rep.ok:
        raise RunFailed("the sandbox self-check failed: " + "; ".join(rep.problems) + "; nothing was verified or recorded")  # fmt: skip
    return rep
