"""What a user runs: the CLI, the doctor, replay, the demo, the async
client and its views."""
