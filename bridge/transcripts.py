"""``/dm export 12``: the conversation's HTML transcript, made when the delivery runs (from what the database
holds then), uploaded into its thread with Slack's external upload flow (``files.getUploadURLExternal`` → the
bytes → ``files.completeUploadExternal``), like customers' files (``bridge.slack.files``)."""

from __future__ import annotations

import io
from datetime import tzinfo

import httpx

from bridge import export
from bridge.deliveries import TranscriptUpload
from bridge.slack.api import SlackApi
from bridge.slack.files import send_bytes
from bridge.store.db import Database
from bridge.store.tables import Conversation


class Transcripts:
    def __init__(self, db: Database, slack: SlackApi, poster: httpx.Client, tz: tzinfo) -> None:
        self.db, self.slack, self.poster, self.tz = db, slack, poster, tz

    def html(self, conversation_id: int) -> bytes:
        with self.db.read() as s:
            recs = export.collect(s, number=conversation_id)
        return export.to_html(recs, self.tz, f"Conversation #{conversation_id}").encode()

    def upload(self, delivery: TranscriptUpload, conv: Conversation, bot_user: str = "") -> str:
        assert conv.id is not None and conv.thread_ts is not None
        data = self.html(conv.id)
        upload_url, file_id = self.slack.upload_url(delivery.name, len(data))
        send_bytes(self.poster, upload_url, io.BytesIO(data), len(data))
        self.slack.complete_upload(
            file_id,
            delivery.name,
            conv.channel,
            conv.thread_ts,
            f":page_facing_up: The transcript of #{conv.id}, as asked by <@{delivery.requested_by}>.",
        )
        return file_id

    def find(self, delivery: TranscriptUpload, conv: Conversation, *, since: float, bot_user: str = "") -> str | None:
        """An upload whose answer was lost: the file in the thread (by its name, since the row was made)."""
        if not conv.thread_ts:
            return None
        return self.slack.find_file(
            conv.channel, conv.thread_ts, delivery.name, since=since, known=set(), bot_user=bot_user
        )
