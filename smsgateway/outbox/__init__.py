"""The outbox: the whole life of an outbound message.

- `queue`: a downlink is sealed under its meter's key with a fresh downlink counter, held
  instead of sent when the meter's daily cap is reached (S12), and written to the outbox in the
  caller's transaction, one message or many in one statement; sending is queued on commit.
- `sending`: the send itself, outside any transaction, with retries and backoff, and staff
  sending failed messages again.
- `delivery`: the gateway's delivery reports.

Only `queue` opens meter keys (it seals); the web side (delivery reports, the admin's "send
again") imports `delivery` and `sending`, which never load the key store.
"""
