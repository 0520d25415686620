"""How the adapters read a request: the query string's fields as bytes, and the META the
ingest service builds from an ASGI scope, exactly as the slower general routines would."""

from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from smsgateway import asgi
from smsgateway.adapters import GatewayRequest, query_bytes


def stdlib_fields(text: str) -> dict[str, bytes]:
    pairs = parse_qsl(text, keep_blank_values=True, encoding="latin-1", errors="strict")
    return {key: value.encode("latin-1") for key, value in pairs}


# Query strings made of what matters to the parser: separators, escapes (good and broken),
# plus signs, and any byte at all.
QUERY_PIECES = st.sampled_from(
    [b"&", b"=", b"%", b"+", b"%2B", b"%26", b"%3D", b"%0", b"%zz", b"%e9", b"%FF", b"a", b"id"]
)
QUERIES = st.lists(st.one_of(QUERY_PIECES, st.binary(max_size=4)), max_size=30).map(b"".join)


@given(QUERIES)
def test_query_fields_are_the_standard_librarys(raw):
    assert query_bytes(raw) == stdlib_fields(raw.decode("latin-1"))


def test_query_fields_keep_binary_values_and_the_last_repeated_name():
    raw = b"udh=%05%00%03%A7%02%01&from=%2B447700900123&a+b=c+d&secret=1&secret=2&flag&&x="
    assert query_bytes(raw) == {
        "udh": b"\x05\x00\x03\xa7\x02\x01",
        "from": b"+447700900123",
        "a b": b"c d",
        "secret": b"2",
        "flag": b"",
        "x": b"",
    }


def test_a_query_string_that_is_no_wsgi_text_is_read_as_before():
    # Not latin-1 (a WSGI server never gives one, a caller of its own might): the slow path.
    request = GatewayRequest({"QUERY_STRING": "\u20ac=1&to=%41"}, lambda: b"")
    assert request.query == stdlib_fields("\u20ac=1&to=%41") == {"\u20ac": b"1", "to": b"A"}


def scope_with(headers):
    return {
        "type": "http",
        "method": "POST",
        "path": "/sms/kannel/inbound",
        "query_string": b"secret=x",
        "headers": headers,
        "client": ("127.0.0.1", 4000),
    }


def test_meta_is_what_a_wsgi_server_would_build():
    headers = [
        (b"x-kannel-from", b"+447700900123"),
        (b"content-type", b"application/octet-stream"),
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-for", b"198.51.100.2"),
        (b"x_forwarded_for", b"127.0.0.1"),  # underscores: dropped, as WSGI servers do
    ]
    for _ in range(2):  # the first time works the keys out, the second reads them back
        meta = asgi._meta(scope_with(headers), b"abc", True)
        assert meta == {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/sms/kannel/inbound",
            "QUERY_STRING": "secret=x",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_KANNEL_FROM": "+447700900123",
            "CONTENT_TYPE": "application/octet-stream",
            "HTTP_X_FORWARDED_FOR": "198.51.100.1,198.51.100.2",
            "CONTENT_LENGTH": "3",
        }


def test_headers_of_a_senders_own_invention_do_not_grow_the_key_cache():
    many = [(f"x-made-up-{i}".encode(), b"1") for i in range(3 * asgi._META_KEYS_MAX)]
    meta = asgi._meta(scope_with(many), b"", True)
    assert meta[f"HTTP_X_MADE_UP_{3 * asgi._META_KEYS_MAX - 1}"] == "1"  # still read
    assert len(asgi._META_KEYS) <= asgi._META_KEYS_MAX
