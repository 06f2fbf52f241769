"""Slack through its official client (slack-sdk): post a notification, update it in place, say
something to one person only, and check that a request really comes from Slack.

WebClient is synchronous (urllib): the notifier calls it on a worker thread. Anything Slack or
the network refuses is a SlackFailed naming it; the caller retries later.
"""

import json
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier

from models.settings import Settings


class SlackFailed(Exception):
    pass


@dataclass(frozen=True)
class Posted:
    channel: str  # Slack's id of where it went (a DM's own id for a person)
    ts: str  # the message's id within it, for chat.update


@dataclass(frozen=True)
class SlackApi:
    token: str
    base_url: str
    timeout: float

    def client(self) -> WebClient:
        base = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        return WebClient(token=self.token, base_url=base, timeout=int(max(1, self.timeout)))

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> Posted:
        """A new message in a channel, or a DM when `channel` is a user id (blocking)."""
        answer = _call(
            lambda: self.client().chat_postMessage(channel=channel, text=text, blocks=blocks)
        )
        return Posted(channel=str(answer["channel"]), ts=str(answer["ts"]))

    def update(self, posted: Posted, text: str, blocks: list[dict[str, Any]]) -> None:
        _call(
            lambda: self.client().chat_update(
                channel=posted.channel, ts=posted.ts, text=text, blocks=blocks
            )
        )

    def whisper(self, channel: str, user: str, text: str) -> None:
        """A message only `user` sees (chat.postEphemeral)."""
        _call(lambda: self.client().chat_postEphemeral(channel=channel, user=user, text=text))


def slack_api(settings: Settings) -> SlackApi | None:
    """The client the settings describe; None without a bot token."""
    if settings.slack_bot_token is None:
        return None
    return SlackApi(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=settings.slack_timeout_seconds,
    )


def _call(request: Any) -> Any:
    try:
        return request()
    except SlackApiError as exc:
        raise SlackFailed(
            f"Slack refused: {exc.response.get('error', exc.response.status_code)}"
        ) from exc
    except (SlackClientError, OSError) as exc:  # OSError: urllib's URLError, a timeout
        raise SlackFailed(f"{type(exc).__name__}: {exc}"[:500]) from exc


def signed_by_slack(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """Slack's signing scheme (v0 HMAC-SHA256 of "v0:{timestamp}:{body}"), with a timestamp at
    most five minutes away from now: a replayed request is refused like a forged one."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return SignatureVerifier(secret).is_valid(body=body, timestamp=timestamp, signature=signature)


def interaction(form_payload: str) -> dict[str, Any]:
    """The JSON that Slack sends form-encoded as `payload=`; ValueError if it is not an object."""
    data = json.loads(form_payload)
    if not isinstance(data, dict):
        raise ValueError("the payload is not a JSON object")
    return data
