"""Dead letters of records near Kafka's size limit (no I/O): a letter never exceeds the limit,
so publishing it cannot fail for its size and stop the consumer; what had to be left out is
named in a header (the original stays in its topic, at the offsets the letter names)."""

from __future__ import annotations

from shared.kafka.deadletter import (
    HEADERS_OMITTED_HEADER,
    MAX_LETTER_BYTES,
    VALUE_OMITTED_HEADER,
    DeadLetter,
    letter_record,
)


def _letter(value: bytes | None, headers: tuple[tuple[str, bytes], ...] = ()) -> DeadLetter:
    return DeadLetter("dcr.visits", 3, 42, b"halmtorv", value, headers, "value is not valid JSON")


def _size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)


def test_a_small_record_is_copied_whole() -> None:
    original = (("ce_id", b"1"), ("dlq_reason", b"an earlier letter's"))
    key, value, headers = letter_record(_letter(b"{bad", original), "projection")
    assert (key, value) == (b"halmtorv", b"{bad")
    names = [k for k, _ in headers]
    assert names[0] == "ce_id" and names.count("dlq_reason") == 1
    assert dict(headers)["dlq_original_offset"] == b"42"
    assert VALUE_OMITTED_HEADER not in names


def test_a_value_near_the_limit_is_left_out_and_named() -> None:
    big = b"a" * (1024 * 1024 - 300)
    key, value, headers = letter_record(_letter(big, (("ce_id", b"1"),)), "projection")
    assert key == b"halmtorv" and value is None
    assert dict(headers)[VALUE_OMITTED_HEADER] == str(len(big)).encode()
    assert dict(headers)["ce_id"] == b"1" and dict(headers)["dlq_original_partition"] == b"3"
    assert _size(key, value, headers) <= MAX_LETTER_BYTES


def test_huge_headers_are_left_out_too() -> None:
    bomb = tuple((f"h{i}", b"x" * 10_000) for i in range(200))
    key, value, headers = letter_record(_letter(b"v" * 500_000, bomb), "projection")
    assert key is None and value is None
    assert {k for k, _ in headers} == {
        "dlq_reason",
        "dlq_original_topic",
        "dlq_original_partition",
        "dlq_original_offset",
        "dlq_service",
        VALUE_OMITTED_HEADER,
        HEADERS_OMITTED_HEADER,
    }
    assert _size(key, value, headers) <= MAX_LETTER_BYTES
