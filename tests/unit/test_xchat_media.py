"""X Chat media, the pure parts (connectors.xchat.media): our file references, opened attachments → files, the
attachment descriptor chatxdk takes, and the streams (segments out, decryption in) with real chatxdk ciphers."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from typing import Any

import pytest
from chat_xdk import Chat, encrypted_stream_size
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.domain import OutboundFile
from bridge.errors import Rejected
from connectors.xchat import media
from connectors.xchat.media import MediaRef

ME = "1290011223344550000"
CUSTOMER = "1290011223344556677"
CONV = f"{ME}-{CUSTOMER}"

ids = st.integers(min_value=1, max_value=10**19 - 1)


@st.composite
def refs(draw: st.DrawFn) -> MediaRef:
    a, b = draw(ids), draw(ids.filter(lambda n: True))
    if a == b:
        b = a + 1 if a < 10**19 - 1 else a - 1
    low, high = sorted((a, b))
    return MediaRef(
        f"{low}-{high}",
        str(draw(st.integers(min_value=0, max_value=10**20 - 1))),
        draw(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=50)
        ),
        draw(st.integers(min_value=0, max_value=10**15 - 1)),
    )


@given(refs())
def test_a_reference_reads_back_as_itself(ref: MediaRef) -> None:
    assert str(ref).startswith(media.CHAT_REF)
    assert media.parse_ref(str(ref)) == ref


@given(st.text(max_size=120))
@example(f"xchat:{CUSTOMER}-{ME}:1:abc:0")  # not canonical: the high id first
@example(f"xchat:{ME}-{CUSTOMER}:1:ab/c:0")  # a media hash key off the spec's pattern (a path escape)
@example(f"xchat:{ME}-{CUSTOMER}:1:abc:0\n")
@example(f"xchat:{ME}-{CUSTOMER}:1:{'a' * 51}:0")
@example("xchat:g123:1:abc:0")  # groups are not ours
def test_anything_else_is_not_a_reference(text: str) -> None:
    try:
        ref = media.parse_ref(text)
    except ValueError:
        return
    assert str(ref) == text  # whatever parses is exactly a reference we would write


def opened(*attachments: dict[str, Any], key_version: str = "17") -> dict[str, Any]:
    return {"type": "Message", "key_version": key_version, "attachments": list(attachments)}


def described(key: str, media_type: str, filename: str = "", size: int = 1234) -> dict[str, Any]:
    return {
        "attachment_type": "Media",
        "media_hash_key": key,
        "media_type": media_type,
        "dimensions": {"width": 10, "height": 20},
        "filesize_bytes": size,
        "filename": filename,
    }


def test_media_attachments_become_private_files_naming_their_key_version() -> None:
    files, others = media.files_of(
        opened(
            described("a1", "image", "IMG 1.jpg"),
            described("b2", "gif", ""),
            described("c3", "video", "clip.mp4"),
            described("d4", "file", "../../etc/passwd"),
            {"attachment_type": "Url", "url": "https://example.com"},
        ),
        CONV,
    )
    assert others == 1  # the link card is counted, not fetched
    assert [(f.id, f.kind, f.name, f.content_type) for f in files] == [
        ("a1", "image", "IMG 1.jpg", "image/jpeg"),
        ("b2", "image", "image.gif", "image/gif"),
        ("c3", "video", "clip.mp4", "video/mp4"),
        ("d4", "file", "passwd", None),
    ]
    assert all(f.private and f.size == 1234 for f in files)
    assert media.parse_ref(files[0].url) == MediaRef(CONV, "17", "a1", 1234)


def test_a_key_off_the_pattern_or_no_key_version_is_not_fetched() -> None:
    files, others = media.files_of(opened(described("a/b", "image"), described("ok", "image"), key_version=""), CONV)
    assert files == () and others == 2


def test_content_attachments_are_read_when_chatxdk_lists_none_at_the_top() -> None:
    event = {
        "key_version": "3",
        "content": {"attachments": [{"media": {"media_hash_key": "k9", "type": "AUDIO", "filename": "v.m4a"}}, {}]},
    }
    files, others = media.files_of(event, CONV)
    assert [(f.id, f.kind) for f in files] == [("k9", "audio")] and others == 1


def png(width: int, height: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + bytes(3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_the_attachment_descriptor_is_what_chatxdk_takes() -> None:
    data = png(33, 21)
    file = OutboundFile(name="photo.png", kind="image", content_type="image/png", size=len(data), path="/x")
    found = media.attachment(file, "hash1", len(data), data)
    assert found == {
        "attachment_type": "media",
        "media_hash_key": "hash1",
        "media_type": 1,
        "width": 33,
        "height": 21,
        "filesize_bytes": len(data),
        "filename": "photo.png",
    }
    pdf = OutboundFile(name="a.pdf", kind="file", content_type="application/pdf", size=5, path="/x")
    assert media.attachment(pdf, "h", 5, b"%PDF-")["media_type"] == 5
    assert media.media_type("image/gif") == 2 and media.media_type("video/mp4") == 3
    chat = Chat()
    chat.generate_keypairs()
    chat.set_identity(ME, "1")
    chat.encrypt_message(  # chatxdk accepts it as it is
        CONV, "", sender_id=ME, signing_key_version="1", conversation_key=os.urandom(32),
        conversation_key_version="1", attachments=[found],
    )  # fmt: skip


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 300_001, 1_000_000])
def test_segments_are_the_stream_cipher_output_and_decrypt_back(size: int) -> None:
    chat, key = Chat(), os.urandom(32)
    data = os.urandom(size)
    segments = list(media.encrypted_segments(io.BytesIO(data), chat.stream_encryptor(key), size, segment=100_000))
    assert all(len(s) == 100_000 for s in segments[:-1]) and 0 < len(segments[-1]) <= 100_000
    assert sum(map(len, segments)) == encrypted_stream_size(size)
    sink = io.BytesIO()
    assert media.decrypt_into(segments, chat.stream_decryptor(key), sink, cap=size) == size
    assert hashlib.sha256(sink.getvalue()).digest() == hashlib.sha256(data).digest()


def test_a_file_that_changed_size_is_not_sent() -> None:
    with pytest.raises(Rejected, match="changed"):
        list(media.encrypted_segments(io.BytesIO(b"abc"), Chat().stream_encryptor(os.urandom(32)), 4))


def cipher(data: bytes, key: bytes) -> bytes:
    enc = Chat().stream_encryptor(key)
    return enc.push(data) + enc.finish()


def test_altered_cut_or_wrong_key_ciphertext_is_refused_not_written() -> None:
    key, data = os.urandom(32), os.urandom(200_000)
    good = cipher(data, key)
    altered = bytearray(good)
    altered[100_000] ^= 1
    for chunks, k in (([bytes(altered)], key), ([good[:-10]], key), ([good], os.urandom(32))):
        with pytest.raises(Rejected, match="does not decrypt"):
            media.decrypt_into(chunks, Chat().stream_decryptor(k), io.BytesIO(), cap=10**9)


def test_more_plaintext_than_the_cap_stops_the_copy() -> None:
    key = os.urandom(32)
    good = cipher(os.urandom(300_000), key)
    with pytest.raises(Rejected, match="over the"):
        media.decrypt_into([good[i : i + 4096] for i in range(0, len(good), 4096)], Chat().stream_decryptor(key),
                           io.BytesIO(), cap=100_000)  # fmt: skip
    with pytest.raises(Rejected, match="over the"):
        media.check_length(str(len(good)), 100_000)
    media.check_length(str(len(good)), 300_000)


def test_the_limits_are_x_chats() -> None:
    limits = media.LIMITS
    assert limits.with_text and limits.label == "X Chat" and not limits.by_link
    assert limits.refusal("a.png", "image/png", 4_000_000) is None
    assert "up to 5 MB" in (limits.refusal("a.png", "image/png", 6_000_000) or "")
    assert limits.refusal("a.svg", "image/svg+xml", 10) is not None
    assert limits.refusal("a.pdf", "application/pdf", 20_000_000) is None
