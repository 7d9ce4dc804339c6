"""MLPerf LoadGen's own logs: `mlperf_log_summary.txt` and `mlperf_log_detail.txt`.

The summary is LoadGen's human report (`Key : value` lines in three sections: the
result, additional stats, test parameters); the detail log is one `:::MLLOG {json}`
line per event, and its `result_*` keys are the numbers the summary prints rounded.
A run is parsed from the detail log where there is one (it is exact), and every
number and verdict the summary also prints is checked against it: a summary that
contradicts its detail log is BadInput naming both files and the field, never a
silent pick of one. A history of summaries alone (a CI repository keeps only those)
parses from the summary.

Metric names: `result_` dropped, `XX.XX_percentile_..._latency_ns` becomes
`latency_pXX_ns` (`query_latency_p99_ns` for MultiStream's per-query latencies),
`..._per_second|sec` becomes `..._per_s`; validity and its parts are 0/1 metrics.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput

SUMMARY = "mlperf_log_summary.txt"
DETAIL = "mlperf_log_detail.txt"
SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline", "Interactive")

# summary line -> detail key (the headline and the verdicts)
SUMMARY_TO_DETAIL = {
    "Samples per second": "result_samples_per_second",
    "Tokens per second": "result_tokens_per_second",
    "Completed samples per second": "result_completed_samples_per_sec",
    "Scheduled samples per second": "result_scheduled_samples_per_sec",
    "Completed tokens per second": "result_completed_tokens_per_second",
    "Min latency (ns)": "result_min_latency_ns",
    "Max latency (ns)": "result_max_latency_ns",
    "Mean latency (ns)": "result_mean_latency_ns",
    "QPS w/ loadgen overhead": "result_qps_with_loadgen_overhead",
    "QPS w/o loadgen overhead": "result_qps_without_loadgen_overhead",
}
HEADLINE_PCT = {  # "90.0th percentile latency (ns)": SingleStream p90, MultiStream p99 per query
    "SingleStream": "result_{p}_percentile_latency_ns",
    "MultiStream": "result_{p}_percentile_per_query_latency_ns",
}
VERDICTS = {
    "Result is": ("result_validity", "valid"),
    "Min duration satisfied": ("result_min_duration_met", "min_duration_met"),
    "Min queries satisfied": ("result_min_queries_met", "min_queries_met"),
    "Early stopping satisfied": ("early_stopping_met", "early_stopping_met"),
    "Performance constraints satisfied": ("result_perf_constraints_met", "perf_constraints_met"),
}
LOWER_WORDS = ("latency", "overlatency")
NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@dataclass
class Metric:
    value: float
    unit: str
    better: str  # lower | higher


@dataclass
class LoadGenRun:
    """One LoadGen run, as its logs report it."""

    scenario: str
    mode: str
    sut_name: str
    validity: str  # VALID | INVALID
    metrics: dict[str, Metric] = field(default_factory=dict)
    headline: str = ""  # the metric the summary leads with (the scenario's result)
    test_settings: dict[str, Any] = field(default_factory=dict)
    early_stopping: str = ""  # LoadGen's early-stopping verdict text
    invalid_reason: str = ""
    loadgen_version: str | None = None
    test_datetime: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # role -> path

    @property
    def valid(self) -> bool:
        return self.validity == "VALID"


def metric_name(detail_key: str) -> str:
    """`result_90.00_percentile_latency_ns` -> `latency_p90_ns` (see the module doc)."""
    k = detail_key.removeprefix("result_")
    m = re.match(r"^(.*?)(\d+\.\d+)_percentile_(per_query_)?(.*)$", k)
    if m:
        pre, pct, per_query, rest = m.groups()
        p = pct.rstrip("0").rstrip(".").replace(".", "_")
        if "latency" not in rest:  # result_time_per_output_token_50.00_percentile_ns
            return f"{pre.rstrip('_')}_p{p}_ns"
        return f"{pre}{'query_' if per_query else ''}latency_p{p}_ns"
    m = re.match(r"^(.*?)(min|max|mean)_(query_)?latency_ns$", k)
    if m:
        return f"{m.group(1)}{m.group(3) or ''}latency_{m.group(2)}_ns"
    m = re.match(r"^time_to_output_token_(min|max|mean)$", k)  # ns, LoadGen's TPOT stats
    if m:
        return f"time_per_output_token_{m.group(1)}_ns"
    if k == "token_throughput_with_loadgen_overhead":  # tokens / final issue time (s)
        return "tokens_per_s_with_loadgen_overhead"
    if k == "token_throughput":  # tokens / (mean latency ns * samples): per nanosecond
        return "token_throughput_per_ns"
    k = re.sub(r"_per_sec(ond)?$", "_per_s", k)
    if k == "early_stopping_latency_ss":
        return "early_stopping_latency_p90_ns"
    return k


def unit_of(name: str) -> tuple[str, str]:
    if name.endswith("_per_ns"):
        return "tokens/ns", "higher"
    if name.endswith("_ns"):
        return "ns", "lower"
    if name.endswith("_per_s") or "_per_s_" in name:
        return ("tokens/s" if "token" in name else "samples/s"), "higher"
    if name.startswith("qps"):
        return "queries/s", "higher"
    if name in {"valid", "min_duration_met", "min_queries_met", "early_stopping_met",
                "perf_constraints_met"}:  # fmt: skip
        return "bool", "higher"
    if "overlatency" in name:
        return "count", "lower"
    return "count", "higher"


# --- summary ----------------------------------------------------------------------


@dataclass
class Summary:
    file: Path
    fields: dict[str, str]  # "Key" -> raw value text, first section wins
    params: dict[str, str]  # Test Parameters Used
    early_stopping: str
    headline: tuple[str, str] | None  # (line key, value text)


def parse_summary(text: str, file: Path) -> Summary:
    if "MLPerf Results Summary" not in text:
        raise BadInput(file, "$", "a LoadGen summary ('MLPerf Results Summary' header)",
                       text[:60] or "an empty file")  # fmt: skip
    fields: dict[str, str] = {}
    params: dict[str, str] = {}
    section = "result"
    es: list[str] = []
    in_es = False
    headline = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("====="):
            continue
        s = line.strip()
        if s == "Additional Stats":
            section, in_es = "stats", False
            continue
        if s == "Test Parameters Used":
            section, in_es = "params", False
            continue
        if "Early Stopping Result" in s:  # also TTFT/TPOT Early Stopping Result
            in_es = True
            continue
        if s.startswith("Recommendations"):
            in_es = False
            continue
        if in_es and section == "result" and (s.startswith("*") or raw.startswith(" ")):
            es.append(s)
            continue
        if ":" not in s or s.startswith("*"):
            continue
        k, v = (p.strip() for p in s.split(":", 1))
        if section == "params":
            params.setdefault(k, v)
        else:
            fields.setdefault(k, v)
            if section == "result" and headline is None and k not in VERDICTS and k not in (
                "SUT name", "Scenario", "Mode"):  # fmt: skip
                headline = (k, v)
    for k in ("Scenario", "Mode", "Result is"):
        if k not in fields:
            raise BadInput(file, f"$.{k}", f"a '{k} :' line (LoadGen writes one)",
                           "none: a truncated or hand-edited summary")  # fmt: skip
    if "Mode" in fields and fields["Mode"] == "PerformanceOnly" and not params:
        raise BadInput(file, "$.Test Parameters Used", "the test parameters section",
                       "none: a truncated summary")  # fmt: skip
    return Summary(file, fields, params, " ".join(es), headline)


def _number(text: str, file: Path, where: str) -> float:
    t = text.strip()
    if not NUMBER.match(t):
        raise BadInput(file, where, "a number", t)
    return float(t)


def _tolerance(text: str) -> float:
    """Half a unit of the last digit the summary printed."""
    t = text.strip().lower()
    mant, _, exp = t.partition("e")
    dec = len(mant.split(".")[1]) if "." in mant else 0
    return 0.5 * 10.0 ** (-dec) * 10.0 ** (int(exp) if exp else 0) * (1 + 1e-9)


def _yes(text: str, file: Path, where: str) -> bool | None:
    """Yes/No as LoadGen prints it; None for 'Skipped' (min queries without
    enforce_max_duration)."""
    t = text.strip().upper()
    if t == "SKIPPED":
        return None
    if t in ("YES", "VALID", "TRUE"):
        return True
    if t in ("NO", "INVALID", "FALSE"):
        return False
    raise BadInput(file, where, "Yes/No (VALID/INVALID)", text)


# --- detail -----------------------------------------------------------------------


@dataclass
class Detail:
    file: Path
    values: dict[str, Any]
    errors: list[str]
    warnings: list[str]


def parse_detail(text: str, file: Path) -> Detail:
    values: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    lines = text.split("\n")
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not line.startswith(":::MLLOG "):
            continue  # LoadGen interleaves nothing else, but a wrapper may
        try:
            ev = json.loads(line[len(":::MLLOG ") :])
        except json.JSONDecodeError as exc:
            last = no == len(lines) or (no == len(lines) - 1 and not lines[-1])
            raise BadInput(file, f"line {no}", "one complete :::MLLOG JSON event per line",
                           f"{'a truncated last line' if last else 'invalid JSON'} ({exc.msg})") from None  # fmt: skip
        if not isinstance(ev, dict) or not isinstance(ev.get("key"), str) or "value" not in ev:
            raise BadInput(file, f"line {no}", "an event with 'key' and 'value'", ev)
        meta = ev.get("metadata") if isinstance(ev.get("metadata"), dict) else {}
        if meta.get("is_error"):
            errors.append(f"{ev['key']}: {ev['value']}")
        elif meta.get("is_warning"):
            warnings.append(f"{ev['key']}: {ev['value']}")
        values.setdefault(ev["key"], ev["value"])
        if ev["key"].startswith("result_") or ev["key"].startswith("early_stopping"):
            values[ev["key"]] = ev["value"]  # the result block is the run's last word
    for k in ("effective_scenario", "effective_test_mode"):
        if k not in values:
            raise BadInput(file, f"$.{k}", f"a '{k}' event (LoadGen logs it first)",
                           "none: not a LoadGen detail log, or a truncated one")  # fmt: skip
    if values["effective_test_mode"] == "PerformanceOnly" and "result_validity" not in values:
        raise BadInput(file, "$.result_validity", "the run's result block (result_validity ...)",
                       "none: a truncated detail log (the run did not finish writing it)")  # fmt: skip
    return Detail(file, values, errors, warnings)


def _settings(detail: Detail | None, summary: Summary) -> dict[str, Any]:
    if detail is not None:
        return {k.removeprefix("effective_"): v for k, v in detail.values.items()
                if k.startswith("effective_")}  # fmt: skip
    out: dict[str, Any] = {}
    for k, v in summary.params.items():
        key = k.replace(" (ns)", "_ns").replace(" (ms)", "_ms").strip()
        out[key] = (
            float(v) if NUMBER.match(v) and "." in v else int(v) if v.lstrip("-").isdigit() else v
        )
    return out


def _check(summary: Summary, detail: Detail, dkey: str, skey: str, scenario: str) -> None:
    """One number or verdict the summary prints must agree with the detail log."""
    text = summary.fields[skey]
    found = detail.values.get(dkey)
    where = f"$.{skey}"
    if skey in VERDICTS:
        mine = _yes(text, summary.file, where)
        if mine is None:
            return  # the summary says 'Skipped': the detail log has the verdict
        theirs = found == "VALID" if dkey == "result_validity" else bool(found)
        if found is None or mine != theirs:
            raise BadInput(summary.file, where,
                           f"{'VALID' if theirs else 'INVALID'} as {detail.file} says ({dkey}: {found!r})",
                           text, "the summary contradicts its detail log")  # fmt: skip
        return
    num = _number(text, summary.file, where)
    if not isinstance(found, int | float) or isinstance(found, bool):
        raise BadInput(detail.file, f"$.{dkey}", f"a number (the summary prints {skey}: {text})",
                       found)  # fmt: skip
    if abs(num - float(found)) > _tolerance(text) + 1e-9 * abs(float(found)):
        raise BadInput(summary.file, where,
                       f"{found} as {detail.file} says ({dkey}), rounded as printed",
                       text, "the summary contradicts its detail log")  # fmt: skip


def _summary_key_to_detail(k: str, scenario: str) -> str | None:
    if k in SUMMARY_TO_DETAIL:
        return SUMMARY_TO_DETAIL[k]
    m = re.match(r"^(\d+(?:\.\d+)?) percentile latency \(ns\)$", k)
    if m:
        return f"result_{float(m.group(1)):.2f}_percentile_latency_ns"
    m = re.match(r"^(\d+(?:\.\d+)?)th percentile latency \(ns\)$", k)
    if m and scenario in HEADLINE_PCT:
        return HEADLINE_PCT[scenario].format(p=f"{float(m.group(1)):.2f}")
    return None


def parse_run(summary_text: str, summary_file: Path, detail_text: str | None = None,
              detail_file: Path | None = None) -> LoadGenRun:  # fmt: skip
    """A run from its summary (and detail log, when there is one): see the module doc."""
    summary = parse_summary(summary_text, summary_file)
    detail = parse_detail(detail_text, detail_file) if detail_text is not None else None
    scenario = summary.fields["Scenario"]
    if scenario not in SCENARIOS:
        raise BadInput(summary_file, "$.Scenario", f"one of {', '.join(SCENARIOS)}", scenario)
    run = LoadGenRun(scenario=scenario, mode=summary.fields["Mode"],
                     sut_name=summary.fields.get("SUT name", ""),
                     validity="VALID" if _yes(summary.fields["Result is"], summary_file, "$.Result is") is True else "INVALID",
                     early_stopping=summary.early_stopping)  # fmt: skip
    run.files["summary"] = str(summary_file)
    if detail is not None:
        run.files["detail"] = str(detail_file)
        for dkey, skey in (("effective_scenario", "Scenario"), ("effective_test_mode", "Mode")):
            if str(detail.values[dkey]) != summary.fields[skey]:
                raise BadInput(summary_file, f"$.{skey}",
                               f"{detail.values[dkey]!r} as {detail_file} says ({dkey})",
                               summary.fields[skey], "the summary contradicts its detail log")  # fmt: skip
        for skey in summary.fields:
            dkey = VERDICTS[skey][0] if skey in VERDICTS else _summary_key_to_detail(skey, scenario)
            if dkey is not None and (
                skey in VERDICTS or dkey in detail.values or skey == (summary.headline or ("",))[0]
            ):
                _check(summary, detail, dkey, skey, scenario)
        v = detail.values
        for k, val in v.items():
            if (
                (k.startswith("result_") or k == "early_stopping_latency_ss")
                and isinstance(val, int | float)
                and not isinstance(val, bool)
            ):
                name = metric_name(k)
                unit, better = unit_of(name)
                run.metrics[name] = Metric(float(val), unit, better)
        for _skey, (dkey, name) in VERDICTS.items():
            if dkey in v:
                ok = v[dkey] == "VALID" if dkey == "result_validity" else bool(v[dkey])
                run.metrics[name] = Metric(1.0 if ok else 0.0, "bool", "higher")
        run.invalid_reason = str(v.get("result_invalid_reason") or "").strip()
        es = [str(v.get(k) or "") for k in ("early_stopping_result", "early_stopping_ttft_result",
                                             "early_stopping_tpot_result")]  # fmt: skip
        run.early_stopping = " ".join(" ".join(es).split()) or run.early_stopping
        run.loadgen_version = v.get("loadgen_version")
        run.test_datetime = v.get("test_datetime")
        run.errors, run.warnings = detail.errors, detail.warnings
    else:
        for skey, text in summary.fields.items():
            if skey in VERDICTS:
                ok = _yes(text, summary_file, f"$.{skey}")
                if ok is not None:
                    run.metrics[VERDICTS[skey][1]] = Metric(1.0 if ok else 0.0, "bool", "higher")
                continue
            dkey = _summary_key_to_detail(skey, scenario)
            if dkey is None:
                continue
            name = metric_name(dkey)
            unit, better = unit_of(name)
            run.metrics[name] = Metric(_number(text, summary_file, f"$.{skey}"), unit, better)
    if summary.headline is not None:
        dkey = _summary_key_to_detail(summary.headline[0], scenario)
        run.headline = metric_name(dkey) if dkey else ""
    run.test_settings = _settings(detail, summary)
    for m in run.metrics.values():
        if not math.isfinite(m.value):
            raise BadInput(summary_file, "$", "finite numbers", m.value)
    return run


def read_run(folder: Path, read_text) -> LoadGenRun:
    """The run in `folder` (its summary, and its detail log when present); `read_text`
    is the caller's safe reader (efflab.results.formats.foreign.Tree.read_text)."""
    s = folder / SUMMARY
    d = folder / DETAIL
    detail = read_text(d) if _exists(d) else None
    return parse_run(read_text(s), s, detail, d if detail is not None else None)


def _exists(p: Path) -> bool:
    import os

    try:
        os.lstat(p)
        return True
    except FileNotFoundError:
        return False
