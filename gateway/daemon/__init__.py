"""The gateway daemon: intake, push, poll, deliver, respond, retry and housekeeping workers."""
