"""The control-room board (`oshmon board`): a live web view of alarms, sensors and exposure,
with signed-in acknowledgement. Its own process: it watches the broker and reads the store; the
gateway never depends on it (docs/board.md)."""
