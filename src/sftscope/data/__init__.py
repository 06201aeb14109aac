"""Data stage: records, formats, chat rendering, the Countdown teacher and data conditions."""
