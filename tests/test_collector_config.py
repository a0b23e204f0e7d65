"""The Collector and compose configuration in `collector-config/`: wiring, scrubbing, sampling, limits.

No Collector or Docker is needed: the YAML is parsed and checked against what the Collector does with
it (component references, processor order, the file exporter's options), and the regular expressions
are run with Python's `re` on sample keys and values. Go's RE2 accepts a subset of Python's syntax
except for a few constructs (lookaround, backreferences, `\\Z`), which are checked to be absent, so a
pattern that behaves here behaves the same in the Collector. When `otelcol-contrib` is on PATH, the
Collector's own `validate` command checks the configuration as well.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_decisions import contract
from otel_decisions._values import DEFAULT_MAX_VALUE_CHARS
from otel_decisions.models import RunStatus

CONFIG_DIR = Path(__file__).resolve().parent.parent / "collector-config"
OTELCOL_FILE = CONFIG_DIR / "otelcol.yaml"
COMPOSE_FILE = CONFIG_DIR / "docker-compose.yml"
README_FILE = CONFIG_DIR / "README.md"

FILE_PIPELINE = "traces/file"
JAEGER_PIPELINE = "traces/jaeger"
SAMPLING_TYPES = {"tail_sampling", "probabilistic_sampler", "filter", "groupbytrace"}
"""Processor types that drop or may drop spans: none belongs in the file pipeline."""

Config = dict[str, Any]


def _load(path: Path) -> Config:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path.name} is not a YAML mapping"
    return loaded


@pytest.fixture(scope="module")
def otelcol() -> Config:
    return _load(OTELCOL_FILE)


@pytest.fixture(scope="module")
def compose() -> Config:
    return _load(COMPOSE_FILE)


def _type(component_id: str) -> str:
    """`batch/jaeger` -> `batch`: the Collector's `type[/name]` component id."""
    return component_id.split("/", 1)[0]


def _pipeline(otelcol: Config, name: str) -> Config:
    pipeline = otelcol["service"]["pipelines"][name]
    assert isinstance(pipeline, dict)
    return pipeline


def _processors(otelcol: Config, pipeline: str) -> list[str]:
    processors = _pipeline(otelcol, pipeline).get("processors", [])
    assert isinstance(processors, list)
    return [str(p) for p in processors]


def _index_of_type(processors: list[str], component_type: str) -> int:
    found = [i for i, p in enumerate(processors) if _type(p) == component_type]
    assert len(found) == 1, f"expected one {component_type} processor in {processors}"
    return found[0]


def _strings(node: Any) -> Iterator[str]:
    """Every string value (not key) in a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _secret_key_pattern(otelcol: Config) -> str:
    actions = otelcol["processors"]["attributes/scrub"]["actions"]
    deletes = [a for a in actions if a.get("action") == "delete" and "pattern" in a]
    assert len(deletes) == 1, "attributes/scrub should delete keys by exactly one pattern"
    pattern = deletes[0]["pattern"]
    assert isinstance(pattern, str)
    return pattern


def _blocked_values(otelcol: Config) -> list[str]:
    values = otelcol["processors"]["redaction"]["blocked_values"]
    assert isinstance(values, list) and values
    return [str(v) for v in values]


def _contract_attribute_keys() -> set[str]:
    """Every attribute and event name of the span contract (the constants of `contract.py`)."""
    keys = {
        value
        for name, value in vars(contract).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", value)
    }
    assert contract.OUTCOME_TOKENS in keys and contract.RUN_ID in keys  # the scan found the contract
    return keys


def _published_ports(service: Config) -> set[int]:
    """Container ports a compose service publishes (short syntax `[ip:]host:container[/proto]`)."""
    ports: set[int] = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def _truncate_caps(otelcol: Config, processor: str) -> dict[str, int]:
    """{"span": cap, "spanevent": cap} from a transform processor's `truncate_all` statements."""
    caps: dict[str, int] = {}
    for group in otelcol["processors"][processor]["trace_statements"]:
        statements = group["statements"]
        assert len(statements) == 1, (
            "one statement per group: a group's context is inferred for all its statements together, "
            "so span.attributes and spanevent.attributes in one group would only run per event"
        )
        found = re.fullmatch(r"truncate_all\((span|spanevent)\.attributes, (\d+)\)", statements[0])
        assert found, f"unexpected statement {statements[0]!r}"
        caps[found.group(1)] = int(found.group(2))
    return caps


# --------------------------------------------------------------------------------------------- wiring


def test_config_has_a_file_pipeline_and_a_jaeger_pipeline_fed_by_the_otlp_receiver(otelcol: Config) -> None:
    pipelines = otelcol["service"]["pipelines"]
    assert set(pipelines) == {FILE_PIPELINE, JAEGER_PIPELINE}
    for name in pipelines:
        assert _pipeline(otelcol, name)["receivers"] == ["otlp"]


def test_every_component_a_pipeline_names_is_defined_and_every_defined_one_is_used(otelcol: Config) -> None:
    for kind in ("receivers", "processors", "exporters"):
        used = {c for p in otelcol["service"]["pipelines"].values() for c in p.get(kind, [])}
        defined = set(otelcol.get(kind) or {})
        assert used <= defined, f"{kind} used but not defined: {sorted(used - defined)}"
        assert defined <= used, f"{kind} defined but never used: {sorted(defined - used)}"
    assert set(otelcol["service"].get("extensions", [])) <= set(otelcol.get("extensions") or {})


def test_receiver_listens_on_all_interfaces_with_a_raised_grpc_message_limit(otelcol: Config) -> None:
    protocols = otelcol["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert protocols["grpc"]["max_recv_msg_size_mib"] > 4  # gRPC's default is 4 MiB


def test_memory_limiter_runs_first_and_batching_last_in_both_pipelines(otelcol: Config) -> None:
    for pipeline in (FILE_PIPELINE, JAEGER_PIPELINE):
        processors = _processors(otelcol, pipeline)
        assert _type(processors[0]) == "memory_limiter", pipeline
        assert _type(processors[-1]) == "batch", pipeline


def test_scrubbing_and_length_limits_run_before_batching_in_both_pipelines(otelcol: Config) -> None:
    for pipeline in (FILE_PIPELINE, JAEGER_PIPELINE):
        processors = _processors(otelcol, pipeline)
        batch = _index_of_type(processors, "batch")
        assert processors.index("attributes/scrub") < batch, pipeline
        assert _index_of_type(processors, "redaction") < batch, pipeline
        limits = [i for i, p in enumerate(processors) if p.startswith("transform/limits")]
        assert len(limits) == 1 and limits[0] < batch, pipeline


def test_file_pipeline_never_samples_or_filters(otelcol: Config) -> None:
    processors = _processors(otelcol, FILE_PIPELINE)
    assert not {_type(p) for p in processors} & SAMPLING_TYPES
    assert "file/decisions" in _pipeline(otelcol, FILE_PIPELINE)["exporters"]


def test_jaeger_pipeline_tail_samples_after_scrubbing_and_capping(otelcol: Config) -> None:
    processors = _processors(otelcol, JAEGER_PIPELINE)
    sampling = _index_of_type(processors, "tail_sampling")
    assert processors.index("attributes/scrub") < sampling
    assert processors.index("transform/limits_jaeger") < sampling  # smaller traces held in memory
    assert _pipeline(otelcol, JAEGER_PIPELINE)["exporters"] == ["otlp_grpc/jaeger"]


# --------------------------------------------------------------------------------------------- sampling


def test_jaeger_sampling_keeps_every_error_and_every_failed_run(otelcol: Config) -> None:
    policies = otelcol["processors"]["tail_sampling"]["policies"]
    by_type: dict[str, list[Config]] = {}
    for policy in policies:
        by_type.setdefault(policy["type"], []).append(policy)

    assert any("ERROR" in p["status_code"]["status_codes"] for p in by_type.get("status_code", []))
    failed_runs = [
        p["string_attribute"]
        for p in by_type.get("string_attribute", [])
        if p["string_attribute"]["key"] == contract.RUN_STATUS
    ]
    assert failed_runs and RunStatus.FAILED.value in failed_runs[0]["values"]
    assert not failed_runs[0].get("invert_match", False)
    # Nothing may veto those keep decisions: no drop policy, no inverted match, no and/composite.
    assert not set(by_type) & {"drop", "and", "composite"}
    settings = [p[p["type"]] for p in policies if isinstance(p.get(p["type"]), dict)]
    assert not any(s.get("invert_match") for s in settings)


def test_jaeger_sampling_keeps_a_share_of_successful_runs(otelcol: Config) -> None:
    policies = otelcol["processors"]["tail_sampling"]["policies"]
    shares = [p["probabilistic"]["sampling_percentage"] for p in policies if p["type"] == "probabilistic"]
    assert len(shares) == 1 and 0 < shares[0] < 100


def test_jaeger_sampling_decides_soon_after_the_run_span_arrives(otelcol: Config) -> None:
    """A run's root span ends last, so waiting for it (not a fixed time) sees the whole run."""
    tail = otelcol["processors"]["tail_sampling"]

    def seconds(text: str) -> float:
        found = re.fullmatch(r"(\d+)(ms|s|m)", text)
        assert found, text
        return int(found.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[found.group(2)]

    assert seconds(tail["decision_wait_after_root_received"]) < seconds(tail["decision_wait"])
    assert tail["decision_cache"]["sampled_cache_size"] > tail["num_traces"]


# --------------------------------------------------------------------------------------------- exporters


def test_file_exporter_writes_json_lines_with_rotation_so_a_restart_appends(otelcol: Config) -> None:
    exporter = otelcol["exporters"]["file/decisions"]
    assert exporter["path"] == "/data/traces.jsonl"
    assert exporter.get("format", "json") == "json"
    assert "compression" not in exporter  # compressed JSON is length-prefixed, not JSON Lines
    assert "encoding" not in exporter and "group_by" not in exporter
    # `append: false` (the default) truncates at startup; `rotation` reopens in append mode instead.
    assert isinstance(exporter.get("rotation"), dict) and exporter["rotation"]["max_megabytes"] > 0
    assert "append" not in exporter  # cannot be combined with rotation


def test_jaeger_exporter_sends_otlp_grpc_to_the_jaeger_service(otelcol: Config, compose: Config) -> None:
    exporter = otelcol["exporters"]["otlp_grpc/jaeger"]
    assert exporter["endpoint"] == "jaeger:4317"
    assert exporter["tls"]["insecure"] is True
    assert "jaeger" in compose["services"]


def test_config_values_contain_no_dollar_sign_the_collector_would_expand(otelcol: Config) -> None:
    assert not [s for s in _strings(otelcol) if "$" in s]


# --------------------------------------------------------------------------------------------- scrubbing


def test_scrub_pattern_uses_only_re2_syntax(otelcol: Config) -> None:
    for pattern in [_secret_key_pattern(otelcol), *_blocked_values(otelcol)]:
        for construct in ("(?=", "(?!", "(?<", "(?>", "\\Z"):
            assert construct not in pattern, f"RE2 has no {construct}: {pattern!r}"
        assert not re.search(r"\\[1-9]", pattern), f"RE2 has no backreferences: {pattern!r}"
        re.compile(pattern)


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apiKey",
        "OPENAI_API_KEY",
        "http.request.header.x-api-key",
        "Authorization",
        "http.request.header.authorization",
        "http.request.header.proxy-authorization",
        "http.request.header.cookie",
        "http.response.header.set-cookie",
        "x-session-token",
        "access_token",
        "accessToken",
        "refresh_token",
        "github.token",
        "token",
        "client_secret",
        "aws.secret_access_key",
        "aws_access_key_id",
        "db.password",
        "passwd",
        "private_key",
        "credentials",
    ],
)
def test_scrub_pattern_deletes_secret_looking_keys(otelcol: Config, key: str) -> None:
    assert re.search(_secret_key_pattern(otelcol), key), key


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.request.max_tokens",
        "gen_ai.operation.name",
        "gen_ai.tool.name",
        "llm.token_count.prompt",
        "service.name",
        "http.request.method",
    ],
)
def test_scrub_pattern_keeps_token_counters_and_ordinary_keys(otelcol: Config, key: str) -> None:
    assert not re.search(_secret_key_pattern(otelcol), key), key


def test_scrub_pattern_keeps_every_attribute_of_our_span_contract(otelcol: Config) -> None:
    pattern = _secret_key_pattern(otelcol)
    keys = _contract_attribute_keys()
    assert {contract.OUTCOME_TOKENS, contract.RUN_TOKENS, contract.RUN_ID, contract.EXECUTION_ID} <= keys
    assert [k for k in sorted(keys) if re.search(pattern, k)] == []


def test_redaction_masks_secret_named_keys_on_events_and_resources_with_the_same_pattern(
    otelcol: Config,
) -> None:
    redaction = otelcol["processors"]["redaction"]
    assert redaction["allow_all_keys"] is True  # otherwise every attribute not listed is deleted
    assert redaction["blocked_key_patterns"] == [_secret_key_pattern(otelcol)]


SECRET_VALUES = [
    "sk-" + "proj-" + "Ab3dEf1234567890GhIjKlMn",
    "sk-" + "ant-api03-" + "Ab3dEf1234567890_GhIjKl",
    "AKIA" + "IOSFODNN7" + "ABCDEFG",
    "ghp" + "_" + "a1B2c3D4" * 5,
    "github_pat" + "_" + "11ABCDEFG0123456789_abcdefghij",
    "xoxb" + "-1234567890-" + "abcdefghij",
    "AIza" + "Sy" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "hf" + "_" + "AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    "Authorization: " + "Bearer " + "abcdef0123456789ABCDEF.ghij",
    "eyJ" + "hbGciOiJIUzI1NiJ9" + "." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0" + "." + "dozjgNryP4J3jVmNHl0w5N",
    "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq98",
]

NOT_SECRETS = [
    "4bf92f3577b34da6a3ce929d0e0e4736",  # an execution id (trace id)
    "00f067aa0ba902b7",  # a span id
    "run_20261101_093000_4bf92f35",  # a run id
    "dec_4242_a1b2c3_7",  # a decision id
    "123e4567-e89b-12d3-a456-426614174000",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # a sha256
    "Use the task-decomposition-strategy-for-this-goal",
    "risk-assessment-for-the-quarterly-budget-2026",
    "invoke_agent calculator",
    "execute_tool fractions.Fraction",
    "gen_ai.usage.input_tokens",
    "The bearer of this note asked for a refund",
    '[{"id":"exact_fraction","action_type":"tool_call","action_params":{"tool":"fractions.Fraction"}}]',
]


@pytest.mark.parametrize("value", SECRET_VALUES)
def test_redaction_masks_secret_looking_values(otelcol: Config, value: str) -> None:
    assert any(re.search(p, value) for p in _blocked_values(otelcol)), value


@pytest.mark.parametrize("value", NOT_SECRETS)
def test_redaction_leaves_ids_and_ordinary_text_alone(otelcol: Config, value: str) -> None:
    assert [p for p in _blocked_values(otelcol) if re.search(p, value)] == []


def test_masking_secrets_inside_recorded_json_keeps_the_json_valid(otelcol: Config) -> None:
    """Agents record inputs and results as JSON strings; masking replaces only the matching part."""
    bearer, api_key, pem = SECRET_VALUES[8], SECRET_VALUES[0], SECRET_VALUES[-1]
    recorded = json.dumps({"headers": {"auth": bearer}, "key": api_key, "pem": pem})
    masked = recorded
    for pattern in _blocked_values(otelcol):
        masked = re.sub(pattern, "****", masked)
    decoded = json.loads(masked)
    assert set(decoded) == {"headers", "key", "pem"}
    assert decoded["key"] == "****"
    assert not any(s in masked for s in ("abcdef0123456789", "Ab3dEf1234567890", "MIIEow"))


# --------------------------------------------------------------------------------------------- limits


def test_file_pipeline_cap_never_cuts_values_the_library_already_capped(otelcol: Config) -> None:
    """Our values are at most OTEL_DECISIONS_MAX_VALUE_CHARS characters plus a marker, ≤ 4 bytes each."""
    caps = _truncate_caps(otelcol, "transform/limits")
    assert set(caps) == {"span", "spanevent"}
    assert min(caps.values()) >= 4 * DEFAULT_MAX_VALUE_CHARS
    assert "transform/limits" in _processors(otelcol, FILE_PIPELINE)


def test_jaeger_pipeline_caps_long_texts_for_the_ui(otelcol: Config) -> None:
    caps = _truncate_caps(otelcol, "transform/limits_jaeger")
    assert set(caps) == {"span", "spanevent"}
    assert max(caps.values()) <= 4096
    assert "transform/limits_jaeger" in _processors(otelcol, JAEGER_PIPELINE)
    assert "transform/limits" not in _processors(otelcol, JAEGER_PIPELINE)


# --------------------------------------------------------------------------------------------- compose


def _collector_service(compose: Config) -> Config:
    services = [s for s in compose["services"].values() if "opentelemetry-collector-contrib" in s["image"]]
    assert len(services) == 1
    service = services[0]
    assert isinstance(service, dict)
    return service


def _volumes(service: Config) -> dict[str, tuple[str, str]]:
    """{container path: (host path, options)} of a service's short-syntax volumes."""
    mounts: dict[str, tuple[str, str]] = {}
    for entry in service.get("volumes", []):
        host, container, *options = str(entry).split(":")
        mounts[container] = (host, ",".join(options))
    return mounts


def test_compose_mounts_the_collector_config_that_exists_where_the_command_reads_it(compose: Config) -> None:
    collector = _collector_service(compose)
    config_flags = [a for a in collector["command"] if str(a).startswith("--config=")]
    assert len(config_flags) == 1
    container_path = config_flags[0].removeprefix("--config=")
    host, options = _volumes(collector)[container_path]
    assert (CONFIG_DIR / host).resolve() == OTELCOL_FILE
    assert "ro" in options.split(",")


def test_compose_gives_the_file_exporter_a_writable_host_directory(otelcol: Config, compose: Config) -> None:
    collector = _collector_service(compose)
    directory = str(Path(otelcol["exporters"]["file/decisions"]["path"]).parent)
    host, options = _volumes(collector)[directory]
    assert host.startswith("./") and "ro" not in options.split(",")
    assert "user" in collector  # the image's uid 10001 cannot write a directory owned by the user


def test_compose_publishes_otlp_on_the_collector_and_the_ui_on_jaeger_only(compose: Config) -> None:
    collector = _collector_service(compose)
    jaeger = compose["services"]["jaeger"]
    assert {4317, 4318} <= _published_ports(collector)
    assert 16686 in _published_ports(jaeger)
    assert not _published_ports(jaeger) & {4317, 4318}  # they would clash with the Collector's


def test_compose_pins_jaeger_v2_and_the_collector_image(compose: Config) -> None:
    images = [str(s["image"]) for s in compose["services"].values()]
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{image} is not pinned to a release"
    assert "cr.jaegertracing.io/jaegertracing/jaeger:2.20.0" in images


# --------------------------------------------------------------------------------------------- docs


def test_readme_searches_jaeger_with_attribute_names_of_the_span_contract() -> None:
    text = README_FILE.read_text(encoding="utf-8")
    named = set(re.findall(r"\b(otel_decisions\.[a-z_.]*[a-z_])=", text))
    assert {contract.EXECUTION_ID, contract.GOAL_ID, contract.RUN_STATUS} <= named
    assert named <= _contract_attribute_keys()


# --------------------------------------------------------------------------------------------- Collector


@pytest.mark.skipif(shutil.which("otelcol-contrib") is None, reason="otelcol-contrib is not on PATH")
def test_otelcol_contrib_validates_the_config() -> None:
    binary = shutil.which("otelcol-contrib")
    assert binary is not None
    result = subprocess.run(
        [binary, "validate", f"--config={OTELCOL_FILE}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr or result.stdout
