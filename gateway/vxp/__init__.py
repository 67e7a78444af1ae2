"""The VXP wire protocol (facts §5), sans-IO: signing and checking requests, answers."""
