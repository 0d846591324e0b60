"""X legacy DM media, pure: v2 media objects and v1.1 webhook entities become private files on the X API host,
refs are only ever accepted on that host, and X's file limits and upload categories follow its docs."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.x import convert, media
from connectors.x.transfer import size_text

BASE = "https://api.x.example"
ME = "1460987654321098752"
CUSTOMER = "1290011223344556677"
DM = "1845123456789012481"
MEDIA = "1845123450000000000"


def event(keys: list[str]) -> dict[str, Any]:
    return {
        "id": DM,
        "event_type": "MessageCreate",
        "text": "look",
        "sender_id": CUSTOMER,
        "dm_conversation_id": f"{CUSTOMER}-{ME}",
        "attachments": {"media_keys": keys},
    }


def test_a_v2_photo_is_a_private_image_read_from_the_api_host() -> None:
    objects = {
        f"3_{MEDIA}": {
            "media_key": f"3_{MEDIA}",
            "type": "photo",
            "url": f"https://ton.twitter.com/1.1/ton/data/dm/{DM}/{MEDIA}/hVJQTwig.jpg",
        }
    }
    message = convert.to_message(event([f"3_{MEDIA}"]), me=ME, account="acme", users={}, media=objects, base_url=BASE)
    assert message is not None and message.attachments == ()
    (file,) = message.files
    assert file.private and file.kind == "image" and file.content_type == "image/jpeg"
    assert file.url == f"{BASE}/2/dm_conversations/media/{DM}/{MEDIA}/hVJQTwig.jpg"
    assert file.name == f"photo-{MEDIA}.jpg" and file.id == MEDIA


def test_a_gif_and_a_video_take_their_best_mp4_variant() -> None:
    variants = [
        {"bit_rate": 256000, "content_type": "video/mp4", "url": "https://video.twimg.com/dm_gif/1/vid/low.mp4?tag=1"},
        {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/dm_gif/1/pl/list.m3u8"},
        {"bit_rate": 832000, "content_type": "video/mp4", "url": "https://video.twimg.com/dm_gif/1/vid/high.mp4?tag=1"},
    ]
    gif = media.from_v2(BASE, DM, {"media_key": f"16_{MEDIA}", "type": "animated_gif", "variants": variants})
    assert gif is not None and gif.kind == "video" and gif.name == f"gif-{MEDIA}.mp4" and gif.url.endswith("/high.mp4")
    entity = {
        "id_str": MEDIA,
        "type": "video",
        "video_info": {"variants": [{**v, "bitrate": v.get("bit_rate")} for v in variants]},
    }
    video = media.from_v1(BASE, DM, entity)
    assert video is not None and video.name == f"video-{MEDIA}.mp4" and video.url.endswith("/high.mp4")


def test_media_that_cannot_be_fetched_is_counted_not_dropped() -> None:
    objects = {"3_9": {"media_key": "3_9", "type": "photo"}, f"7_{MEDIA}": {"media_key": f"7_{MEDIA}", "type": "video"}}
    message = convert.to_message(
        event(["3_9", f"7_{MEDIA}", "3_404"]), me=ME, account="acme", users={}, media=objects, base_url=BASE
    )
    assert message is not None and message.files == () and message.attachments == ("3_9", f"7_{MEDIA}", "3_404")
    without_base = convert.to_message(event(["3_9"]), me=ME, account="acme", users={}, media=objects)
    assert without_base is not None and without_base.attachments == ("3_9",)


def test_an_account_activity_photo_becomes_a_file() -> None:
    payload = {
        "for_user_id": ME,
        "direct_message_events": [
            {
                "type": "message_create",
                "id": DM,
                "created_timestamp": "1787230991000",
                "message_create": {
                    "target": {"recipient_id": ME},
                    "sender_id": CUSTOMER,
                    "message_data": {
                        "text": "see",
                        "attachment": {
                            "type": "media",
                            "media": {
                                "id_str": MEDIA,
                                "type": "photo",
                                "media_url_https": f"https://ton.twitter.com/1.1/ton/data/dm/{DM}/{MEDIA}/tJg5kUG5RKPi3jNi.png",
                            },
                        },
                    },
                },
            }
        ],
    }
    (message,) = convert.webhook_messages(payload, me=ME, account="acme", base_url=BASE)
    (file,) = message.files
    assert file.url == f"{BASE}/2/dm_conversations/media/{DM}/{MEDIA}/tJg5kUG5RKPi3jNi.png"
    assert file.content_type == "image/png" and file.name == f"photo-{MEDIA}.png"


NAMES = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


@settings(max_examples=300, deadline=None)
@given(link=NAMES, kind=st.sampled_from(["photo", "video", "animated_gif", "audio", ""]), media_id=NAMES)
def test_whatever_x_sends_the_ref_stays_on_the_api_host(link: str, kind: str, media_id: str) -> None:
    """A forged link, id or type never yields a ref off the host or outside the media path."""
    variants = [{"bit_rate": 1, "content_type": "video/mp4", "url": link}]
    for file in (
        media.from_v2(BASE, DM, {"media_key": f"3_{media_id}", "type": kind, "url": link, "variants": variants}),
        media.from_v1(
            BASE, DM, {"id_str": media_id, "type": kind, "media_url_https": link, "video_info": {"variants": variants}}
        ),
    ):
        if file is not None:
            assert media.ref_allowed(BASE, file.url) and file.private
            assert file.url.startswith(BASE + "/2/dm_conversations/media/")
            assert all(c not in file.name for c in "/<>|") and file.kind in ("image", "video")


@given(st.text(max_size=120))
def test_only_media_paths_on_the_configured_host_are_refs(ref: str) -> None:
    if media.ref_allowed(BASE, ref):
        assert ref.startswith(BASE + "/2/dm_conversations/media/") and ".." not in ref.split("/") and "?" not in ref


def test_refs_elsewhere_are_refused() -> None:
    good = f"{BASE}/2/dm_conversations/media/{DM}/{MEDIA}/a.jpg"
    assert media.ref_allowed(BASE, good) and media.ref_allowed(BASE + "/", good)
    for bad in [
        good.replace("api.x.example", "api.x.example.evil"),
        good.replace("https://", "http://"),
        good.replace("https://", "https://user@"),
        good + "?x=1",
        good + "#f",
        f"{BASE}/2/dm_conversations/media/{DM}/{MEDIA}/..",
        f"{BASE}/2/dm_conversations/media/{DM}/abc/a.jpg",
        f"{BASE}/2/dm_conversations/media/{DM}/{MEDIA}/a.jpg/more",
        f"{BASE}:8443/2/dm_conversations/media/{DM}/{MEDIA}/a.jpg",
        "not a url",
    ]:
        assert not media.ref_allowed(BASE, bad), bad


def test_x_file_limits_follow_its_docs() -> None:
    limits = media.FILE_LIMITS
    assert limits.with_text and limits.label == "X" and not limits.by_link
    assert limits.refusal("a.jpg", "image/jpeg", 4_900_000) is None
    assert "up to 5 MB" in (limits.refusal("a.jpg", "image/jpeg", 5_100_000) or "")
    assert limits.refusal("a.gif", "image/gif", 14_000_000) is None  # GIFs have their own 15 MB
    assert "up to 15 MB" in (limits.refusal("a.gif", "image/gif", 15_100_000) or "")
    assert limits.refusal("a.mp4", "video/mp4", 500_000_000) is None
    assert "does not take audio" in (limits.refusal("a.m4a", "audio/mp4", 10) or "")
    assert "does not take other files" in (limits.refusal("a.pdf", "application/pdf", 10) or "")
    assert [media.category(t) for t in ("image/jpeg", "image/png", "image/gif", "video/mp4")] == [
        "dm_image",
        "dm_image",
        "dm_gif",
        "dm_video",
    ]


def test_sizes_are_said_as_the_thread_says_them() -> None:
    assert [size_text(n) for n in (1024 * 1024, 3 * 1024 * 1024 // 2, 100_000, 10)] == [
        "1 MB",
        "1.5 MB",
        "97 KB",
        "1 KB",
    ]
