"""The ingest service's HTTP protocol: each answer leaves in one write, in order, and nothing
pending is lost when the connection is closed."""

import asyncio

from utility.ingest_worker import CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 8001) if name == "sockname" else default


def run(scenario):
    async def main():
        transport = RecordingTransport()
        await scenario(CoalescingTransport(transport, asyncio.get_running_loop()), transport)
        return transport

    return asyncio.run(main())


def test_the_writes_of_one_turn_leave_together_in_order():
    async def scenario(coalescing, transport):
        coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n")
        coalescing.write(b"")
        coalescing.write(b"queued 42")
        assert transport.writes == []  # nothing yet: the turn is not over
        assert coalescing.get_write_buffer_size() == 47
        await asyncio.sleep(0)
        coalescing.write(b"next")
        await asyncio.sleep(0)

    transport = run(scenario)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nqueued 42", b"next"]


def test_closing_sends_what_is_pending_first():
    async def scenario(coalescing, transport):
        coalescing.write(b"answer")
        coalescing.close()
        await asyncio.sleep(0)  # the flush scheduled for the turn finds nothing left

    transport = run(scenario)
    assert transport.writes == [b"answer"] and transport.closed


def test_nothing_is_written_once_the_peer_is_gone():
    async def scenario(coalescing, transport):
        coalescing.write(b"answer")
        transport.closed = True  # the connection was lost within the same turn
        await asyncio.sleep(0)
        coalescing.write(b"more")
        coalescing.abort()
        await asyncio.sleep(0)

    transport = run(scenario)
    assert transport.writes == [] and transport.aborted


def test_everything_else_is_the_wrapped_transports():
    async def scenario(coalescing, transport):
        assert coalescing.get_extra_info("sockname") == ("127.0.0.1", 8001)
        assert coalescing.is_closing() is False

    run(scenario)
