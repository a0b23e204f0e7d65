"""The kinds of secret the privacy tests record (shared by `test_privacy.py` and the other privacy tests):
each in a sentence and in data, with what must be read back for them (`SECRETS`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Shape = Literal["text", "json", "list"]


@dataclass(frozen=True)
class Secret:
    """A kind of secret: `secret` is what must never be recorded; `text` / `data` hold it among ordinary
    words or keys, and `scrubbed_text` / `scrubbed_data` are what must be read back for them."""

    kind: str
    secret: str
    text: str
    scrubbed_text: str
    data: dict[str, Any]
    scrubbed_data: dict[str, Any]

    def __str__(self) -> str:
        return self.kind

    def value(self, shape: Shape) -> Any:
        """The value a field of `shape` is given (lists hold an ordinary item too)."""
        return {"text": self.text, "json": self.data, "list": [self.text, "plain item"]}[shape]

    def scrubbed(self, shape: Shape) -> Any:
        return {
            "text": self.scrubbed_text,
            "json": self.scrubbed_data,
            "list": [self.scrubbed_text, "plain item"],
        }[shape]


R = "[REDACTED]"
ANTHROPIC_KEY = "sk-ant-api03-Zq8vLm2Xw9Rt4Yp7Kc1Nb6Hs3Jd5Fg0AxW"
OPENAI_KEY = "sk-proj-Tb7Qw2Er9Ty4Ui1Op6As3Df8Gh5Jk0L"
AWS_KEY_ID = "AKIAQ3EGUCTK5HT7LW2N"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8vLm2Xw9"
GITHUB_TOKEN = "ghp_R8sT2uV4wX6yZ8aB0cD2eF4gH6iJ8kL0mN2p"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyNDIiLCJyb2xlIjoiYWRtaW4ifQ.Qm9fX2c3ZlR5dWpLbE5tT3BxUnN0"
BEARER = "Zk4mP9qL2vX7nR5tW8yB3cD6"
PASSWORD = "Hunter2Zebra!Moon"
PASSPHRASE = "correct horse battery staple"
NUMERIC_KEY = 739152048631
URL_PASSWORD = "Tr0ub4dor3xQ"
URL_PASSWORD_WITH_AT = "p@ss@w0rd!Kx7"  # `@` inside the password: only the last `@` ends it
SAS_SIGNATURE = "Rk7xT2wQ9mZ4vN8pL3%2BsJ6hF1cY5dG0%2FbK4eA%3D"  # URL-encoded Azure SAS `sig`
SAS_URL = "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-01-01&sp=r&sig="
AUTH_PASSWORD = "Hunter2Auth!Qz9"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Vx4Jc\n"
    "q9XvT2mLr8Kc4Wd0YbN3pQs6Tu1Hf5Gk8Lz2Ma7Dw0Ey9Rx4\n"
    "-----END RSA PRIVATE KEY-----"
)


def _in_sentence(kind: str, secret: str) -> Secret:
    """A secret recognised by its own shape, inside a sentence and inside a JSON string value."""
    return Secret(
        kind,
        secret,
        f"Use {secret} for the call.",
        f"Use {R} for the call.",
        {"log": f"Use {secret} for the call.", "count": 3},
        {"log": f"Use {R} for the call.", "count": 3},
    )


SECRETS: tuple[Secret, ...] = (
    _in_sentence("anthropic_key", ANTHROPIC_KEY),
    _in_sentence("openai_key", OPENAI_KEY),
    _in_sentence("aws_access_key_id", AWS_KEY_ID),
    _in_sentence("github_token", GITHUB_TOKEN),
    _in_sentence("jwt", JWT),
    Secret(
        "authorization_header",
        BEARER,
        f"Sent Authorization: Bearer {BEARER} to the API.",
        f"Sent Authorization: Bearer {R} to the API.",
        {"headers": {"Authorization": f"Bearer {BEARER}", "Accept": "application/json"}, "attempt": 2},
        {"headers": {"Authorization": R, "Accept": "application/json"}, "attempt": 2},
    ),
    Secret(
        "password",
        PASSWORD,
        f"Log in with password={PASSWORD} then continue.",
        f"Log in with password={R} then continue.",
        {"user": "ops", "db_password": PASSWORD},
        {"user": "ops", "db_password": R},
    ),
    Secret(
        "aws_secret_access_key",
        AWS_SECRET,
        f"export aws_secret_access_key={AWS_SECRET} now",
        f"export aws_secret_access_key={R} now",
        {"aws_secret_access_key": AWS_SECRET, "region": "eu-west-1"},
        {"aws_secret_access_key": R, "region": "eu-west-1"},
    ),
    Secret(
        "api_key_named_string",
        PASSPHRASE,
        f'Config {{"api_key": "{PASSPHRASE}"}} loaded.',
        f'Config {{"api_key": "{R}"}} loaded.',
        {"api_key": PASSPHRASE, "model": "claude"},
        {"api_key": R, "model": "claude"},
    ),
    Secret(
        "api_key_named_int",
        str(NUMERIC_KEY),
        f"Config api_key={NUMERIC_KEY} loaded.",
        f"Config api_key={R} loaded.",
        {"api_key": NUMERIC_KEY, "retries": 3},
        {"api_key": R, "retries": 3},
    ),
    Secret(
        "url_credentials",
        URL_PASSWORD,
        f"Connect to https://deploy:{URL_PASSWORD}@db.example.com/prod first.",
        f"Connect to https://deploy:{R}@db.example.com/prod first.",
        {"dsn": f"postgres://deploy:{URL_PASSWORD}@db.example.com:5432/prod", "pool": 5},
        {"dsn": f"postgres://deploy:{R}@db.example.com:5432/prod", "pool": 5},
    ),
    Secret(
        "url_password_with_at",
        URL_PASSWORD_WITH_AT,
        f"Connect to https://alice:{URL_PASSWORD_WITH_AT}@db.example.com:5432/app first.",
        f"Connect to https://alice:{R}@db.example.com:5432/app first.",
        {"dsn": f"postgres://alice:{URL_PASSWORD_WITH_AT}@db.example.com:5432/app", "pool": 5},
        {"dsn": f"postgres://alice:{R}@db.example.com:5432/app", "pool": 5},
    ),
    Secret(
        "azure_sas_signature",
        SAS_SIGNATURE,
        f"Download {SAS_URL}{SAS_SIGNATURE} now.",
        f"Download {SAS_URL}{R} now.",
        {"url": f"{SAS_URL}{SAS_SIGNATURE}", "expires": "2026-01-01"},
        {"url": f"{SAS_URL}{R}", "expires": "2026-01-01"},
    ),
    Secret(
        "auth_list",
        AUTH_PASSWORD,
        f'Config {{"auth": ["alice", "{AUTH_PASSWORD}"]}} loaded.',
        f'Config {{"auth": {R}}} loaded.',
        {"auth": ["alice", AUTH_PASSWORD], "model": "claude"},
        {"auth": R, "model": "claude"},
    ),
    Secret(
        "credentials_dict",
        AUTH_PASSWORD,
        f'Config {{"credentials": {{"user": "alice", "pass": "{AUTH_PASSWORD}"}}}} loaded.',
        f'Config {{"credentials": {R}}} loaded.',
        {"credentials": {"user": "alice", "pass": AUTH_PASSWORD}, "region": "eu-west-1"},
        {"credentials": R, "region": "eu-west-1"},
    ),
    Secret(
        "password_list",
        AUTH_PASSWORD,
        f"Tried passwd=['{AUTH_PASSWORD}', 'old'] twice.",
        f"Tried passwd={R} twice.",
        {"password": [AUTH_PASSWORD], "attempts": 2},
        {"password": R, "attempts": 2},
    ),
    Secret(
        "pem_private_key",
        PEM,
        f"Key file:\n{PEM}\nEnd of file.",
        f"Key file:\n{R}\nEnd of file.",
        {"attachment": PEM, "name": "deploy.pem"},
        {"attachment": R, "name": "deploy.pem"},
    ),
)
