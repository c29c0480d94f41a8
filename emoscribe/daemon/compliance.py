"""What the daemon may infer on a stream, by its role, enforced where every message is published.

Article 5(1)(f) of the EU AI Act (Regulation (EU) 2024/1689, applicable since 2 February 2025) prohibits
systems that infer the emotions of a natural person in the workplace, except for medical or safety reasons.
A contact-center agent is at work, so by default an ``agent`` stream is ``cues_only``: its audio is never
sent to the emotion model, and its messages carry acoustic cues, their tokens and the audio quality, but no
emotion, arousal or valence, prompts, query scores, caption, grounding or alerts. A ``driver`` stream
(in-car safety monitoring, a safety purpose) and a ``customer`` stream (not at their workplace) are ``full``.
``unknown`` is ``full`` so a daemon told nothing about its streams behaves as before; set it to
``cues_only`` to fail closed where a stream of unknown role may be a worker's.

Enforcement is where every message is published: the publisher stamps each stream message with its
stream's role and policy as they are at that moment, and a ``cues_only`` message serialises to an allowlist of
fields (each message type's ``cues_only_fields``), so a field added later, by a new feature or a newer model,
is withheld until it is listed, and a message type that lists none (an alert) is not sent at all. The
heartbeat states the policy of each role.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from emoscribe.daemon.roles import ROLES, Roles
from emoscribe.messages import CUES_ONLY, Heartbeat, Message, StreamMessage

FULL = "full"
POLICIES = (FULL, CUES_ONLY)
PURPOSES = ("medical", "safety")
"""The reasons Article 5(1)(f) accepts for inferring emotions at the workplace."""


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

    def scores_queries(self, stream: str) -> bool:
        """Whether run-time queries may score the stream, on its sound or its words: a query ("an agitated
        customer") asks what the speaker feels as readily as what they say, so a ``cues_only`` stream is never
        scored. Its transcript is still published: words are not an emotion."""
        return self.policy(stream) == FULL

    def stamp(self, message: Message) -> Message | None:
        """``message`` as it may be published, stating its stream's role and policy; ``None`` for a kind a
        ``cues_only`` stream never carries. The heartbeat, which belongs to no stream, states every role's."""
        if isinstance(message, Heartbeat):
            return replace(message, policies=dict(self._policies))
        role = self.roles.role(message.stream)
        policy = self._policies[role]
        if not isinstance(message, StreamMessage):  # it cannot state a policy: sent only where all is allowed
            return message if policy == FULL else None
        if policy == CUES_ONLY and not message.cues_only_fields:
            return None
        return replace(message, role=role, policy=policy)
