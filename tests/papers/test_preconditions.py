"""Hardware preconditions: `requires:` and the verdict "not applicable".

Real data: the CPU flags are /proc/cpuinfo lines of real hosts (this project's AMD
EPYC VM, AVX2 and no AVX-512; a Sapphire Rapids Xeon with AVX-512 bf16 and AMX), the
tables are the recorded mixed-precision training run (tests/papers/recorded/).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from efflab.core.errors import BadInput
from efflab.core.specio import canonical_json
from efflab.papers import capabilities, samples, verdict
from efflab.papers.outcome import PaperResult
from efflab.papers.report import headline, summary
from efflab.papers.reproduce import judge, prepare
from efflab.papers.spec import load_paper

REPO = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).parent / "recorded"

EPYC = """\
processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr wbnoinvd arat umip pku ospke vaes vpclmulqdq rdpid fsrm
"""
SPR = """\
processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon rep_good nopl xtopology cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pdcm pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 wbnoinvd arat avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg tme avx512_vpopcntdq rdpid cldemote movdiri movdir64b fsrm md_clear serialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 flush_l1d arch_capabilities
"""


def host(text: str, cores: int = 2) -> capabilities.Machine:
    model, flags = capabilities.parse_cpuinfo(text)
    return capabilities.Machine(model, flags, cores, ())


def test_cpuinfo_flags_and_what_a_requirement_lacks() -> None:
    epyc, spr = host(EPYC), host(SPR, 112)
    assert epyc.cpu_model == "AMD EPYC" and "avx2" in epyc.flags
    assert "avx512_bf16" not in epyc.flags and "avx512_bf16" in spr.flags
    need = capabilities.Requires(("avx512_bf16",), min_cores=4)
    assert need.missing(spr) == []
    lacks = need.missing(epyc)
    assert lacks[0] == "CPU feature avx512_bf16 (not in /proc/cpuinfo flags)"
    assert lacks[1] == "4 usable cores (os.sched_getaffinity: 2)"
    gpu = capabilities.Requires(accelerator="nvidia")
    assert "/proc/driver/nvidia/gpus" in gpu.missing(spr)[0]
    s = epyc.summary()
    assert "avx2" in s["cpu_features"] and "amx_bf16" in s["cpu_features_absent"]


def test_this_machine_reads_its_own_cpuinfo_and_affinity() -> None:
    m = capabilities.this_machine()
    assert m.cores == len(os.sched_getaffinity(0))
    assert m.flags == capabilities.parse_cpuinfo(Path("/proc/cpuinfo").read_text())[1]


SPEC = """\
id: bf16
title: bf16 on CPUs
authors: [A. Tester]
year: 2024
link: https://example.org/bf16
scale: {paper: "GPUs", ours: "a CPU"}
experiments:
  - name: training-precision
    quick_inputs: {d_model: 192, layers: 4, heads: 4, seq_len: 256, batch_size: 8, steps: 4}
    %s
claims:
  - id: bf16-raises-throughput
    statement: "bf16 speeds up arithmetic."
    %s
    control: {replace: {precision: {bf16: fp32}}, why: "fp32 on both sides"}
    check:
      compare:
        left: {metric: tokens_per_s, where: {precision: bf16, checkpointing: "off"}}
        op: ">"
        right: {metric: tokens_per_s, where: {precision: fp32, checkpointing: "off"}}
"""


def paper(tmp_path: Path, need: str = "", claim: str = ""):
    f = tmp_path / "bf16.yaml"
    f.write_text(SPEC % (need, claim))
    return load_paper(REPO, str(f))


def recorded_tables(p) -> dict[str, samples.Samples]:
    runs, per = prepare(REPO, [p], True, host(SPR))
    out = {}
    for name, run in per[p.id].items():
        for f in RECORDED.glob(f"{name}*.json"):
            d = json.loads(f.read_text())
            if canonical_json(d["overrides"]) == canonical_json(run.overrides):
                recs = [{**r, "status": "ok"} for r in d["records"]]
                out[name] = samples.from_records(
                    name, recs, d["points"], d["params"], d["timing"], d.get("noiseless", ())
                )
    return out


def test_a_claim_needing_bf16_is_not_applicable_on_an_avx2_host(tmp_path: Path) -> None:
    p = paper(tmp_path, claim="requires: {cpu_features: [avx512_bf16]}")
    tables = recorded_tables(p)
    (c,) = p.claims
    # where the feature exists, the recorded measurement decides (bf16 far slower there)
    r = verdict.judge(c, tables, host(SPR))
    assert r.verdict == "not reproduced" and r.counted
    r = verdict.judge(c, tables, host(EPYC))
    assert r.verdict == "not applicable" and not r.counted
    assert "needs CPU feature avx512_bf16 (not in /proc/cpuinfo flags)" in r.outcome.detail
    assert "measured: [fail]" in r.outcome.detail  # the measurement is still shown
    res = PaperResult(p, True, {}, [r], "now")
    s = summary(res)
    assert s["counted"] == 0 and s["claims"][0]["requires"] == "CPU features avx512_bf16"
    assert headline(s) == "0 of 0 claims reproduced; 1 not applicable on this machine"
    assert s["machine"]["usable_cores"] == len(os.sched_getaffinity(0))


def test_an_experiment_the_machine_cannot_run_is_not_run(tmp_path: Path) -> None:
    p = paper(tmp_path, need="requires: {min_cores: 4096}")
    runs, per = prepare(REPO, [p], True, host(EPYC))
    assert runs[0].not_applicable == "4096 usable cores (os.sched_getaffinity: 2)"
    (r,) = judge(p, per[p.id], host(EPYC))
    assert r.verdict == "not applicable" and "training-precision needs 4096" in r.outcome.detail
    runs, _ = prepare(REPO, [p], True, host(SPR, 8192))
    assert runs[0].not_applicable == ""


@pytest.mark.parametrize(
    ("claim", "path"),
    [
        ("requires: {cpu_features: [AVX512]}", "$.claims[0].requires.cpu_features[0]"),
        ("requires: {min_cores: 0}", "$.claims[0].requires.min_cores"),
        ("requires: {accelerator: tpu}", "$.claims[0].requires.accelerator"),
        ("requires: {}", "$.claims[0].requires"),
    ],
)
def test_bad_requirements_name_the_field(tmp_path: Path, claim: str, path: str) -> None:
    with pytest.raises(BadInput) as exc:
        paper(tmp_path, claim=claim)
    assert exc.value.path == path
