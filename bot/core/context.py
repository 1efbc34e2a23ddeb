"""One message being handled: the message, its user's row and the knowledge snapshot it sees from start to end."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.knowledge import Knowledge
from bot.core.messages import IncomingMessage, Reply
from bot.core.store import Store, User


@dataclass
class Context:
    """One message being handled, with the knowledge snapshot it sees from start to end."""

    msg: IncomingMessage
    user: User
    k: Knowledge
    prefix: list[Reply] = field(default_factory=list)
    #: the user's row could not be read: answer from memory, write nothing, refuse what needs stored data
    degraded: bool = False
    #: False for a stand-in made before any storage was asked (the safety paths); load it only if needed
    loaded: bool = True

    async def stored_user(self, store: Store) -> User:
        """The user's row, created now if there is none: only when something about them must be kept (their
        consent, a setting). A question or a red flag never creates one (issue 16)."""
        if not self.user.stored:
            self.user = await store.get_or_create_user(self.msg.platform, self.msg.user_id)
        return self.user

    @property
    def private(self) -> bool:
        """Whether replies about the user's own health or data go privately: True when the message came from a
        group or channel (``Reply.private`` asks the adapter for a DM or an ephemeral answer)."""
        return not self.msg.is_private
