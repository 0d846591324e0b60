"""What X API v2 accepts in the query of each endpoint the X emulator serves.

Written by hand from X's OpenAPI document (xdevplatform/xdk ``specs/openapi.json``, version 2.167):
the parameter names of each operation, the enums of ``user.fields``, ``dm_event.fields``,
``expansions``, ``event_types``, ``post.fields`` and ``media.fields``, ``max_results`` 1–100 and
``ids`` 1–100. The spec file is not read at run time; ``tests/contract/test_x_spec.py`` checks
these tables against it. A value outside them answers X's invalid-request problem (400).
"""

from __future__ import annotations

from collections.abc import Mapping

USER_FIELDS = frozenset(
    {
        "confirmed_email",
        "connection_status",
        "created_at",
        "description",
        "entities",
        "id",
        "is_identity_verified",
        "location",
        "name",
        "parody",
        "profile_banner_url",
        "profile_image_url",
        "protected",
        "public_metrics",
        "receives_your_dm",
        "subscribes_to_you",
        "subscription",
        "subscription_type",
        "url",
        "username",
        "verified",
        "verified_followers_count",
        "verified_type",
        "withheld",
    }
)
POST_FIELDS = frozenset(
    {
        "article",
        "article_title",
        "attachments",
        "card_uri",
        "community_id",
        "context_annotations",
        "conversation_id",
        "created_at",
        "display_text_range",
        "edit_controls",
        "entities",
        "geo",
        "id",
        "lang",
        "matched_media_notes",
        "media_metadata",
        "non_public_metrics",
        "note_post",
        "note_request_suggestions",
        "organic_metrics",
        "paid_partnership",
        "possibly_sensitive",
        "promoted_metrics",
        "public_metrics",
        "reply_settings",
        "scopes",
        "source",
        "suggested_source_links",
        "suggested_source_links_with_counts",
        "text",
        "withheld",
    }
)
MEDIA_FIELDS = frozenset(
    {
        "alt_text",
        "duration_ms",
        "height",
        "media_key",
        "non_public_metrics",
        "organic_metrics",
        "preview_image_url",
        "promoted_metrics",
        "public_metrics",
        "type",
        "url",
        "variants",
        "width",
    }
)
DM_EVENT_FIELDS = frozenset({"attachments", "created_at", "dm_conversation_id", "entities", "event_type", "id", "text"})
DM_EXPANSIONS = frozenset({"attachments.media_keys", "participant_ids", "referenced_posts", "sender_id"})
USER_EXPANSIONS = frozenset({"affiliation", "most_recent_post_id", "pinned_post_id"})
EVENT_TYPES = frozenset({"MessageCreate", "ParticipantsJoin", "ParticipantsLeave"})
MAX_IDS = 100
PUBLIC_KEY_FIELDS = frozenset(
    {"identity_public_key_signature", "juicebox_config", "public_key", "public_key_version", "signing_public_key"}
)
CHAT_CONVERSATION_FIELDS = frozenset(
    {
        "created_at",
        "group_avatar_url",
        "group_name",
        "id",
        "is_muted",
        "message_ttl_ms",
        "screen_capture_blocking_enabled",
        "screen_capture_detection_enabled",
        "type",
        "updated_at",
    }
)
CHAT_EXPANSIONS = frozenset({"admin_ids", "member_ids", "participant_ids"})
CHAT_EVENT_FIELDS = frozenset(
    {
        "conversation_id",
        "conversation_token",
        "created_at",
        "encoded_event",
        "id",
        "is_trusted",
        "message_event_signature",
        "previous_id",
        "sender_id",
    }
)

_USER_QUERY: dict[str, frozenset[str] | None] = {
    "user.fields": USER_FIELDS,
    "expansions": USER_EXPANSIONS,
    "post.fields": POST_FIELDS,
}
_DM_QUERY: dict[str, frozenset[str] | None] = {
    "max_results": None,
    "pagination_token": None,
    "event_types": EVENT_TYPES,
    "dm_event.fields": DM_EVENT_FIELDS,
    "expansions": DM_EXPANSIONS,
    "user.fields": USER_FIELDS,
    "post.fields": POST_FIELDS,
    "media.fields": MEDIA_FIELDS,
}

# endpoint (the emulator's route) → query parameter → allowed values of a comma-separated list (None: free)
QUERY: dict[str, dict[str, frozenset[str] | None]] = {
    "/2/users/me": _USER_QUERY,
    "/2/users": {"ids": None, **_USER_QUERY},
    "/2/dm_events": _DM_QUERY,
    "/2/dm_conversations/{id}/dm_events": _DM_QUERY,
    "/2/dm_conversations/with/{participant_id}/messages": {},
    "/2/dm_conversations/{dm_conversation_id}/messages": {},
    "/2/users/{id}": _USER_QUERY,
    "/2/users/{id}/public_keys": {"public_key.fields": PUBLIC_KEY_FIELDS},
    "/2/chat/conversations": {
        "max_results": None,
        "pagination_token": None,
        "chat_conversation.fields": CHAT_CONVERSATION_FIELDS,
        "expansions": CHAT_EXPANSIONS,
        "user.fields": USER_FIELDS,
    },
    "/2/chat/conversations/{id}/events": {
        "max_results": None,
        "pagination_token": None,
        "chat_message_event.fields": CHAT_EVENT_FIELDS,
    },
    "/2/chat/conversations/{id}/keys": {},
    "/2/media/upload": {"media_id": None, "command": frozenset({"STATUS"})},
    "/2/media/upload/initialize": {},
    "/2/media/upload/{id}/append": {},
    "/2/media/upload/{id}/finalize": {},
    "/2/chat/conversations/{id}/messages": {},
    "/2/chat/media/upload/initialize": {},
    "/2/chat/media/upload/{id}/append": {},
    "/2/chat/media/upload/{id}/finalize": {},
    "/2/chat/media/{id}/{media_hash_key}": {},
}


class InvalidQuery(ValueError):
    """One problem with a request's query, in the words X uses."""

    def __init__(self, parameter: str, values: list[str], message: str) -> None:
        super().__init__(message)
        self.parameter, self.values, self.message = parameter, values, message

    def body(self) -> dict[str, object]:
        """X's invalid-request problem document."""
        return {
            "errors": [{"parameters": {self.parameter: self.values}, "message": self.message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.x.com/2/problems/invalid-request",
        }


def check_query(endpoint: str, query: Mapping[str, str]) -> None:
    """Raise :class:`InvalidQuery` for an unknown parameter, a value outside its enum, or ``ids`` over 100."""
    allowed = QUERY[endpoint]
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise InvalidQuery(
            unknown[0],
            [query[unknown[0]]],
            f"The query parameters [{','.join(unknown)}] is not one of [{','.join(allowed)}]",
        )
    for name, enum in allowed.items():
        if name not in query:
            continue
        values = query[name].split(",")
        if enum is not None:
            bad = [v for v in values if v not in enum]
            if bad or not query[name]:
                raise InvalidQuery(
                    name,
                    bad or [""],
                    f"The `{name}` query parameter value [{','.join(bad)}] is not one of [{','.join(sorted(enum))}]",
                )
    if "ids" in allowed and "ids" in query:
        ids = [i for i in query["ids"].split(",") if i]
        if not 1 <= len(ids) <= MAX_IDS or not all(i.isdigit() for i in ids):
            raise InvalidQuery(
                "ids", [query["ids"][:200]], f"The `ids` query parameter value must have 1 to {MAX_IDS} numeric ids"
            )


# the OAuth2UserToken security scheme's scopes
OAUTH2_SCOPES = frozenset(
    {
        "block.read",
        "bookmark.read",
        "bookmark.write",
        "broadcast.read",
        "broadcast.write",
        "dm.read",
        "dm.write",
        "follows.read",
        "follows.write",
        "like.read",
        "like.write",
        "list.read",
        "list.write",
        "media.write",
        "mute.read",
        "mute.write",
        "offline.access",
        "space.read",
        "timeline.read",
        "tweet.moderate.write",
        "tweet.read",
        "tweet.write",
        "users.read",
    }
)
