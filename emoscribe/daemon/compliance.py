"""What the daemon may infer on a stream, by its role, enforced where every message is published.

Article 5(1)(f) of the EU AI Act (Regulation (EU) 2024/1689, applicable since 2 February 2025) prohibits
systems that infer the emotions of a natural person in the workplace, except for medical or safety reasons.
A contact-center agent is at work, so by default an ``agent`` stream is ``cues_only``: its audio is never
sent to the emotion model, and its messages carry acoustic cues, their tokens and the audio quality, but no
emotion, arousal or valence, prompts, query scores, caption, grounding or alerts. A ``driver`` stream
(in-car safety monitoring, a safety purpose) and a ``customer`` stream (not at their workplace) are ``full``.
``unknown`` is ``full`` so a daemon told nothing about its streams behaves as before; set it to
``cues_only`` to fail closed where a stream of unknown role may be a worker's.

Enforcement is an allowlist per message kind: a ``cues_only`` message keeps only the fields named in
:data:`CUES_ONLY_FIELDS`, so a field added later (by a new feature or a newer model) is withheld until it is
listed here, and a message kind not listed is not sent at all. Every stream message states ``role`` and
``policy``; the heartbeat states the policy of each role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from emoscribe.daemon.roles import ROLES, Roles

FULL, CUES_ONLY = "full", "cues_only"
POLICIES = (FULL, CUES_ONLY)
PURPOSES = ("medical", "safety")
"""The reasons Article 5(1)(f) accepts for inferring emotions at the workplace."""

ENVELOPE = frozenset({"schema", "stream", "seq", "wall_time", "role", "policy"})
CUES_ONLY_FIELDS: Mapping[str, frozenset[str]] = {
    "utterance": ENVELOPE
    | {"start", "end", "reason", "speech", "cues", "tokens", "concepts", "quality", "latency", "shed"},
    "cues": ENVELOPE | {"start", "end", "partial", "cues", "tokens", "latency", "shed"},
    "stream": ENVELOPE | {"event", "start", "end", "reason", "details", "snapshot"},
    "summary": ENVELOPE | {"start", "end", "duration_s", "speech_s", "speech_ratio", "utterances", "quality"},
}
"""Fields a ``cues_only`` stream's messages may carry, by message kind; nothing else goes out."""


@dataclass(frozen=True, slots=True)
class ComplianceSettings:
    """The ``[compliance]`` section: a policy per role. ``agent = "full"`` is refused unless ``agent_purpose``
    names a purpose the Act allows (``medical`` or ``safety``)."""

    customer: str = FULL
    agent: str = CUES_ONLY
    driver: str = FULL
    unknown: str = FULL
    agent_purpose: str = ""

    def __post_init__(self) -> None:
        for role in ROLES:
            if getattr(self, role) not in POLICIES:
                raise ValueError(
                    f"{role}: unknown policy {getattr(self, role)!r}; policies are {', '.join(POLICIES)}"
                )
        if self.agent_purpose and self.agent_purpose not in PURPOSES:
            raise ValueError(
                f"agent_purpose: {self.agent_purpose!r} is not a purpose the EU AI Act (Art. 5(1)(f)) allows "
                f"for emotion recognition at work ({', '.join(PURPOSES)})"
            )
        if self.agent == FULL and not self.agent_purpose:
            raise ValueError(
                'agent = "full" infers the emotions of people at work, which Art. 5(1)(f) of the EU AI Act '
                'prohibits except for medical or safety reasons: set agent_purpose = "medical" or "safety"'
            )
        if self.agent_purpose and self.agent != FULL:
            raise ValueError(f'agent_purpose = {self.agent_purpose!r} has no effect unless agent = "full"')

    def policies(self) -> dict[str, str]:
        return {role: policy for role, policy in asdict(self).items() if role in ROLES}


class Compliance:
    """Applies each stream's policy to its messages as they are published."""

    def __init__(self, settings: ComplianceSettings, roles: Roles) -> None:
        self.settings = settings
        self.roles = roles
        self._policies = settings.policies()

    def policy(self, stream: str) -> str:
        return self._policies[self.roles.role(stream)]

    def infers_emotion(self, stream: str) -> bool:
        """Whether the stream's audio may go to the emotion model at all."""
        return self.policy(stream) == FULL

    def apply(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The payload as it may be published (``None``: not at all), stating its stream's role and policy.
        The heartbeat, which belongs to no stream, states the policy of every role instead."""
        if kind == "heartbeat":
            return {**payload, "policies": dict(self._policies)}
        stream = payload["stream"]
        role = self.roles.role(stream)
        policy = self._policies[role]
        stated = {**payload, "role": role, "policy": policy}
        if policy == FULL:
            return stated
        allowed = CUES_ONLY_FIELDS.get(kind)
        if allowed is None:
            return None
        return {key: value for key, value in stated.items() if key in allowed}
