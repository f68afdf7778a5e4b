"""The detections' defaults (the agent's configuration and `sauron replay`
may set others): their one owner, importable without the rest."""

#: distinct unknown TEIDs from one outer source within WINDOW_S that make a scan
SCAN_THRESHOLD = 16
#: distinct sources not its own that one session sends from within WINDOW_S
SPOOF_THRESHOLD = 4
WINDOW_S = 1.0
#: an event with no new observation for this long has ended
QUIET_S = 10.0
